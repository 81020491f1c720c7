// Counting pending challenges in Redis, and sharing the count in a fleet.
#include "service/redis/redis_outstanding_counter.h"

#include <memory>
#include <string>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/redis/redis_challenge_store.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"

namespace scepca::testing {
namespace {

absl::Time Now() {
  return absl::FromUnixMicros(absl::ToUnixMicros(absl::Now()));
}

ChallengeRecord MakeRecord(int n, absl::Duration ttl) {
  ChallengeRecord r;
  r.id = absl::StrFormat("%032x", n);
  r.device_id = absl::StrCat("dev-", n % 7);
  r.kind = ChallengeKind::kOneTime;
  r.created_at = Now();
  r.expires_at = r.created_at + ttl;
  r.forget_at = r.expires_at + absl::Hours(1);
  return r;
}

class RedisOutstandingCounterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SCEPCA_SKIP_WITHOUT_REDIS_SERVER();
    auto server = RedisServer::Start();
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
    store_ = NewStore("scep:");
  }

  std::unique_ptr<RedisChallengeStore> NewStore(const std::string& prefix) {
    RedisStoreOptions options;
    options.url = server_->tcp_url();
    options.prefix = prefix;
    // Generous, so that a loaded (or sanitized) run does not fail a count.
    options.command_timeout = absl::Seconds(10);
    auto store = RedisChallengeStore::Create(options);
    EXPECT_THAT(store, IsOk());
    return store.ok() ? *std::move(store) : nullptr;
  }

  std::unique_ptr<RedisServer> server_;
  std::unique_ptr<RedisChallengeStore> store_;
};

TEST_F(RedisOutstandingCounterTest, CountsOnlyPendingUnexpiredRecords) {
  EXPECT_THAT(store_->CountPending(Now()), IsOkAndHolds(0));
  // 2,500 pending (more than one SCAN page and one pipeline batch).
  for (int i = 0; i < 2500; ++i) {
    ASSERT_THAT(store_->Insert(MakeRecord(i, absl::Hours(1)), Now()), IsOk());
  }
  // Used, revoked and expired ones do not count.
  for (int i = 0; i < 10; ++i) {
    ASSERT_THAT(
        store_->Consume(MakeRecord(i, absl::Hours(1)).id, UseInfo(), Now()),
        IsOk());
  }
  ASSERT_THAT(store_->Revoke(MakeRecord(10, absl::Hours(1)).id, "x", Now()),
              IsOk());
  ASSERT_THAT(store_->Insert(MakeRecord(9000, absl::Milliseconds(100)), Now()),
              IsOk());
  absl::SleepFor(absl::Milliseconds(150));
  // Nor do other prefixes' records (another deployment sharing the Redis).
  auto other = NewStore("other*:");
  ASSERT_THAT(other->Insert(MakeRecord(7, absl::Hours(1)), Now()), IsOk());
  EXPECT_THAT(store_->CountPending(Now()), IsOkAndHolds(2500 - 11));
  EXPECT_THAT(other->CountPending(Now()), IsOkAndHolds(1));
}

TEST_F(RedisOutstandingCounterTest, OneInstanceCountsPerIntervalAllRead) {
  for (int i = 0; i < 40; ++i) {
    ASSERT_THAT(store_->Insert(MakeRecord(i, absl::Hours(1)), Now()), IsOk());
  }
  auto second_store = NewStore("scep:");
  const absl::Duration interval = absl::Milliseconds(400);
  auto a = RedisOutstandingCounter::Start(store_.get(), interval);
  auto b = RedisOutstandingCounter::Start(second_store.get(), interval);
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  const absl::Time start = absl::Now();
  ASSERT_TRUE(WaitFor(
      [&] { return (*a)->Latest().has_value() && (*b)->Latest().has_value(); },
      absl::Seconds(10)));
  EXPECT_EQ((*a)->Latest()->pending, 40);
  EXPECT_EQ((*b)->Latest()->pending, 40);
  // New challenges show after a later count.
  for (int i = 40; i < 45; ++i) {
    ASSERT_THAT(store_->Insert(MakeRecord(i, absl::Hours(1)), Now()), IsOk());
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        return (*a)->Latest()->pending == 45 && (*b)->Latest()->pending == 45;
      },
      absl::Seconds(10)));
  // The lease: the two together counted about once per interval, not once
  // per tick each (4 ticks per interval).
  const double intervals = (absl::Now() - start) / interval;
  EXPECT_LE((*a)->counts() + (*b)->counts(), intervals + 2);
  EXPECT_GE((*a)->counts() + (*b)->counts(), 2);
}

TEST_F(RedisOutstandingCounterTest, UnknownUntilRedisAnswers) {
  server_->Pause();
  auto counter =
      RedisOutstandingCounter::Start(store_.get(), absl::Milliseconds(200));
  ASSERT_THAT(counter, IsOk());
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_FALSE((*counter)->Latest().has_value());
  server_->Resume();
  EXPECT_TRUE(WaitFor([&] { return (*counter)->Latest().has_value(); },
                      absl::Seconds(10)));
  EXPECT_EQ((*counter)->Latest()->pending, 0);
}

TEST_F(RedisOutstandingCounterTest, RefusesATinyInterval) {
  EXPECT_THAT(
      RedisOutstandingCounter::Start(store_.get(), absl::Milliseconds(10)),
      StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace scepca::testing
