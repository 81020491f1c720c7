// End-to-end: two challenge-authority processes write one audit trail into a
// Redis Stream (--audit-redis-stream), beside their own --audit-log files.
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/authority_process.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"

namespace scepca::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(AuditStreamE2eTest, TwoInstancesWriteOneTrail) {
  SCEPCA_SKIP_WITHOUT_REDIS_SERVER();
  auto redis = RedisServer::Start();
  ASSERT_THAT(redis, IsOk());
  const std::string dir = MakeTempDir();
  AuthorityProcess a, b;
  ASSERT_THAT(a.Start({"--store", (*redis)->tcp_url(), "--audit-redis-stream",
                       "--audit-log", dir + "/a.log", "--redis-command-timeout",
                       "10s"}),
              IsOk());
  ASSERT_THAT(b.Start({"--store", (*redis)->tcp_url(), "--audit-redis-stream",
                       "--audit-redis-maxlen", "1000",
                       "--redis-command-timeout", "10s"}),
              IsOk());
  CommandResult issued =
      RunChallengectl(a.address(), {"issue", "--device", "dev-audit-stream"});
  ASSERT_EQ(issued.exit_code, 0) << issued.err;
  const std::string challenge(absl::StripSuffix(issued.out, "\n"));
  CommandResult valid =
      RunChallengectl(b.address(), {"validate", "--challenge", challenge});
  ASSERT_EQ(valid.exit_code, 0) << valid.out << valid.err;
  CommandResult again =
      RunChallengectl(a.address(), {"validate", "--challenge", challenge});
  ASSERT_EQ(again.exit_code, 1) << again.out << again.err;
  // A clean stop delivers what is queued.
  EXPECT_EQ(a.Stop(), 0);
  EXPECT_EQ(b.Stop(), 0);

  auto range = (*redis)->Command({"XRANGE", "scep:audit", "-", "+"});
  ASSERT_THAT(range, IsOk());
  ASSERT_TRUE(range->is_array());
  std::vector<std::map<std::string, std::string>> entries;
  for (const RedisReply& item : range->elements) {
    std::map<std::string, std::string> fields;
    const RedisReply& kv = item.elements[1];
    for (size_t i = 0; i + 1 < kv.elements.size(); i += 2) {
      fields[kv.elements[i].str] = kv.elements[i + 1].str;
    }
    entries.push_back(std::move(fields));
  }
  ASSERT_EQ(entries.size(), 3u);
  std::set<std::string> instances;
  std::multiset<std::string> decisions;
  for (const auto& e : entries) {
    instances.insert(e.at("instance"));
    decisions.insert(absl::StrCat(e.at("method"), "/", e.at("outcome")));
    EXPECT_EQ(e.at("device_id"), "dev-audit-stream");
    // Never the challenge.
    for (const auto& [name, value] : e) {
      EXPECT_THAT(value, Not(HasSubstr(challenge))) << name;
    }
  }
  EXPECT_EQ(instances.size(), 2u);
  EXPECT_THAT(decisions,
              ::testing::UnorderedElementsAre(
                  "IssueChallenge/ok", "Validate/valid", "Validate/denied"));
  // The file trail of instance a has its own two decisions.
  const std::string file = ReadFile(dir + "/a.log");
  EXPECT_THAT(file, HasSubstr("\"method\":\"IssueChallenge\""));
  EXPECT_THAT(file, HasSubstr("\"outcome\":\"denied\""));
  EXPECT_THAT(file, Not(HasSubstr(challenge)));
}

TEST(RedisStatsE2eTest, OutstandingChallengesAreCountedOnRedis) {
  SCEPCA_SKIP_WITHOUT_REDIS_SERVER();
  auto redis = RedisServer::Start();
  ASSERT_THAT(redis, IsOk());
  AuthorityProcess a;
  ASSERT_THAT(
      a.Start({"--store", (*redis)->tcp_url(), "--outstanding-count-interval",
               "200ms", "--redis-command-timeout", "10s"}),
      IsOk());
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(RunChallengectl(a.address(),
                              {"issue", "--device", absl::StrCat("d", i)})
                  .exit_code,
              0);
  }
  std::string out;
  EXPECT_TRUE(WaitFor(
      [&] {
        out = RunChallengectl(a.address(), {"stats"}).out;
        return absl::StrContains(out, "outstanding:  3\n");
      },
      absl::Seconds(10)))
      << out;
}

TEST(AuditStreamE2eTest, NeedsARedisStore) {
  CommandResult r =
      *RunCommand({BinaryPath("service/challenge-authority"), "--listen",
                   "127.0.0.1:0", "--audit-redis-stream"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--audit-redis-stream needs a Redis"));
}

TEST(AuditStreamE2eTest, BadValuesAreRefusedNamingTheFlag) {
  // The store does not connect at start: no Redis is needed to refuse these.
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--audit-redis-stream", "--audit-redis-maxlen", "0"},
       "--audit-redis-stream"},
      {{"--outstanding-count-interval", "50ms"},
       "--outstanding-count-interval"}};
  for (const auto& [flags, named] : cases) {
    std::vector<std::string> argv = {BinaryPath("service/challenge-authority"),
                                     "--listen", "127.0.0.1:0", "--store",
                                     "redis://127.0.0.1:1"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    CommandResult r = *RunCommand(argv);
    EXPECT_EQ(r.exit_code, 2) << named;
    EXPECT_THAT(r.err, HasSubstr(named));
  }
}

}  // namespace
}  // namespace scepca::testing
