// End-to-end: the real challenge-authority binary (memory store) driven by
// the real challengectl binary, checking output and exit codes.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/authority_process.h"
#include "tests/testing/status_matchers.h"

namespace scepca::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

class ChallengectlE2eTest : public ::testing::Test {
 protected:
  // One server per suite, started by the first test so that a failure to
  // start fails that test (a failing SetUpTestSuite only skips).
  void StartServer() {
    if (server_ != nullptr) return;
    auto* server = new AuthorityProcess();
    absl::Status started = server->Start({"--max-ttl", "1h"});
    ASSERT_THAT(started, IsOk());
    server_ = server;
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(StartServer()); }
  CommandResult Ctl(const std::vector<std::string>& args) {
    return RunChallengectl(server_->address(), args);
  }
  std::string MustIssue(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"issue", "--device", "dev-e2e"};
    args.insert(args.end(), extra.begin(), extra.end());
    CommandResult r = Ctl(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return std::string(absl::StripSuffix(r.out, "\n"));
  }

  static AuthorityProcess* server_;
};

AuthorityProcess* ChallengectlE2eTest::server_ = nullptr;

TEST_F(ChallengectlE2eTest, StartupLogNamesTheStoreAndWarnsItIsVolatile) {
  const std::string log = server_->Log();
  EXPECT_THAT(log, HasSubstr("with store memory"));
  EXPECT_THAT(log, HasSubstr("lost when this process stops"));
}

TEST_F(ChallengectlE2eTest, IssuePrintsOnlyTheChallenge) {
  CommandResult r = Ctl({"issue", "--device", "dev-e2e", "--user", "alice"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, MatchesRegex("[A-Z2-7]{26}\n"));
  EXPECT_EQ(r.err, "");
}

TEST_F(ChallengectlE2eTest, ValidateOnceThenAlreadyUsed) {
  const std::string c = MustIssue();
  CommandResult first =
      Ctl({"validate", "--challenge", c, "--transaction-id", "tx-1"});
  EXPECT_EQ(first.exit_code, 0) << first.err;
  EXPECT_THAT(first.out, HasSubstr("valid: device dev-e2e"));
  CommandResult second = Ctl({"validate", "--challenge", c});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_THAT(second.out, HasSubstr("invalid: already_used"));
  EXPECT_THAT(second.out + second.err, Not(HasSubstr(c)));
}

TEST_F(ChallengectlE2eTest, DryRunDoesNotConsume) {
  const std::string c = MustIssue();
  EXPECT_EQ(Ctl({"validate", "--dry-run", "--challenge", c}).exit_code, 0);
  EXPECT_EQ(Ctl({"validate", "--challenge", c}).exit_code, 0);
}

TEST_F(ChallengectlE2eTest, RevokeByIdThenValidateSaysRevoked) {
  CommandResult issued =
      Ctl({"--json", "issue", "--device", "dev-revoke", "--label", "t=wifi"});
  ASSERT_EQ(issued.exit_code, 0) << issued.err;
  EXPECT_THAT(issued.out, HasSubstr("\"challengeId\":\""));
  EXPECT_THAT(issued.out, HasSubstr("\"kind\":\"CHALLENGE_KIND_ONE_TIME\""));
  const size_t id_at = issued.out.find("\"challengeId\":\"") + 15;
  const std::string id = issued.out.substr(id_at, 32);
  const size_t c_at = issued.out.find("\"challenge\":\"") + 13;
  const std::string c = issued.out.substr(c_at, 26);

  CommandResult revoke =
      Ctl({"revoke", "--challenge-id", id, "--reason", "lost phone"});
  EXPECT_EQ(revoke.exit_code, 0) << revoke.err;
  EXPECT_EQ(revoke.out, "revoked 1\n");
  CommandResult v = Ctl({"validate", "--challenge", c});
  EXPECT_EQ(v.exit_code, 1);
  EXPECT_THAT(v.out, HasSubstr("invalid: revoked"));
  EXPECT_THAT(v.out, HasSubstr("lost phone"));

  CommandResult get = Ctl({"get", id});
  EXPECT_EQ(get.exit_code, 0) << get.err;
  EXPECT_THAT(get.out, HasSubstr("state:        revoked"));
  EXPECT_THAT(get.out, HasSubstr("label:        t=wifi"));
  EXPECT_THAT(get.out, Not(HasSubstr(c)));
}

TEST_F(ChallengectlE2eTest, RevokeByDeviceAndUserCountsAndList) {
  MustIssue({"--device", "dev-bulk"});
  MustIssue({"--device", "dev-bulk", "--user", "bob"});
  CommandResult list = Ctl({"list", "--device", "dev-bulk"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr("CHALLENGE_ID"));
  EXPECT_EQ(std::count(list.out.begin(), list.out.end(), '\n'), 3);
  CommandResult pending =
      Ctl({"list", "--device", "dev-bulk", "--state", "pending"});
  EXPECT_EQ(std::count(pending.out.begin(), pending.out.end(), '\n'), 3);
  EXPECT_EQ(Ctl({"list", "--device", "dev-bulk", "--state", "bogus"}).exit_code,
            2);
  CommandResult by_user = Ctl({"revoke", "--user", "bob"});
  EXPECT_EQ(by_user.out, "revoked 1\n");
  CommandResult by_device = Ctl({"revoke", "--device", "dev-bulk"});
  EXPECT_EQ(by_device.out, "revoked 1\n");
  CommandResult none_pending =
      Ctl({"list", "--device", "dev-bulk", "--state", "pending"});
  EXPECT_EQ(std::count(none_pending.out.begin(), none_pending.out.end(), '\n'),
            1);
  CommandResult revoked =
      Ctl({"list", "--device", "dev-bulk", "--state", "revoked"});
  EXPECT_EQ(std::count(revoked.out.begin(), revoked.out.end(), '\n'), 3);
  CommandResult json = Ctl({"--json", "list", "--device", "dev-bulk"});
  EXPECT_THAT(json.out, HasSubstr("CHALLENGE_STATE_REVOKED"));
  EXPECT_THAT(json.out, Not(HasSubstr("CHALLENGE_STATE_PENDING")));
}

TEST_F(ChallengectlE2eTest, NotifyOutcomeShowsInTheHistory) {
  CommandResult issued = Ctl({"--json", "issue", "--device", "dev-notify"});
  ASSERT_EQ(issued.exit_code, 0) << issued.err;
  const std::string id =
      issued.out.substr(issued.out.find("\"challengeId\":\"") + 15, 32);
  const std::string c =
      issued.out.substr(issued.out.find("\"challenge\":\"") + 13, 26);
  ASSERT_EQ(Ctl({"validate", "--challenge", c, "--transaction-id", "tx-77"})
                .exit_code,
            0);
  CommandResult failed = Ctl({"notify", "--transaction-id", "tx-77", "--failed",
                              "--failure", "CA busy"});
  EXPECT_EQ(failed.exit_code, 0) << failed.err;
  EXPECT_EQ(failed.out, absl::StrCat("recorded for challenge ", id, "\n"));
  CommandResult ok =
      Ctl({"notify", "--challenge-id", id, "--issued", "--serial", "01AF",
           "--fingerprint", std::string(64, 'e')});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  CommandResult get = Ctl({"get", id});
  EXPECT_THAT(get.out, HasSubstr("history:"));
  EXPECT_THAT(get.out, HasSubstr("issued"));
  EXPECT_THAT(get.out, HasSubstr("validated  transaction tx-77"));
  EXPECT_THAT(get.out,
              HasSubstr("issuance_failed  transaction tx-77  CA busy"));
  EXPECT_THAT(get.out, HasSubstr("certificate_issued  serial 01af"));
  CommandResult unknown =
      Ctl({"notify", "--transaction-id", "tx-never", "--issued"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("NOT_FOUND"));
  EXPECT_EQ(Ctl({"notify", "--issued", "--failed"}).exit_code, 2);
}

TEST_F(ChallengectlE2eTest, StatsCountsVerdictsAndOutstanding) {
  const std::string c = MustIssue({"--device", "dev-stats"});
  Ctl({"validate", "--challenge", c});
  Ctl({"validate", "--challenge", c});
  CommandResult stats = Ctl({"stats"});
  EXPECT_EQ(stats.exit_code, 0) << stats.err;
  EXPECT_THAT(stats.out, HasSubstr("store:        memory"));
  EXPECT_THAT(stats.out, ::testing::MatchesRegex(
                             "(.|\n)*already_used +[1-9][0-9]*\n(.|\n)*"));
  EXPECT_THAT(stats.out, HasSubstr("Validate/OK"));
  EXPECT_THAT(stats.out,
              ::testing::MatchesRegex("(.|\n)*outstanding:  [0-9]+\n(.|\n)*"));
  CommandResult json = Ctl({"--json", "stats"});
  EXPECT_THAT(json.out, HasSubstr("\"validations\""));
}

TEST_F(ChallengectlE2eTest, ShortTtlExpires) {
  const std::string c = MustIssue({"--ttl", "1s"});
  absl::SleepFor(absl::Milliseconds(1200));
  CommandResult v = Ctl({"validate", "--challenge", c});
  EXPECT_EQ(v.exit_code, 1);
  EXPECT_THAT(v.out, HasSubstr("invalid: expired"));
}

TEST_F(ChallengectlE2eTest, UnknownChallengeIsNotFound) {
  CommandResult v =
      Ctl({"validate", "--challenge", "AAAAAAAAAAAAAAAAAAAAAAAAAA"});
  EXPECT_EQ(v.exit_code, 1);
  EXPECT_THAT(v.out, HasSubstr("invalid: not_found"));
  CommandResult get = Ctl({"get", std::string(32, 'a')});
  EXPECT_EQ(get.exit_code, 1);
  EXPECT_THAT(get.err, HasSubstr("NOT_FOUND"));
}

TEST_F(ChallengectlE2eTest, MalformedRequestsExitTwoAndNameTheField) {
  CommandResult no_device = Ctl({"issue"});
  EXPECT_EQ(no_device.exit_code, 2);
  EXPECT_THAT(no_device.err, HasSubstr("--device"));
  CommandResult zero_ttl = Ctl({"issue", "--device", "d", "--ttl", "0s"});
  EXPECT_EQ(zero_ttl.exit_code, 2);
  EXPECT_THAT(zero_ttl.err, HasSubstr("INVALID_ARGUMENT"));
  EXPECT_THAT(zero_ttl.err, HasSubstr("ttl"));
  CommandResult over_max = Ctl({"issue", "--device", "d", "--ttl", "2h"});
  EXPECT_EQ(over_max.exit_code, 2);
  EXPECT_THAT(over_max.err, HasSubstr("ttl"));
  CommandResult huge =
      Ctl({"validate", "--challenge", std::string(10240, 'A')});
  EXPECT_EQ(huge.exit_code, 2);
  EXPECT_THAT(huge.err, HasSubstr("challenge"));
  CommandResult unknown_flag = Ctl({"issue", "--device", "d", "--bogus"});
  EXPECT_EQ(unknown_flag.exit_code, 2);
  CommandResult unknown_cmd = Ctl({"frobnicate"});
  EXPECT_EQ(unknown_cmd.exit_code, 2);
  // Nothing was stored for device "d".
  CommandResult list = Ctl({"list", "--device", "d"});
  EXPECT_EQ(std::count(list.out.begin(), list.out.end(), '\n'), 1);
}

TEST_F(ChallengectlE2eTest, HelpOnEveryCommand) {
  for (const char* cmd : {"issue", "validate", "revoke", "get", "list",
                          "notify", "keys", "csr", "stats"}) {
    CommandResult r = Ctl({cmd, "--help"});
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_THAT(r.out, HasSubstr("Usage: challengectl")) << cmd;
  }
  CommandResult top = Ctl({"--help"});
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_THAT(top.out, HasSubstr("Exit codes"));
}

TEST_F(ChallengectlE2eTest, UnreachableServerExitsThreeQuickly) {
  const absl::Time start = absl::Now();
  CommandResult r =
      RunChallengectl(absl::StrCat("127.0.0.1:", PickFreePort()),
                      {"--deadline", "2s", "issue", "--device", "d"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_LT(absl::Now() - start, absl::Seconds(4));
}

TEST_F(ChallengectlE2eTest, ConcurrentValidatesGiveExactlyOneValid) {
  const std::string c = MustIssue();
  std::atomic<int> valid{0}, used{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 24; ++i) {
    threads.emplace_back([&, i] {
      // 24 processes at once on a small machine: a generous deadline, so
      // that only the store's answer decides each one's outcome.
      CommandResult r =
          RunChallengectl(server_->address(),
                          {"--deadline", "30s", "validate", "--challenge", c,
                           "--transaction-id", absl::StrCat("tx-", i)},
                          absl::Seconds(60));
      if (r.exit_code == 0) {
        ++valid;
      } else if (r.exit_code == 1 && absl::StrContains(r.out, "already_used")) {
        ++used;
      } else {
        ++other;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(valid.load(), 1);
  EXPECT_EQ(used.load(), 23);
  EXPECT_EQ(other.load(), 0);
}

TEST(AuthorityProcessTest, SigtermStopsCleanly) {
  AuthorityProcess server;
  ASSERT_THAT(server.Start(), IsOk());
  EXPECT_EQ(server.Stop(), 0);
  EXPECT_THAT(server.Log(), HasSubstr("stopped"));
}

TEST(AuthorityProcessTest, BadFlagsRefuseToStart) {
  for (std::vector<std::string> flags :
       {std::vector<std::string>{"--store", "mongodb://x"},
        std::vector<std::string>{"--default-ttl", "2h", "--max-ttl", "1h"},
        std::vector<std::string>{"--bogus"}}) {
    std::vector<std::string> argv = {BinaryPath("service/challenge-authority"),
                                     "--listen", "127.0.0.1:0"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    absl::StatusOr<CommandResult> r = RunCommand(argv);
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->exit_code, 2) << flags[0];
    EXPECT_THAT(r->err, HasSubstr("challenge-authority:")) << flags[0];
  }
}

TEST(AuthorityProcessTest, FlagfileIsRead) {
  const std::string dir = MakeTempDir();
  const std::string path = absl::StrCat(dir, "/flags");
  FILE* f = fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs("# config\n--default-ttl=90s\nmax-ttl=2h\n", f);
  fclose(f);
  AuthorityProcess server;
  ASSERT_THAT(server.Start({"--flagfile", path}), IsOk());
  EXPECT_THAT(server.Log(), HasSubstr("default ttl 1m30s, max ttl 2h"));
}

}  // namespace
}  // namespace scepca::testing
