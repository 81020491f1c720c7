// Tests of ParseRedisDeployment(): redis-sentinel:// and redis-cluster://
// URLs (the single-server forms are in redis_url_test.cc).
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/redis/redis_backend.h"
#include "service/redis/redis_url.h"
#include "tests/testing/status_matchers.h"

namespace scepca {
namespace {

using ::scepca::testing::IsOk;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(RedisDeploymentUrlTest, SentinelWithCredentialsHostsNameAndDb) {
  absl::StatusOr<RedisDeployment> d = ParseRedisDeployment(
      "redis-sentinel://app:p%40ss@10.0.0.1:26379,sentinel-b,[::1]:26380/"
      "my-master.1?db=3");
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->kind, RedisDeployment::Kind::kSentinel);
  EXPECT_EQ(d->master_name, "my-master.1");
  EXPECT_EQ(d->server.user, "app");
  EXPECT_EQ(d->server.password, "p@ss");
  EXPECT_EQ(d->server.db, 3);
  ASSERT_EQ(d->hosts.size(), 3u);
  EXPECT_EQ(d->hosts[0].host, "10.0.0.1");
  EXPECT_EQ(d->hosts[0].port, 26379);
  EXPECT_EQ(d->hosts[1].host, "sentinel-b");
  EXPECT_EQ(d->hosts[1].port, 26379);  // The default.
  EXPECT_EQ(d->hosts[2].host, "::1");
  EXPECT_EQ(d->hosts[2].port, 26380);
  // Every host carries the credentials.
  EXPECT_EQ(d->hosts[1].password, "p@ss");
  EXPECT_EQ(d->Redacted(),
            "redis-sentinel://10.0.0.1:26379,sentinel-b:26379,[::1]:26380/"
            "my-master.1?db=3");
}

TEST(RedisDeploymentUrlTest, ClusterWithSeeds) {
  absl::StatusOr<RedisDeployment> d =
      ParseRedisDeployment("redis-cluster://:secret@h1:7000,h2:7001,h3");
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->kind, RedisDeployment::Kind::kCluster);
  EXPECT_EQ(d->server.password, "secret");
  EXPECT_TRUE(d->server.user.empty());
  ASSERT_EQ(d->hosts.size(), 3u);
  EXPECT_EQ(d->hosts[2].port, 6379);
  EXPECT_EQ(d->Redacted(), "redis-cluster://h1:7000,h2:7001,h3:6379");
  EXPECT_THAT(d->Redacted(), Not(HasSubstr("secret")));
}

TEST(RedisDeploymentUrlTest, SingleServerFormsStillParse) {
  absl::StatusOr<RedisDeployment> d =
      ParseRedisDeployment("redis://127.0.0.1:6379/2");
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->kind, RedisDeployment::Kind::kStandalone);
  EXPECT_EQ(d->server.db, 2);
}

TEST(RedisDeploymentUrlTest, BadUrlsFailNamingTheProblem) {
  struct Case {
    const char* url;
    const char* problem;
  };
  for (const Case& c : {
           Case{"redis-sentinel://h1:26379", "master name"},
           Case{"redis-sentinel://h1:26379/", "master name"},
           Case{"redis-sentinel://h1:26379/bad name", "master name"},
           Case{"redis-sentinel://h1,,h2/m", "empty host"},
           Case{"redis-sentinel:///m", "missing host list"},
           Case{"redis-sentinel://h1/m?timeout=1", "db=N"},
           Case{"redis-sentinel://h1:99999/m", "port"},
           Case{"redis-sentinel://:hunter2@h1/m?db=x", "database"},
           Case{"redis-cluster://h1:7000/1", "only database 0"},
           Case{"redis-cluster://h1:7000?x=1", "no query"},
           Case{"redis-cluster://", "missing host list"},
           Case{"redis-cluster://:hunter2@h1:0", "port"},
       }) {
    absl::StatusOr<RedisDeployment> d = ParseRedisDeployment(c.url);
    ASSERT_FALSE(d.ok()) << c.url;
    EXPECT_TRUE(absl::IsInvalidArgument(d.status())) << c.url;
    EXPECT_THAT(std::string(d.status().message()), HasSubstr(c.problem))
        << c.url;
    EXPECT_THAT(std::string(d.status().message()), Not(HasSubstr("hunter2")));
  }
}

TEST(RedisRedirectTest, ParsesClusterAndSentinelRedirections) {
  absl::optional<RedisRedirect> moved =
      ParseRedirect("MOVED 3999 127.0.0.1:6381", true, false);
  ASSERT_TRUE(moved.has_value());
  EXPECT_EQ(moved->kind, RedisRedirect::Kind::kMoved);
  EXPECT_EQ(moved->slot, 3999);
  EXPECT_EQ(moved->address, "127.0.0.1:6381");
  absl::optional<RedisRedirect> ask =
      ParseRedirect("ASK 12 [::1]:7000", true, false);
  ASSERT_TRUE(ask.has_value());
  EXPECT_EQ(ask->kind, RedisRedirect::Kind::kAsk);
  EXPECT_EQ(ask->address, "[::1]:7000");
  EXPECT_EQ(ParseRedirect("TRYAGAIN Multiple keys request during rehashing "
                          "of slot",
                          true, false)
                ->kind,
            RedisRedirect::Kind::kTryAgain);
  EXPECT_EQ(ParseRedirect("CLUSTERDOWN The cluster is down", true, false)->kind,
            RedisRedirect::Kind::kClusterDown);
  EXPECT_EQ(ParseRedirect("READONLY You can't write against a read only "
                          "replica.",
                          false, true)
                ->kind,
            RedisRedirect::Kind::kReadOnly);
  // Not redirections: for the other mode, malformed, or other errors.
  EXPECT_FALSE(ParseRedirect("READONLY x", true, false).has_value());
  EXPECT_FALSE(ParseRedirect("MOVED 1 h:1", false, true).has_value());
  EXPECT_FALSE(ParseRedirect("MOVED 16384 h:1", true, false).has_value());
  EXPECT_FALSE(ParseRedirect("MOVED x h:1", true, false).has_value());
  EXPECT_FALSE(ParseRedirect("MOVED 1 nohostport", true, false).has_value());
  EXPECT_FALSE(
      ParseRedirect("OOM command not allowed", true, true).has_value());
}

TEST(RedisRedirectTest, SplitHostPort) {
  std::string host;
  int port = 0;
  EXPECT_TRUE(SplitHostPort("10.1.2.3:7000", &host, &port));
  EXPECT_EQ(host, "10.1.2.3");
  EXPECT_EQ(port, 7000);
  EXPECT_TRUE(SplitHostPort("[fe80::1]:7001", &host, &port));
  EXPECT_EQ(host, "fe80::1");
  EXPECT_FALSE(SplitHostPort("host", &host, &port));
  EXPECT_FALSE(SplitHostPort("host:0", &host, &port));
  EXPECT_FALSE(SplitHostPort(":7000", &host, &port));
}

}  // namespace
}  // namespace scepca
