// End-to-end: `challengectl doctor` (the real binary) against Debian's
// scepserver over http, against an HTTPS front this test starts with
// certificates it makes, and with --challenge against a real authority; and
// the help texts and bash completion of the admin CLI.
#include <httplib.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/authority_process.h"
#include "tests/testing/cert_builder.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"

namespace scepca::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

// micromdm/scep's capabilities (Debian scepserver 2.1.0).
constexpr char kCaps[] =
    "Renewal\nSHA-1\nSHA-256\nAES\nDES3\nSCEPStandard\nPOSTPKIOperation";
constexpr char kPython[] = "/usr/bin/python3";

// Checks doctor's --json output on stdin: every check has the four fields,
// a known status, and the verdict is argv[1].
constexpr char kCheckJson[] = R"py(
import json, sys
d = json.load(sys.stdin)
assert set(d) == {"checks", "verdict"}, d.keys()
for c in d["checks"]:
    assert set(c) == {"id", "status", "message", "advice"}, c
    assert c["status"] in ("PASS", "WARN", "FAIL"), c
assert d["verdict"] == sys.argv[1], d["verdict"]
print(",".join(c["id"] for c in d["checks"]))
)py";

std::string Der(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  unsigned char* out = nullptr;
  const int n = i2d_X509(cert, &out);
  std::string der(reinterpret_cast<char*>(out), static_cast<size_t>(n));
  OPENSSL_free(out);
  X509_free(cert);
  return der;
}

std::string HexDigest(const EVP_MD* md, const std::string& data,
                      bool colons = false) {
  unsigned char buf[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), buf, &n, md, nullptr);
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    if (colons && i > 0) out.push_back(':');
    absl::StrAppendFormat(&out, "%02x", buf[i]);
  }
  return out;
}

// The line of check `id` in doctor's text output, or "".
std::string Line(const std::string& out, const std::string& id) {
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    std::vector<absl::string_view> words =
        absl::StrSplit(line, absl::MaxSplits(' ', 2));
    if (words.size() >= 2 && words[1] == id) return std::string(line);
  }
  return "";
}

// A SCEP endpoint that answers GetCACaps and GetCACert with fixed bodies,
// over http, or over https with the given certificate.
class FakeScepServer {
 public:
  FakeScepServer(const FakeScepServer&) = delete;
  FakeScepServer& operator=(const FakeScepServer&) = delete;
  FakeScepServer(std::string caps, std::string ca_type, std::string ca_body)
      : caps_(std::move(caps)),
        ca_type_(std::move(ca_type)),
        ca_body_(std::move(ca_body)) {}
  ~FakeScepServer() {
    if (server_ != nullptr) server_->stop();
    if (thread_.joinable()) thread_.join();
  }

  // Starts on 127.0.0.1; `tls` (certificate and key) makes it https.
  void Start(const CertAndKey* tls = nullptr) {
    if (tls != nullptr) {
      const std::string dir = MakeTempDir();
      const std::string cert =
          WriteFileWithMode(dir + "/tls.pem", tls->cert_pem);
      const std::string key = WriteFileWithMode(dir + "/tls.key", tls->key_pem);
      server_ = std::make_unique<httplib::SSLServer>(cert.c_str(), key.c_str());
    } else {
      server_ = std::make_unique<httplib::Server>();
    }
    ASSERT_TRUE(server_->is_valid());
    server_->Get("/scep",
                 [this](const httplib::Request& req, httplib::Response& res) {
                   const std::string op = req.get_param_value("operation");
                   if (op == "GetCACaps") {
                     res.set_content(caps_, "text/plain");
                   } else if (op == "GetCACert") {
                     res.set_content(ca_body_, ca_type_.c_str());
                   } else {
                     res.status = 400;
                   }
                 });
    port_ = server_->bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    ASSERT_TRUE(
        WaitFor([this] { return server_->is_running(); }, absl::Seconds(5)));
  }

  int port() const { return port_; }

 private:
  const std::string caps_;
  const std::string ca_type_;
  const std::string ca_body_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

CommandResult Doctor(const std::vector<std::string>& args,
                     const std::string& server = "") {
  std::vector<std::string> argv = {BinaryPath("client/challengectl")};
  if (!server.empty()) {
    argv.push_back("--server");
    argv.push_back(server);
  }
  argv.push_back("doctor");
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<CommandResult> r = RunCommand(argv, "", absl::Seconds(20));
  EXPECT_THAT(r, IsOk());
  return r.ok() ? *r : CommandResult{};
}

// Runs kCheckJson on `json`; returns the check ids it printed.
std::string CheckJson(const std::string& json, const std::string& verdict) {
  absl::StatusOr<CommandResult> r =
      RunCommand({kPython, "-c", kCheckJson, verdict}, json);
  EXPECT_THAT(r, IsOk());
  if (!r.ok()) return "";
  EXPECT_EQ(r->exit_code, 0) << r->err << "\n" << json;
  return r->out;
}

// A private CA, and an HTTPS front on 127.0.0.1 reached as "localhost".
class DoctorTlsE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    CertSpec spec;
    spec.common_name = "Doctor E2E Root";
    spec.is_ca = true;
    spec.rsa_bits = 0;  // EC P-256: quicker to make than RSA.
    spec.not_after = absl::Hours(24 * 3650);
    absl::StatusOr<CertAndKey> ca = MakeSelfSigned(spec);
    ASSERT_THAT(ca, IsOk());
    ca_ = new CertAndKey(*ca);
    ca_file_ = new std::string(
        WriteFileWithMode(MakeTempDir() + "/ca.pem", ca->cert_pem, 0644));
  }

  static CertSpec Compliant() {
    CertSpec spec;
    spec.common_name = "localhost";
    spec.dns_names = {"localhost"};
    spec.not_after = absl::Hours(24 * 365);
    spec.client_auth = false;
    return spec;
  }

  // Serves GetCACert with the test CA over TLS with a certificate for
  // `spec`, and runs doctor against it with `extra` flags.
  CommandResult RunAgainst(const CertSpec& spec,
                           const std::vector<std::string>& extra = {}) {
    absl::StatusOr<CertAndKey> tls = MakeSigned(spec, *ca_);
    EXPECT_THAT(tls, IsOk());
    if (!tls.ok()) return {};
    front_ = std::make_unique<FakeScepServer>(
        kCaps, "application/x-x509-ca-cert", Der(ca_->cert_pem));
    front_->Start(&*tls);
    std::vector<std::string> args = {
        "--scep-url",
        absl::StrCat("https://localhost:", front_->port(), "/scep")};
    args.insert(args.end(), extra.begin(), extra.end());
    return Doctor(args);
  }

  static CertAndKey* ca_;
  static std::string* ca_file_;
  std::unique_ptr<FakeScepServer> front_;
};

CertAndKey* DoctorTlsE2eTest::ca_ = nullptr;
std::string* DoctorTlsE2eTest::ca_file_ = nullptr;

TEST_F(DoctorTlsE2eTest, PassesEveryRuleForACompliantCertificate) {
  CommandResult r = RunAgainst(Compliant(), {"--scep-ca", *ca_file_});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  for (const char* id :
       {"endpoint.reachable", "tls.handshake", "tls.san-dns-name",
        "tls.validity", "tls.key-size", "tls.signature", "tls.eku-server-auth",
        "tls.trust", "caps.list", "caps.post-pki-operation", "caps.sha-256",
        "caps.aes", "caps.renewal", "ca.get-ca-cert", "ca.key-usage",
        "ca.validity", "ca.fingerprint", "ca.ra-cert"}) {
    EXPECT_THAT(Line(r.out, id), StartsWith("PASS ")) << id << "\n" << r.out;
  }
  EXPECT_THAT(Line(r.out, "tls.trust"), HasSubstr(*ca_file_));
  EXPECT_THAT(r.out, HasSubstr("\nverdict: PASS ("));
}

TEST_F(DoctorTlsE2eTest, FailsANameOnlyInTheCn) {
  CertSpec spec = Compliant();
  spec.dns_names.clear();
  CommandResult r = RunAgainst(spec, {"--scep-ca", *ca_file_});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(Line(r.out, "tls.san-dns-name"),
              AllOf(StartsWith("FAIL "), HasSubstr("only in the subject CN"),
                    HasSubstr("\u2014 reissue the certificate with "
                              "DNS:localhost")));
  EXPECT_THAT(Line(r.out, "tls.validity"), StartsWith("PASS "));
  EXPECT_THAT(r.out, HasSubstr("\nverdict: FAIL ("));
}

TEST_F(DoctorTlsE2eTest, FailsACertificateValidForTwentyYears) {
  CertSpec spec = Compliant();
  spec.not_after = absl::Hours(24 * 365 * 20);
  CommandResult r = RunAgainst(spec, {"--scep-ca", *ca_file_});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(Line(r.out, "tls.validity"),
              AllOf(StartsWith("FAIL "), HasSubstr("825 days")));
  EXPECT_THAT(Line(r.out, "tls.san-dns-name"), StartsWith("PASS "));
  EXPECT_THAT(Line(r.out, "tls.trust"), StartsWith("PASS "));
}

TEST_F(DoctorTlsE2eTest, ChecksTheRulesOfAnUntrustedChain) {
  CommandResult r = RunAgainst(Compliant());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(Line(r.out, "tls.trust"),
              AllOf(StartsWith("FAIL "), HasSubstr("system trust store")));
  for (const char* id :
       {"tls.san-dns-name", "tls.validity", "tls.key-size", "tls.signature",
        "tls.eku-server-auth", "caps.aes", "ca.get-ca-cert"}) {
    EXPECT_THAT(Line(r.out, id), StartsWith("PASS ")) << id << "\n" << r.out;
  }
}

TEST_F(DoctorTlsE2eTest, PrintsJsonThatParses) {
  CertSpec spec = Compliant();
  spec.dns_names.clear();
  CommandResult r = RunAgainst(spec, {"--scep-ca", *ca_file_, "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(CheckJson(r.out, "FAIL"),
              AllOf(HasSubstr("endpoint.reachable,tls.handshake,"
                              "tls.san-dns-name,tls.validity"),
                    HasSubstr("ca.ra-cert")));
}

TEST_F(DoctorTlsE2eTest, FailsTheHandshakeOfAPlainHttpServer) {
  FakeScepServer plain(kCaps, "application/x-x509-ca-cert", Der(ca_->cert_pem));
  plain.Start();
  CommandResult r =
      Doctor({"--scep-url",
              absl::StrCat("https://127.0.0.1:", plain.port(), "/scep")});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(Line(r.out, "tls.handshake"), StartsWith("FAIL "));
  EXPECT_THAT(Line(r.out, "tls.trust"), IsEmpty());
}

TEST(DoctorE2eTest, ExitsWith3WhenTheEndpointIsUnreachable) {
  for (const char* scheme : {"http", "https"}) {
    CommandResult r =
        Doctor({"--scep-url",
                absl::StrCat(scheme, "://127.0.0.1:", PickFreePort(), "/scep"),
                "--timeout", "2s"});
    EXPECT_EQ(r.exit_code, 3) << scheme << r.out << r.err;
    EXPECT_THAT(Line(r.out, "endpoint.reachable"), StartsWith("FAIL "));
    EXPECT_THAT(r.out, HasSubstr("verdict: UNREACHABLE"));
  }
  CommandResult usage = Doctor({"--scep-ca", "x.pem"});
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_THAT(usage.err, HasSubstr("--scep-url is required"));
}

// Debian's scepserver (micromdm/scep 2.1.0) over http.
class DoctorScepserverE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* const candidates[] = {"/usr/bin/scepserver",
                                      "/usr/local/bin/scepserver"};
    std::string binary;
    for (const char* c : candidates) {
      if (access(c, X_OK) == 0) {
        binary = c;
        break;
      }
    }
    if (binary.empty()) {
      if (std::getenv("SCEPCA_REQUIRE_SCEP") != nullptr) {
        FAIL() << "scepserver not found and SCEPCA_REQUIRE_SCEP is set";
      }
      GTEST_SKIP() << "scepserver (Debian package scep) is not installed";
    }
    dir_ = MakeTempDir();
    const std::string depot = dir_ + "/depot";
    absl::StatusOr<CommandResult> init = RunCommand(
        {binary, "ca", "-init", "-depot", depot, "-keySize", "2048"});
    ASSERT_THAT(init, IsOk());
    ASSERT_EQ(init->exit_code, 0) << init->out << init->err;
    port_ = PickFreePort();
    ASSERT_THAT(scepserver_.Start(
                    {binary, "-depot", depot, "-port", absl::StrCat(port_)},
                    dir_ + "/scepserver.log"),
                IsOk());
    url_ = absl::StrCat("http://127.0.0.1:", port_, "/scep");
    httplib::Client client("127.0.0.1", port_);
    ASSERT_TRUE(WaitFor(
        [&] {
          auto res = client.Get("/scep?operation=GetCACert");
          if (res && res->status == 200) ca_der_ = res->body;
          return !ca_der_.empty() || scepserver_.Exited();
        },
        absl::Seconds(10)));
    ASSERT_FALSE(ca_der_.empty()) << scepserver_.ReadLog();
  }
  void TearDown() override { scepserver_.Stop(absl::Seconds(2)); }

  std::string dir_;
  int port_ = 0;
  std::string url_;
  std::string ca_der_;
  ChildProcess scepserver_;
};

TEST_F(DoctorScepserverE2eTest, PassesDebiansScepserver) {
  CommandResult r = Doctor({"--scep-url", url_});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(Line(r.out, "caps.list"),
              AllOf(StartsWith("PASS "), HasSubstr("POSTPKIOperation"),
                    HasSubstr("SCEPStandard")));
  for (const char* id :
       {"caps.post-pki-operation", "caps.sha-256", "caps.aes", "caps.renewal",
        "caps.get-next-ca-cert", "ca.key-usage", "ca.validity", "ca.ra-cert"}) {
    EXPECT_THAT(Line(r.out, id), StartsWith("PASS ")) << id << "\n" << r.out;
  }
  EXPECT_THAT(Line(r.out, "ca.get-ca-cert"),
              AllOf(StartsWith("PASS "),
                    HasSubstr("application/x-x509-ca-cert, 1 certificate"),
                    HasSubstr("O=scep-ca")));
  EXPECT_THAT(Line(r.out, "ca.fingerprint"),
              AllOf(StartsWith("PASS "), HasSubstr("not compared")));
  // No TLS on http.
  EXPECT_THAT(r.out, Not(HasSubstr(" tls.")));
  EXPECT_THAT(r.out, HasSubstr("\nverdict: PASS ("));
}

TEST_F(DoctorScepserverE2eTest, ComparesTheCaFingerprint) {
  const std::string sha256 = HexDigest(EVP_sha256(), ca_der_);
  CommandResult right =
      Doctor({"--scep-url", url_, "--ca-fingerprint", sha256});
  EXPECT_EQ(right.exit_code, 0) << right.out;
  EXPECT_THAT(Line(right.out, "ca.fingerprint"),
              AllOf(StartsWith("PASS "), HasSubstr("SHA-256 matches")));

  CommandResult sha1 =
      Doctor({"--scep-url", url_, "--ca-fingerprint",
              HexDigest(EVP_sha1(), ca_der_, /*colons=*/true)});
  EXPECT_EQ(sha1.exit_code, 0) << sha1.out;
  EXPECT_THAT(Line(sha1.out, "ca.fingerprint"), HasSubstr("SHA-1 matches"));

  std::string wrong = sha256;
  wrong[0] = wrong[0] == '0' ? '1' : '0';
  CommandResult r = Doctor({"--scep-url", url_, "--ca-fingerprint", wrong});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(Line(r.out, "ca.fingerprint"),
              AllOf(StartsWith("FAIL "), HasSubstr("not the expected")));
  EXPECT_THAT(r.out, HasSubstr("\nverdict: FAIL (1 failed,"));

  CommandResult bad = Doctor({"--scep-url", url_, "--ca-fingerprint", "xyz"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("--ca-fingerprint"));
}

TEST_F(DoctorScepserverE2eTest, PrintsJsonThatParses) {
  CommandResult r = Doctor({"--scep-url", url_, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(CheckJson(r.out, "PASS"),
              HasSubstr("endpoint.reachable,caps.list,caps.post-pki-operation,"
                        "caps.sha-256,caps.aes,caps.renewal,"
                        "caps.get-next-ca-cert,ca.get-ca-cert,ca.key-usage,"
                        "ca.validity,ca.fingerprint,ca.ra-cert"));
}

// --challenge asks a real authority; the SCEP side is a fake endpoint.
class DoctorAuthorityE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (authority_ == nullptr) {
      auto* a = new AuthorityProcess();
      ASSERT_THAT(a->Start(), IsOk());
      authority_ = a;
    }
    CertSpec spec;
    spec.common_name = "Fake SCEP CA";
    spec.is_ca = true;
    spec.rsa_bits = 0;  // EC P-256: quicker to make than RSA.
    absl::StatusOr<CertAndKey> ca = MakeSelfSigned(spec);
    ASSERT_THAT(ca, IsOk());
    scep_ = std::make_unique<FakeScepServer>(
        kCaps, "application/x-x509-ca-cert", Der(ca->cert_pem));
    scep_->Start();
    url_ = absl::StrCat("http://127.0.0.1:", scep_->port(), "/scep");
  }
  static void TearDownTestSuite() {
    delete authority_;
    authority_ = nullptr;
  }

  static AuthorityProcess* authority_;
  std::unique_ptr<FakeScepServer> scep_;
  std::string url_;
};

AuthorityProcess* DoctorAuthorityE2eTest::authority_ = nullptr;

TEST_F(DoctorAuthorityE2eTest, PassesAnIssuedChallengeWithoutUsingItUp) {
  CommandResult issued = RunChallengectl(authority_->address(),
                                         {"issue", "--device", "doctor-dev-1"});
  ASSERT_EQ(issued.exit_code, 0) << issued.err;
  const std::string c(absl::StripSuffix(issued.out, "\n"));
  CommandResult r =
      Doctor({"--scep-url", url_, "--challenge", c}, authority_->address());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(Line(r.out, "authority.challenge"),
              AllOf(StartsWith("PASS "), HasSubstr("device doctor-dev-1")));
  EXPECT_THAT(r.out, Not(HasSubstr(c)));
  // A dry run: the challenge still works.
  CommandResult v =
      RunChallengectl(authority_->address(), {"validate", "--challenge", c});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
}

TEST_F(DoctorAuthorityE2eTest, FailsAnUnknownChallengeWithNotFound) {
  CommandResult r =
      Doctor({"--scep-url", url_, "--challenge", "AAAAAAAAAAAAAAAAAAAAAAAAAA"},
             authority_->address());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(Line(r.out, "authority.challenge"),
              AllOf(StartsWith("FAIL "), HasSubstr("not_found"),
                    HasSubstr("\u2014 the authority never issued it")));
  EXPECT_THAT(Line(r.out, "caps.aes"), StartsWith("PASS "));
}

TEST_F(DoctorAuthorityE2eTest, FailsWhenTheAuthorityDoesNotAnswer) {
  CommandResult r =
      Doctor({"--scep-url", url_, "--challenge", "AAAAAAAAAAAAAAAAAAAAAAAAAA"},
             absl::StrCat("127.0.0.1:", PickFreePort()));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(Line(r.out, "authority.challenge"),
              AllOf(StartsWith("FAIL "),
                    HasSubstr("no verdict from the authority: UNAVAILABLE")));
}

// The help texts and the bash completion of the whole CLI.
std::set<std::string> HelpFlags(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {BinaryPath("client/challengectl")};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--help");
  absl::StatusOr<CommandResult> r = RunCommand(argv);
  EXPECT_THAT(r, IsOk());
  std::set<std::string> flags;
  if (!r.ok()) return flags;
  EXPECT_EQ(r->exit_code, 0) << r->err;
  for (absl::string_view line : absl::StrSplit(r->out, '\n')) {
    if (absl::ConsumePrefix(&line, "  --")) {
      flags.insert(absl::StrCat("--", line.substr(0, line.find(' '))));
    }
  }
  return flags;
}

std::set<std::string> Complete(const std::vector<std::string>& words) {
  const std::string script = absl::StrCat(
      "source '", SCEPCA_SOURCE_DIR, "/deploy/bash-completion/challengectl'; ",
      "COMP_WORDS=(\"$@\"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); ",
      "_challengectl; printf '%s\\n' \"${COMPREPLY[@]}\"");
  std::vector<std::string> argv = {"/bin/bash", "-c", script, "bash"};
  argv.insert(argv.end(), words.begin(), words.end());
  absl::StatusOr<CommandResult> r = RunCommand(argv);
  EXPECT_THAT(r, IsOk());
  std::set<std::string> out;
  if (!r.ok()) return out;
  EXPECT_EQ(r->exit_code, 0) << r->err;
  EXPECT_EQ(r->err, "");
  for (absl::string_view w : absl::StrSplit(r->out, '\n', absl::SkipEmpty())) {
    out.insert(std::string(w));
  }
  return out;
}

TEST(ChallengectlCliTest, MainHelpListsEveryCommandTheCompletionKnows) {
  absl::StatusOr<CommandResult> r =
      RunCommand({BinaryPath("client/challengectl"), "--help"});
  ASSERT_THAT(r, IsOk());
  std::set<std::string> commands;
  bool in_commands = false;
  for (absl::string_view line : absl::StrSplit(r->out, '\n')) {
    if (line == "Commands:") {
      in_commands = true;
    } else if (in_commands && line.empty()) {
      break;
    } else if (in_commands && absl::StartsWith(line, "  ") && line[2] != ' ') {
      line.remove_prefix(2);
      commands.insert(std::string(line.substr(0, line.find(' '))));
    }
  }
  EXPECT_THAT(commands, ::testing::IsSupersetOf(
                            {"doctor", "explain", "mobileconfig", "issue"}));
  EXPECT_EQ(Complete({"challengectl", ""}), commands);
  EXPECT_EQ(Complete({"challengectl", "--server", "h:1", "mob"}),
            std::set<std::string>{"mobileconfig"});
}

TEST(ChallengectlCliTest, CompletionOffersExactlyTheFlagsOfEachCommand) {
  EXPECT_EQ(Complete({"challengectl", "--"}), HelpFlags({}));
  for (const std::string& command : Complete({"challengectl", ""})) {
    const std::set<std::string> flags = HelpFlags({command});
    EXPECT_THAT(flags, Not(IsEmpty())) << command;
    EXPECT_EQ(Complete({"challengectl", command, "--"}), flags) << command;
  }
  EXPECT_EQ(Complete({"challengectl", "mobileconfig", "--kind", ""}),
            (std::set<std::string>{"one-time", "signed"}));
  EXPECT_EQ(Complete({"challengectl", "explain", "2201"}),
            (std::set<std::string>{"22010", "22011", "22012", "22013"}));
  EXPECT_EQ(Complete({"challengectl", "keys", "--file", "f", ""}),
            (std::set<std::string>{"generate", "promote", "disable", "list"}));
}

TEST(ChallengectlCliTest, DoctorHelpNamesEveryCheck) {
  absl::StatusOr<CommandResult> r =
      RunCommand({BinaryPath("client/challengectl"), "doctor", "--help"});
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->exit_code, 0);
  for (const char* id : {"endpoint.reachable",  "tls.handshake",
                         "tls.san-dns-name",    "tls.validity",
                         "tls.key-size",        "tls.signature",
                         "tls.eku-server-auth", "tls.trust",
                         "caps.list",           "caps.post-pki-operation",
                         "caps.sha-256",        "caps.aes",
                         "caps.renewal",        "caps.get-next-ca-cert",
                         "ca.get-ca-cert",      "ca.key-usage",
                         "ca.validity",         "ca.fingerprint",
                         "ca.ra-cert",          "authority.challenge"}) {
    EXPECT_THAT(r->out, HasSubstr(id));
  }
  EXPECT_THAT(r->out,
              AllOf(HasSubstr("--scep-url"), HasSubstr("--scep-ca"),
                    HasSubstr("--challenge"), HasSubstr("--ca-fingerprint"),
                    HasSubstr("Exit codes: 0")));
}

}  // namespace
}  // namespace scepca::testing
