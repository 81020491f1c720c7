// Fault tests of RedisChallengeStore against a real redis-server that is
// killed, stopped, restarted, flushed of its scripts or out of memory. Every
// test runs its own server.
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/redis/redis_challenge_store.h"
#include "service/redis/redis_connection.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/timing.h"

namespace scepca::testing {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;

// The spec's bound for an answer when Redis is dead or frozen (for the
// release build; scaled under sanitizers).
const absl::Duration kFailFast = FailFastBound(absl::Seconds(1));

std::string IdFor(int n) { return absl::StrFormat("%032x", n); }

absl::Time Now() {
  return absl::FromUnixMicros(absl::ToUnixMicros(absl::Now()));
}

ChallengeRecord MakeRecord(const std::string& id, const std::string& device) {
  ChallengeRecord r;
  r.id = id;
  r.device_id = device;
  r.created_at = Now();
  r.expires_at = r.created_at + absl::Hours(1);
  r.forget_at = r.expires_at + absl::Minutes(5);
  return r;
}

struct TimedCall {
  std::string name;
  std::function<absl::Status()> run;
};

// One call of each kind, each on a fresh id.
std::vector<TimedCall> EveryCall(ChallengeStore* store) {
  static std::atomic<int> next{5000};
  const std::string id = IdFor(next.fetch_add(1));
  IdempotencyEntry entry;
  entry.challenge_id = id;
  entry.expires_at = Now() + absl::Hours(1);
  return {
      {"Insert", [=] { return store->Insert(MakeRecord(id, "dev"), Now()); }},
      {"Get", [=] { return store->Get(id, Now()).status(); }},
      {"Consume",
       [=] {
         return store->Consume(id, UseInfo{"tx", ""}, Now()).status();
       }},
      {"Revoke", [=] { return store->Revoke(id, "r", Now()).status(); }},
      {"RevokeSubject",
       [=] {
         return store
             ->RevokeSubject(SubjectType::kDevice, "dev", "r", Now(),
                             Now() + absl::Hours(1))
             .status();
       }},
      {"RevokedBefore",
       [=] {
         return store->RevokedBefore(SubjectType::kUser, "u", Now()).status();
       }},
      {"List",
       [=] {
         return store->List(SubjectType::kDevice, "dev", 10, "", Now())
             .status();
       }},
      {"PutIdempotencyIfAbsent",
       [=] {
         return store->PutIdempotencyIfAbsent("k", entry, Now()).status();
       }},
      {"Delete", [=] { return store->Delete(id); }},
      {"Ping", [=] { return store->Ping(); }},
  };
}

void ExpectUnavailableWithin(const TimedCall& call, absl::Duration bound) {
  const absl::Time start = absl::Now();
  const absl::Status status = call.run();
  const absl::Duration took = absl::Now() - start;
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kUnavailable)) << call.name;
  EXPECT_LT(took, bound) << call.name;
}

class RedisFaultTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { SCEPCA_SKIP_WITHOUT_REDIS_SERVER(); }

  // Starts this test's server; returns false (with a failure) if it could
  // not start.
  bool StartServer(const RedisServerOptions& options = {}) {
    absl::StatusOr<std::unique_ptr<RedisServer>> server =
        RedisServer::Start(options);
    if (!server.ok()) {
      ADD_FAILURE() << server.status();
      return false;
    }
    server_ = *std::move(server);
    return true;
  }

  std::unique_ptr<ChallengeStore> NewStore(int pool_size = 4) {
    RedisStoreOptions options;
    options.url = GetParam() ? server_->unix_url() : server_->tcp_url();
    options.pool_size = pool_size;
    absl::StatusOr<std::unique_ptr<ChallengeStore>> store =
        NewRedisChallengeStore(options);
    EXPECT_THAT(store, IsOk());
    return store.ok() ? *std::move(store) : nullptr;
  }

  // Waits (up to the longest reconnect backoff and then some) until the
  // store answers PING.
  static bool WaitUntilServing(ChallengeStore* store) {
    return WaitFor([store] { return store->Ping().ok(); }, absl::Seconds(5));
  }

  std::unique_ptr<RedisServer> server_;
};

std::string TransportName(const ::testing::TestParamInfo<bool>& param_info) {
  return param_info.param ? "Unix" : "Tcp";
}

INSTANTIATE_TEST_SUITE_P(Transports, RedisFaultTest,
                         ::testing::Values(false, true), TransportName);

TEST_P(RedisFaultTest, KilledServerMakesEveryCallUnavailableFastThenRecovers) {
  ASSERT_TRUE(StartServer());
  std::unique_ptr<ChallengeStore> store = NewStore();
  ASSERT_NE(store, nullptr);
  ASSERT_THAT(store->Insert(MakeRecord(IdFor(1), "dev"), Now()), IsOk());

  server_->Kill();
  // Twice: first the pooled connections are found dead, then reconnecting
  // is refused (and backs off).
  for (int round = 0; round < 2; ++round) {
    for (const TimedCall& call : EveryCall(store.get())) {
      ExpectUnavailableWithin(call, kFailFast);
    }
  }

  // The same store serves again once Redis is back (empty: no persistence).
  ASSERT_THAT(server_->Restart(), IsOk());
  ASSERT_TRUE(WaitUntilServing(store.get()));
  ASSERT_THAT(store->Insert(MakeRecord(IdFor(2), "dev"), Now()), IsOk());
  absl::StatusOr<ConsumeResult> consumed =
      store->Consume(IdFor(2), UseInfo{"", ""}, Now());
  ASSERT_THAT(consumed, IsOk());
  EXPECT_EQ(consumed->outcome, ConsumeResult::Outcome::kConsumed);
}

TEST_P(RedisFaultTest, StoreCreatedWhileRedisIsDownServesOnceItIsUp) {
  ASSERT_TRUE(StartServer());
  server_->Kill();
  std::unique_ptr<ChallengeStore> store = NewStore();
  ASSERT_NE(store, nullptr);
  ExpectUnavailableWithin({"Ping", [&] { return store->Ping(); }}, kFailFast);
  ASSERT_THAT(server_->Restart(), IsOk());
  ASSERT_TRUE(WaitUntilServing(store.get()));
  EXPECT_THAT(store->Insert(MakeRecord(IdFor(3), "dev"), Now()), IsOk());
}

TEST_P(RedisFaultTest, StoppedServerMakesCallsUnavailableWithinTimeout) {
  ASSERT_TRUE(StartServer());
  // One connection, so a connection that kept a lost reply would be reused.
  std::unique_ptr<ChallengeStore> store = NewStore(/*pool_size=*/1);
  ASSERT_NE(store, nullptr);
  ASSERT_THAT(store->Insert(MakeRecord(IdFor(10), "dev-a"), Now()), IsOk());
  ASSERT_THAT(store->Insert(MakeRecord(IdFor(11), "dev-b"), Now()), IsOk());

  server_->Pause();
  // Sent, but never answered: the outcome is unknown, so not kConsumed.
  ExpectUnavailableWithin(
      {"Consume",
       [&] {
         return store->Consume(IdFor(10), UseInfo{"tx", ""}, Now()).status();
       }},
      kFailFast);
  for (const TimedCall& call : EveryCall(store.get())) {
    if (call.name == "Get" || call.name == "Insert" || call.name == "Ping" ||
        call.name == "List") {
      ExpectUnavailableWithin(call, kFailFast);
    }
  }
  server_->Resume();

  ASSERT_TRUE(WaitUntilServing(store.get()));
  // Redis may have run the Consume it had read before it was stopped; either
  // way the record is now used, and no later answer is someone else's.
  absl::StatusOr<ConsumeResult> again =
      store->Consume(IdFor(10), UseInfo{"tx2", ""}, Now());
  ASSERT_THAT(again, IsOk());
  EXPECT_THAT(again->outcome, AnyOf(ConsumeResult::Outcome::kConsumed,
                                    ConsumeResult::Outcome::kAlreadyUsed));
  absl::StatusOr<ChallengeRecord> other = store->Get(IdFor(11), Now());
  ASSERT_THAT(other, IsOk());
  EXPECT_EQ(other->device_id, "dev-b");
  EXPECT_EQ(other->state, ChallengeState::kPending);
}

TEST_P(RedisFaultTest, BusyPoolOnStoppedServerStillAnswersWithinBound) {
  ASSERT_TRUE(StartServer());
  std::unique_ptr<ChallengeStore> store = NewStore(/*pool_size=*/1);
  ASSERT_NE(store, nullptr);
  ASSERT_THAT(store->Ping(), IsOk());
  server_->Pause();
  std::vector<std::thread> threads;
  std::atomic<int> slow{0};
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      const absl::Time start = absl::Now();
      if (store->Ping().ok()) ++ok;
      if (absl::Now() - start >= kFailFast) ++slow;
    });
  }
  for (std::thread& t : threads) t.join();
  server_->Resume();
  EXPECT_EQ(ok.load(), 0);
  EXPECT_EQ(slow.load(), 0);
}

TEST_P(RedisFaultTest, ScriptFlushBetweenCallsIsRecovered) {
  ASSERT_TRUE(StartServer());
  std::unique_ptr<ChallengeStore> store = NewStore();
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 4; ++i) {
    ASSERT_THAT(store->Insert(MakeRecord(IdFor(20 + i), "dev-s"), Now()),
                IsOk());
  }
  auto flush = [&] {
    absl::StatusOr<RedisReply> reply = server_->Command({"SCRIPT", "FLUSH"});
    ASSERT_THAT(reply, IsOk());
    ASSERT_TRUE(reply->is_status("OK"));
  };
  flush();
  absl::StatusOr<ConsumeResult> consumed =
      store->Consume(IdFor(20), UseInfo{"tx", ""}, Now());
  ASSERT_THAT(consumed, IsOk());
  EXPECT_EQ(consumed->outcome, ConsumeResult::Outcome::kConsumed);
  flush();
  // Pipelined scripts hit NOSCRIPT together.
  EXPECT_THAT(store->RevokeSubject(SubjectType::kDevice, "dev-s", "r", Now(),
                                   Now() + absl::Hours(1)),
              IsOkAndHolds(3));
  flush();
  EXPECT_THAT(store->Insert(MakeRecord(IdFor(25), "dev-s"), Now()), IsOk());
  flush();
  EXPECT_THAT(store->Revoke(IdFor(25), "r", Now()), IsOkAndHolds(true));
  flush();
  // Index and insert scripts pipelined with the markers' read.
  EXPECT_THAT(
      store->InsertAndReadRevokedBefore(MakeRecord(IdFor(26), "dev-s"), Now()),
      IsOkAndHolds(::testing::Ge(Now() - absl::Minutes(1))));
  EXPECT_THAT(store->Get(IdFor(26), Now()), IsOk());
}

TEST_P(RedisFaultTest, OutOfMemoryRefusesWritesAndNeverFakesAConsume) {
  ASSERT_TRUE(StartServer());
  std::unique_ptr<ChallengeStore> store = NewStore();
  ASSERT_NE(store, nullptr);
  ASSERT_THAT(store->Insert(MakeRecord(IdFor(30), "dev-m"), Now()), IsOk());
  ASSERT_THAT(
      server_->Command({"CONFIG", "SET", "maxmemory-policy", "noeviction"}),
      IsOk());
  ASSERT_THAT(server_->Command({"CONFIG", "SET", "maxmemory", "1"}), IsOk());

  EXPECT_THAT(store->Insert(MakeRecord(IdFor(31), "dev-m"), Now()),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("out of memory")));
  EXPECT_THAT(
      store->InsertAndReadRevokedBefore(MakeRecord(IdFor(32), "dev-m"), Now()),
      StatusIs(absl::StatusCode::kResourceExhausted,
               HasSubstr("out of memory")));
  absl::StatusOr<ConsumeResult> consumed =
      store->Consume(IdFor(30), UseInfo{"tx", ""}, Now());
  if (consumed.ok()) {
    EXPECT_NE(consumed->outcome, ConsumeResult::Outcome::kConsumed);
  } else {
    EXPECT_THAT(consumed, AnyOf(StatusIs(absl::StatusCode::kResourceExhausted),
                                StatusIs(absl::StatusCode::kUnavailable)));
  }
  // Reads still work, and the record is untouched.
  EXPECT_THAT(store->Get(IdFor(30), Now()),
              IsOkAndHolds(::testing::Field(&ChallengeRecord::state,
                                            ChallengeState::kPending)));
  EXPECT_THAT(store->Get(IdFor(31), Now()),
              StatusIs(absl::StatusCode::kNotFound));

  ASSERT_THAT(server_->Command({"CONFIG", "SET", "maxmemory", "0"}), IsOk());
  consumed = store->Consume(IdFor(30), UseInfo{"tx", ""}, Now());
  ASSERT_THAT(consumed, IsOk());
  EXPECT_EQ(consumed->outcome, ConsumeResult::Outcome::kConsumed);
}

TEST_P(RedisFaultTest, AcknowledgedConsumeSurvivesKillWithAppendfsyncAlways) {
  RedisServerOptions options;
  options.appendonly = true;
  options.appendfsync_always = true;
  ASSERT_TRUE(StartServer(options));
  std::unique_ptr<ChallengeStore> store = NewStore();
  ASSERT_NE(store, nullptr);
  ASSERT_THAT(store->Insert(MakeRecord(IdFor(40), "dev-d"), Now()), IsOk());
  ASSERT_THAT(store->Insert(MakeRecord(IdFor(41), "dev-d"), Now()), IsOk());
  absl::StatusOr<ConsumeResult> consumed =
      store->Consume(IdFor(40), UseInfo{"tx-durable", ""}, Now());
  ASSERT_THAT(consumed, IsOk());
  ASSERT_EQ(consumed->outcome, ConsumeResult::Outcome::kConsumed);

  server_->Kill();
  ASSERT_THAT(server_->Restart(), IsOk());
  ASSERT_TRUE(WaitUntilServing(store.get()));

  absl::StatusOr<ChallengeRecord> used = store->Get(IdFor(40), Now());
  ASSERT_THAT(used, IsOk());
  EXPECT_EQ(used->state, ChallengeState::kUsed);
  EXPECT_EQ(used->used_transaction_id, "tx-durable");
  absl::StatusOr<ConsumeResult> again =
      store->Consume(IdFor(40), UseInfo{"tx", ""}, Now());
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->outcome, ConsumeResult::Outcome::kAlreadyUsed);
  EXPECT_THAT(store->Get(IdFor(41), Now()),
              IsOkAndHolds(::testing::Field(&ChallengeRecord::state,
                                            ChallengeState::kPending)));
  // The TTL survived too.
  absl::StatusOr<RedisReply> ttl =
      server_->Command({"PTTL", static_cast<RedisChallengeStore*>(store.get())
                                    ->RecordKeyForTesting(IdFor(40))});
  ASSERT_THAT(ttl, IsOk());
  EXPECT_GT(ttl->integer, 0);
}

TEST(RedisErrorMappingTest, ErrorRepliesMapToCodes) {
  EXPECT_THAT(
      StatusFromErrorReply("redis://h:1/0",
                           "OOM command not allowed when used memory > "
                           "'maxmemory'."),
      StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("maxmemory")));
  for (const char* error :
       {"READONLY You can't write against a read only replica.",
        "MISCONF Redis is configured to save RDB snapshots, but ...",
        "LOADING Redis is loading the dataset in memory",
        "BUSY Redis is busy running a script.",
        "MASTERDOWN Link with MASTER is down",
        "NOAUTH Authentication required."}) {
    EXPECT_THAT(
        StatusFromErrorReply("redis://h:1/0", error),
        StatusIs(absl::StatusCode::kUnavailable, HasSubstr("redis://h:1/0")))
        << error;
  }
  EXPECT_THAT(StatusFromErrorReply("d", "NOPERM this user has no permissions"),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("ACL")));
  EXPECT_THAT(StatusFromErrorReply("d",
                                   "WRONGTYPE Operation against a key holding "
                                   "the wrong kind of value"),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("WRONGTYPE")));
}

}  // namespace
}  // namespace scepca::testing
