// End-to-end through the binaries on a real Sentinel deployment and a real
// Cluster: --store redis-sentinel://... and redis-cluster://... URLs, as an
// operator writes them (the store's own behaviour on them, failovers
// included, is tested in tests/redis/).
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/authority_process.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/redis_topology.h"
#include "tests/testing/status_matchers.h"

namespace scepca::testing {
namespace {

using ::testing::HasSubstr;

// Issues on one instance, validates on the other, and checks what a second
// validate, the list and the stats say.
void RoundTrip(const std::string& url, const std::string& scheme) {
  AuthorityProcess a, b;
  // Not a test of timeouts: generous ones, for loaded or sanitized runs.
  const std::vector<std::string> flags = {"--store", url,
                                          "--redis-command-timeout", "10s"};
  ASSERT_THAT(a.Start(flags), IsOk());
  ASSERT_THAT(b.Start(flags), IsOk());
  std::vector<std::string> challenges;
  for (int i = 0; i < 20; ++i) {
    CommandResult issued = RunChallengectl(
        a.address(), {"issue", "--device", absl::StrCat("topo-dev-", i % 4)});
    ASSERT_EQ(issued.exit_code, 0) << issued.err;
    challenges.emplace_back(absl::StripSuffix(issued.out, "\n"));
  }
  for (const std::string& c : challenges) {
    CommandResult valid =
        RunChallengectl(b.address(), {"validate", "--challenge", c});
    EXPECT_EQ(valid.exit_code, 0) << valid.out << valid.err;
  }
  CommandResult again =
      RunChallengectl(a.address(), {"validate", "--challenge", challenges[0]});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.out, HasSubstr("already_used"));
  CommandResult list =
      RunChallengectl(b.address(), {"list", "--device", "topo-dev-1"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr("used"));
  CommandResult stats = RunChallengectl(a.address(), {"stats"});
  EXPECT_EQ(stats.exit_code, 0) << stats.err;
  EXPECT_THAT(stats.out, HasSubstr(absl::StrCat("store:        ", scheme)));
  // Neither the URL's password (none here) nor anything else is printed
  // that should not be; the authority logged its store.
  EXPECT_THAT(a.Log(), HasSubstr(absl::StrCat("with store ", scheme)));
}

TEST(RedisTopologiesE2eTest, SentinelUrl) {
  SCEPCA_SKIP_WITHOUT_REDIS_SERVER();
  auto sentinel = RedisSentinelTopology::Start();
  ASSERT_THAT(sentinel, IsOk());
  RoundTrip((*sentinel)->url(), "redis-sentinel://");
}

TEST(RedisTopologiesE2eTest, ClusterUrl) {
  SCEPCA_SKIP_WITHOUT_REDIS_SERVER();
  auto cluster = RedisClusterTopology::Start();
  ASSERT_THAT(cluster, IsOk());
  RoundTrip((*cluster)->url(), "redis-cluster://");
}

}  // namespace
}  // namespace scepca::testing
