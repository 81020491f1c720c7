// End-to-end: challenge-verify, the verifier for micromdm/scep's
// -csrverifierexec, first with DER piped into the real binary, then behind
// Debian's real scepserver with scepclient enrolling through it.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/challenge_verify.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/authority_process.h"
#include "tests/testing/csr_builder.h"
#include "tests/testing/status_matchers.h"

namespace scepca::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

// A challenge in the one-time format that this authority never issued.
constexpr char kUnknownChallenge[] = "AAAAAAAAAAAAAAAAAAAAAAAAAA";

void WriteFile(const std::string& path, const std::string& data) {
  FILE* f = fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  fwrite(data.data(), 1, data.size(), f);
  fclose(f);
}

// The non-empty lines of a log file.
std::vector<std::string> LogLines(const std::string& path) {
  return absl::StrSplit(ReadFile(path), '\n', absl::SkipEmpty());
}

// A TCP listener on 127.0.0.1 that completes handshakes (in the kernel's
// backlog) and never says a word: a server that hangs.
class SilentListener {
 public:
  SilentListener() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (fd_ < 0 ||
        bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        listen(fd_, 16) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      std::perror("SilentListener");
      std::abort();
    }
    port_ = ntohs(addr.sin_port);
  }
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  ~SilentListener() { close(fd_); }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// True if something accepts TCP connections on 127.0.0.1:`port`.
bool TcpConnects(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok =
      connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// Returns the first executable among `candidates`, or "".
std::string FindBinary(const std::vector<std::string>& candidates) {
  for (const std::string& c : candidates) {
    if (access(c.c_str(), X_OK) == 0) return c;
  }
  return "";
}

// One authority per test binary, started by the first test that needs it so
// that a failure to start fails that test.
// It is stopped when the test binary exits (the static is destroyed).
AuthorityProcess* SharedAuthority() {
  static std::unique_ptr<AuthorityProcess> authority = [] {
    auto a = std::make_unique<AuthorityProcess>();
    absl::Status started = a->Start();
    if (!started.ok()) {
      ADD_FAILURE() << started;
      return std::unique_ptr<AuthorityProcess>();
    }
    return a;
  }();
  return authority.get();
}

class MicromdmVerifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = SharedAuthority();
    ASSERT_NE(server_, nullptr);
    dir_ = MakeTempDir();
    log_ = dir_ + "/verify.log";
  }

  // Issues a one-time challenge for `device` with extra challengectl flags.
  std::string Issue(const std::string& device,
                    const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"issue", "--device", device};
    args.insert(args.end(), extra.begin(), extra.end());
    CommandResult r = RunChallengectl(server_->address(), args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return std::string(absl::StripSuffix(r.out, "\n"));
  }

  static std::string CsrDer(const std::string& challenge,
                            const std::string& cn) {
    CsrSpec spec;
    spec.common_names = {cn};
    spec.challenge_shape = ChallengeShape::kSingle;
    spec.challenge = challenge;
    absl::StatusOr<std::string> der = BuildCsrDer(spec);
    EXPECT_THAT(der, IsOk());
    return der.ok() ? *der : "";
  }

  // Runs the challenge-verify binary with `args` (plus --log-file, and
  // --server unless `args` names one), feeding `stdin_data`.
  CommandResult Verify(const std::string& stdin_data,
                       std::vector<std::string> args = {}) {
    std::vector<std::string> argv = {BinaryPath("client/challenge-verify"),
                                     "--log-file", log_};
    bool has_server = false;
    for (const std::string& a : args) {
      has_server = has_server || absl::StartsWith(a, "--server");
    }
    if (!has_server) {
      argv.push_back("--server");
      argv.push_back(server_->address());
    }
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<CommandResult> r =
        RunCommand(argv, stdin_data, absl::Seconds(20));
    EXPECT_THAT(r, IsOk());
    return r.ok() ? *r : CommandResult{};
  }

  std::string LastLogLine() {
    std::vector<std::string> lines = LogLines(log_);
    return lines.empty() ? "" : lines.back();
  }

  AuthorityProcess* server_ = nullptr;
  std::string dir_;
  std::string log_;
};

TEST_F(MicromdmVerifierTest, AllowsAnIssuedChallengeOnceAndLogsOneLine) {
  const std::string c = Issue("mdm-dev-1", {"--user", "alice"});
  const std::string der = CsrDer(c, "mdm-dev-1");

  CommandResult first = Verify(der);
  EXPECT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(first.out, "");
  std::vector<std::string> lines = LogLines(log_);
  ASSERT_THAT(lines, SizeIs(1));
  EXPECT_THAT(lines[0],
              AllOf(HasSubstr(" challenge-verify decision=allow reason=valid "),
                    HasSubstr(" device=mdm-dev-1 "), HasSubstr(" user=alice "),
                    HasSubstr(" cn=mdm-dev-1 "),
                    HasSubstr(absl::StrCat(" csr_bytes=", der.size(), " ")),
                    HasSubstr(" latency_ms="), Not(HasSubstr(c))));
  EXPECT_THAT(lines[0], ::testing::MatchesRegex(
                            "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]"
                            "{2}Z challenge-verify .*"));

  CommandResult again = Verify(der);
  EXPECT_EQ(again.exit_code, 1);
  lines = LogLines(log_);
  ASSERT_THAT(lines, SizeIs(2));
  EXPECT_THAT(lines[1], AllOf(HasSubstr(" decision=deny reason=already_used "),
                              HasSubstr(" device=mdm-dev-1 "),
                              HasSubstr(" message=\""), Not(HasSubstr(c))));
}

TEST_F(MicromdmVerifierTest, DeniesAnUnknownChallenge) {
  CommandResult r = Verify(CsrDer(kUnknownChallenge, "mdm-dev-2"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(LastLogLine(),
              AllOf(HasSubstr(" decision=deny reason=not_found "),
                    Not(HasSubstr(kUnknownChallenge))));
}

TEST_F(MicromdmVerifierTest, DeniesACnOutsideTheBinding) {
  const std::string c = Issue("mdm-dev-3", {"--cn", "mdm-dev-3"});
  CommandResult r = Verify(CsrDer(c, "intruder"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(LastLogLine(),
              AllOf(HasSubstr(" decision=deny reason=identity_mismatch "),
                    HasSubstr(" cn=intruder "), HasSubstr("used up"),
                    Not(HasSubstr(c))));
  // By the authority's design a mismatch burns the challenge.
  EXPECT_EQ(Verify(CsrDer(c, "mdm-dev-3")).exit_code, 1);
  EXPECT_THAT(LastLogLine(), HasSubstr(" reason=already_used "));
}

TEST_F(MicromdmVerifierTest, RefusesEmptyStdin) {
  CommandResult r = Verify("");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(LastLogLine(), HasSubstr(" decision=error code=INVALID_ARGUMENT "
                                       "message=\"no CSR on stdin\""));
}

TEST_F(MicromdmVerifierTest, RefusesMoreThanMaxCsrBytes) {
  const std::string der = CsrDer(Issue("mdm-dev-4"), "mdm-dev-4");
  CommandResult r =
      Verify(der, {"--max-csr-bytes", absl::StrCat(der.size() - 1)});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(LastLogLine(), AllOf(HasSubstr(" code=INVALID_ARGUMENT "),
                                   HasSubstr("--max-csr-bytes")));
  EXPECT_EQ(
      Verify(der, {"--max-csr-bytes", absl::StrCat(der.size())}).exit_code, 0);
}

TEST_F(MicromdmVerifierTest, DeniesGarbageAsAnInvalidCsr) {
  CommandResult r = Verify("this is not a certificate request");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(LastLogLine(), HasSubstr(" decision=deny reason=csr_invalid "));
}

TEST_F(MicromdmVerifierTest, ReportsAnUnreachableServerWithinTheDeadline) {
  const std::string nowhere = absl::StrCat("127.0.0.1:", PickFreePort());
  // Issued before the clock starts: only the verifier's run is timed. The
  // bound leaves room for starting the process on a slow machine.
  const std::string der = CsrDer(Issue("mdm-dev-5"), "mdm-dev-5");
  const absl::Time start = absl::Now();
  CommandResult r = Verify(der, {"--server", nowhere, "--deadline", "2s"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2 + 4));
  EXPECT_THAT(LastLogLine(),
              AllOf(HasSubstr(" decision=error code="),
                    HasSubstr(absl::StrCat(" server=", nowhere, " "))));
}

TEST_F(MicromdmVerifierTest, GivesUpOnAServerThatNeverAnswers) {
  SilentListener silent;
  // Issued before the clock starts: only the verifier's run is timed. The
  // bound leaves room for starting the process on a slow machine.
  const std::string der = CsrDer(Issue("mdm-dev-6"), "mdm-dev-6");
  const absl::Time start = absl::Now();
  CommandResult r =
      Verify(der, {"--server", silent.address(), "--deadline", "1s"});
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_GE(took, absl::Milliseconds(900));
  EXPECT_LT(took, absl::Seconds(1 + 4));
  EXPECT_THAT(LastLogLine(),
              HasSubstr(" decision=error code=DEADLINE_EXCEEDED "));
}

// In process: a writer that never closes stdin cannot hold the verifier past
// its deadline (RunCommand always closes stdin, so this needs a pipe).
TEST_F(MicromdmVerifierTest, GivesUpOnStdinThatNeverEnds) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ASSERT_EQ(write(fds[1], "\x30\x82", 2), 2);  // A DER start, then silence.
  std::ostringstream out, err;
  const absl::Time start = absl::Now();
  const int rc = RunChallengeVerify({"--server", server_->address(),
                                     "--deadline", "500ms", "--log-file", log_},
                                    FdCsrReader(fds[0]), out, err);
  const absl::Duration took = absl::Now() - start;
  close(fds[0]);
  close(fds[1]);
  EXPECT_EQ(rc, 3);
  EXPECT_GE(took, absl::Milliseconds(450));
  EXPECT_LT(took, absl::Seconds(2));
  EXPECT_THAT(LastLogLine(),
              AllOf(HasSubstr(" decision=error code=DEADLINE_EXCEEDED "),
                    HasSubstr("2 bytes read")));
}

TEST_F(MicromdmVerifierTest, NeverLogsTheChallengeEvenWhenTheCsrRepeatsIt) {
  // Without a CN binding the device may put anything in its CN, even the
  // challenge itself; the log must still not show it.
  const std::string c = Issue("mdm-dev-7");
  CommandResult r = Verify(CsrDer(c, c));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(LastLogLine(),
              AllOf(HasSubstr(" decision=allow "), HasSubstr(" cn=[redacted] "),
                    Not(HasSubstr(c))));
}

TEST_F(MicromdmVerifierTest, QuotesAndEscapesLoggedValues) {
  const std::string device = "dev \"7\" x=y";
  const std::string c = Issue(device, {"--user", "a\\b"});
  CommandResult r = Verify(CsrDer(c, "mdm dev 8"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(LastLogLine(), AllOf(HasSubstr(" device=\"dev \\\"7\\\" x=y\" "),
                                   HasSubstr(" user=\"a\\\\b\" "),
                                   HasSubstr(" cn=\"mdm dev 8\" ")));
}

TEST_F(MicromdmVerifierTest, TakesTheServerFromTheEnvironment) {
  const std::string c = Issue("mdm-dev-9");
  setenv("CHALLENGE_VERIFY_SERVER", server_->address().c_str(), 1);
  absl::StatusOr<CommandResult> r =
      RunCommand({BinaryPath("client/challenge-verify"), "--log-file", log_},
                 CsrDer(c, "mdm-dev-9"));
  unsetenv("CHALLENGE_VERIFY_SERVER");
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->exit_code, 0) << r->err;
  EXPECT_THAT(LastLogLine(), HasSubstr(" decision=allow "));
}

TEST_F(MicromdmVerifierTest, HelpPrintsUsageAndBadFlagsAreUsageErrors) {
  absl::StatusOr<CommandResult> help =
      RunCommand({BinaryPath("client/challenge-verify"), "--help"});
  ASSERT_THAT(help, IsOk());
  EXPECT_EQ(help->exit_code, 0);
  EXPECT_THAT(help->out,
              AllOf(HasSubstr("--server"), HasSubstr("--deadline"),
                    HasSubstr("--log-file"), HasSubstr("--max-csr-bytes")));
  // The usage shows the wrapper deploy/micromdm ships, word for word.
  const std::vector<std::string> wrapper = absl::StrSplit(
      ReadFile(SCEPCA_SOURCE_DIR "/deploy/micromdm/challenge-verify.sh"), '\n',
      absl::SkipEmpty());
  ASSERT_THAT(wrapper, SizeIs(2));
  EXPECT_THAT(help->out,
              AllOf(HasSubstr(absl::StrCat("  ", wrapper[0], "\n")),
                    HasSubstr(absl::StrCat("  ", wrapper[1], "\n"))));

  CommandResult bad = Verify("x", {"--deadline", "soon"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("--deadline"));
  EXPECT_THAT(LastLogLine(), HasSubstr(" decision=error code=INVALID_ARGUMENT "
                                       "message=\"usage: "));
  EXPECT_EQ(Verify("x", {"--token", "t"}).exit_code, 2);
  EXPECT_EQ(Verify("x", {"positional"}).exit_code, 2);
}

// Debian's scepserver (micromdm/scep 2.1.0) running challenge-verify through
// the wrapper shipped in deploy/micromdm, and scepclient enrolling.
class MicromdmScepserverTest : public MicromdmVerifierTest {
 protected:
  void SetUp() override {
    scepserver_ =
        FindBinary({"/usr/bin/scepserver", "/usr/local/bin/scepserver"});
    scepclient_ =
        FindBinary({"/usr/bin/scepclient", "/usr/local/bin/scepclient"});
    if (scepserver_.empty() || scepclient_.empty()) {
      if (std::getenv("SCEPCA_REQUIRE_SCEP") != nullptr) {
        FAIL() << "scepserver/scepclient not found and SCEPCA_REQUIRE_SCEP is "
                  "set";
      }
      GTEST_SKIP() << "scepserver/scepclient (Debian package scep) are not "
                      "installed";
    }
    ASSERT_NO_FATAL_FAILURE(MicromdmVerifierTest::SetUp());
    ASSERT_NO_FATAL_FAILURE(WriteWrapper());

    const std::string depot = dir_ + "/depot";
    absl::StatusOr<CommandResult> init = RunCommand(
        {scepserver_, "ca", "-init", "-depot", depot, "-keySize", "2048"});
    ASSERT_THAT(init, IsOk());
    ASSERT_EQ(init->exit_code, 0) << init->out << init->err;

    port_ = PickFreePort();
    ASSERT_THAT(scepserver_process_.Start(
                    {scepserver_, "-depot", depot, "-port", absl::StrCat(port_),
                     "-csrverifierexec", wrapper_},
                    dir_ + "/scepserver.log"),
                IsOk());
    ASSERT_TRUE(WaitFor(
        [&] { return TcpConnects(port_) || scepserver_process_.Exited(); },
        absl::Seconds(10)));
    ASSERT_TRUE(scepserver_process_.running()) << scepserver_process_.ReadLog();
  }

  void TearDown() override { scepserver_process_.Stop(absl::Seconds(2)); }

  // Copies deploy/micromdm/challenge-verify.sh with this test's binary,
  // authority and log file in place of the documented ones.
  void WriteWrapper() {
    std::string text =
        ReadFile(SCEPCA_SOURCE_DIR "/deploy/micromdm/challenge-verify.sh");
    const std::vector<std::string> lines =
        absl::StrSplit(text, '\n', absl::SkipEmpty());
    ASSERT_THAT(lines, SizeIs(2)) << text;
    const std::pair<std::string, std::string> replacements[] = {
        {"/usr/local/bin/challenge-verify",
         BinaryPath("client/challenge-verify")},
        {"127.0.0.1:50051", server_->address()},
        {"/var/log/scepca/challenge-verify.log", log_}};
    for (const auto& [from, to] : replacements) {
      const size_t at = text.find(from);
      ASSERT_NE(at, std::string::npos) << from << " not in:\n" << text;
      text.replace(at, from.size(), to);
    }
    wrapper_ = dir_ + "/challenge-verify.sh";
    ASSERT_NO_FATAL_FAILURE(WriteFile(wrapper_, text));
    ASSERT_EQ(chmod(wrapper_.c_str(), 0755), 0);
  }

  struct Enrollment {
    CommandResult result;
    std::string certificate;  // The issued certificate's path.
  };

  // Runs scepclient in a fresh directory: it caches its CSR next to the
  // private key and would reuse it (and its challenge) otherwise.
  Enrollment Enroll(const std::string& challenge, const std::string& cn) {
    const std::string client_dir = absl::StrCat(dir_, "/client", ++clients_);
    EXPECT_EQ(mkdir(client_dir.c_str(), 0700), 0);
    absl::StatusOr<CommandResult> r = RunCommand(
        {scepclient_, "-private-key", client_dir + "/key.pem", "-server-url",
         absl::StrCat("http://127.0.0.1:", port_, "/scep"), "-challenge",
         challenge, "-cn", cn},
        "", absl::Seconds(20));
    EXPECT_THAT(r, IsOk());
    return {r.ok() ? *r : CommandResult{}, client_dir + "/client.pem"};
  }

  static bool FileExists(const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0 && st.st_size > 0;
  }

  std::string scepserver_;
  std::string scepclient_;
  std::string wrapper_;
  int port_ = 0;
  int clients_ = 0;
  ChildProcess scepserver_process_;
};

TEST_F(MicromdmScepserverTest, EnrollsWithAnIssuedChallenge) {
  const std::string c = Issue("iphone-1", {"--cn", "iphone-1"});
  Enrollment e = Enroll(c, "iphone-1");
  EXPECT_EQ(e.result.exit_code, 0) << e.result.out << e.result.err;
  EXPECT_TRUE(FileExists(e.certificate));
  std::vector<std::string> lines = LogLines(log_);
  ASSERT_THAT(lines, SizeIs(1)) << ReadFile(log_);
  EXPECT_THAT(lines[0], AllOf(HasSubstr(" decision=allow reason=valid "),
                              HasSubstr(" device=iphone-1 "),
                              HasSubstr(" cn=iphone-1 "), Not(HasSubstr(c))));
}

TEST_F(MicromdmScepserverTest, RefusesTheSameChallengeASecondTime) {
  const std::string c = Issue("iphone-2");
  Enrollment first = Enroll(c, "iphone-2");
  ASSERT_EQ(first.result.exit_code, 0) << first.result.out << first.result.err;
  Enrollment second = Enroll(c, "iphone-2");
  EXPECT_NE(second.result.exit_code, 0);
  EXPECT_FALSE(FileExists(second.certificate));
  EXPECT_THAT(LastLogLine(),
              AllOf(HasSubstr(" decision=deny reason=already_used "),
                    Not(HasSubstr(c))));
}

TEST_F(MicromdmScepserverTest, RefusesACnOutsideTheBinding) {
  const std::string c = Issue("iphone-3", {"--cn", "iphone-3"});
  Enrollment e = Enroll(c, "someone-else");
  EXPECT_NE(e.result.exit_code, 0);
  EXPECT_FALSE(FileExists(e.certificate));
  EXPECT_THAT(LastLogLine(),
              AllOf(HasSubstr(" decision=deny reason=identity_mismatch "),
                    HasSubstr(" cn=someone-else ")));
  // scepserver saw the verifier's exit code and refused because of it.
  EXPECT_THAT(scepserver_process_.ReadLog(),
              AllOf(HasSubstr("err=\"exit status 1\""),
                    HasSubstr("CSR verify failed")));
}

TEST_F(MicromdmScepserverTest, RefusesAnUnknownChallenge) {
  Enrollment e = Enroll(kUnknownChallenge, "iphone-4");
  EXPECT_NE(e.result.exit_code, 0);
  EXPECT_FALSE(FileExists(e.certificate));
  EXPECT_THAT(LastLogLine(), HasSubstr(" decision=deny reason=not_found "));
}

}  // namespace
}  // namespace scepca::testing
