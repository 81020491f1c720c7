#include "service/redis/redis_url.h"

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace scepca {
namespace {

using ::scepca::testing::IsOk;
using ::scepca::testing::IsOkAndHolds;
using ::scepca::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(RedisUrlTest, ParsesHostAndPort) {
  absl::StatusOr<RedisUrl> url = ParseRedisUrl("redis://10.1.2.3:6380");
  ASSERT_THAT(url, IsOk());
  EXPECT_EQ(url->transport, RedisUrl::Transport::kTcp);
  EXPECT_EQ(url->host, "10.1.2.3");
  EXPECT_EQ(url->port, 6380);
  EXPECT_EQ(url->db, 0);
  EXPECT_FALSE(url->has_password);
  EXPECT_EQ(url->Redacted(), "redis://10.1.2.3:6380/0");
}

TEST(RedisUrlTest, DefaultsPortTo6379) {
  absl::StatusOr<RedisUrl> url = ParseRedisUrl("redis://redis.internal");
  ASSERT_THAT(url, IsOk());
  EXPECT_EQ(url->host, "redis.internal");
  EXPECT_EQ(url->port, 6379);
}

TEST(RedisUrlTest, ParsesUserPasswordAndDb) {
  absl::StatusOr<RedisUrl> url =
      ParseRedisUrl("redis://scepca:s3cr%40t%3A%2F@localhost:6379/3");
  ASSERT_THAT(url, IsOk());
  EXPECT_EQ(url->user, "scepca");
  EXPECT_EQ(url->password, "s3cr@t:/");
  EXPECT_TRUE(url->has_password);
  EXPECT_EQ(url->host, "localhost");
  EXPECT_EQ(url->db, 3);
  EXPECT_EQ(url->Redacted(), "redis://localhost:6379/3");
}

TEST(RedisUrlTest, ParsesPasswordForDefaultUser) {
  absl::StatusOr<RedisUrl> url = ParseRedisUrl("redis://:pw@127.0.0.1:1/");
  ASSERT_THAT(url, IsOk());
  EXPECT_EQ(url->user, "");
  EXPECT_EQ(url->password, "pw");
  EXPECT_EQ(url->port, 1);
  EXPECT_EQ(url->db, 0);
}

TEST(RedisUrlTest, ParsesBracketedIpv6) {
  absl::StatusOr<RedisUrl> url = ParseRedisUrl("redis://[::1]:7000/1");
  ASSERT_THAT(url, IsOk());
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, 7000);
  EXPECT_EQ(url->Redacted(), "redis://[::1]:7000/1");
}

TEST(RedisUrlTest, ParsesUnixSocket) {
  absl::StatusOr<RedisUrl> url = ParseRedisUrl("unix:///run/redis/r.sock");
  ASSERT_THAT(url, IsOk());
  EXPECT_EQ(url->transport, RedisUrl::Transport::kUnix);
  EXPECT_EQ(url->socket_path, "/run/redis/r.sock");
  EXPECT_EQ(url->db, 0);
  EXPECT_EQ(url->Redacted(), "unix:///run/redis/r.sock?db=0");
}

TEST(RedisUrlTest, ParsesUnixSocketWithDbAndCredentials) {
  absl::StatusOr<RedisUrl> url =
      ParseRedisUrl("unix://app:pw%2F1@/var/run/redis.sock?db=5");
  ASSERT_THAT(url, IsOk());
  EXPECT_EQ(url->socket_path, "/var/run/redis.sock");
  EXPECT_EQ(url->db, 5);
  EXPECT_EQ(url->user, "app");
  EXPECT_EQ(url->password, "pw/1");
  EXPECT_THAT(url->Redacted(), Not(HasSubstr("pw")));
}

struct BadUrl {
  std::string url;
  std::string problem;  // A part of the expected message.
};

void PrintTo(const BadUrl& bad, std::ostream* os) { *os << bad.url; }

class RedisUrlBadTest : public ::testing::TestWithParam<BadUrl> {};

TEST_P(RedisUrlBadTest, ParseFailsNamingTheProblem) {
  absl::StatusOr<RedisUrl> url = ParseRedisUrl(GetParam().url);
  EXPECT_THAT(url, StatusIs(absl::StatusCode::kInvalidArgument,
                            AllOf(HasSubstr(GetParam().problem),
                                  Not(HasSubstr("hunter2")))));
}

std::string CaseName(const ::testing::TestParamInfo<BadUrl>& param_info) {
  return absl::StrCat("Case", param_info.index);
}

INSTANTIATE_TEST_SUITE_P(
    Bad, RedisUrlBadTest,
    ::testing::Values(
        BadUrl{"", "empty URL"}, BadUrl{"http://h:1", "unknown scheme"},
        BadUrl{"Redis://h:1", "unknown scheme"}, BadUrl{"rediss://h:1", "TLS"},
        BadUrl{"redis://", "missing host"},
        BadUrl{"redis://:6379", "missing host"},
        BadUrl{"redis://h:", "empty port"},
        BadUrl{"redis://h:0", "port must be"},
        BadUrl{"redis://h:65536", "port must be"},
        BadUrl{"redis://h:63a", "port must be"},
        BadUrl{"redis://h:-1", "port must be"},
        BadUrl{"redis://h:1/x", "database"},
        BadUrl{"redis://h:1/-1", "database"},
        BadUrl{"redis://h:1/1/2", "database"},
        BadUrl{"redis://h:1?db=2", "path"},
        BadUrl{"redis://h:1#frag", "fragments"},
        BadUrl{"redis://hunter2@h:1", "user info without ':'"},
        BadUrl{"redis://u:@h:1", "empty password"},
        BadUrl{"redis://u:hunter2%zz@h:1", "bad %-escape"},
        BadUrl{"redis://u:hunter2%4@h:1", "escape"},
        BadUrl{"redis://::1:6379", "brackets"},
        BadUrl{"redis://[::1:6379", "closing ']'"},
        BadUrl{"redis://[nothex]:1", "not an IPv6"},
        BadUrl{"redis://[::1]x", "junk"}, BadUrl{"redis://h h:1", "spaces"},
        BadUrl{"unix://", "missing socket path"},
        BadUrl{"unix://relative.sock", "absolute"},
        BadUrl{"unix:///run/", "directory"},
        BadUrl{"unix:///r.sock?db=x", "database"},
        BadUrl{"unix:///r.sock?timeout=1", "db=N"},
        BadUrl{"unix:///" + std::string(120, 'a'), "longer than"}),
    CaseName);

TEST(RedisUrlTest, ResolvesIpLiteralsWithoutLookup) {
  EXPECT_THAT(ResolveRedisHost("127.0.0.1"),
              IsOkAndHolds(ElementsAre("127.0.0.1")));
  EXPECT_THAT(ResolveRedisHost("::1"), IsOkAndHolds(ElementsAre("::1")));
}

TEST(RedisUrlTest, ResolvesLocalhostToLoopback) {
  absl::StatusOr<std::vector<std::string>> addresses =
      ResolveRedisHost("localhost");
  ASSERT_THAT(addresses, IsOk());
  ASSERT_FALSE(addresses->empty());
  EXPECT_TRUE(addresses->front() == "127.0.0.1" || addresses->front() == "::1")
      << addresses->front();
}

}  // namespace
}  // namespace scepca
