// Tests of the Redis store through Redis Sentinel, on a real deployment: one
// master, two replicas and three sentinels on loopback ports
// (tests/testing/redis_topology.h). The contract suite and the quick tests
// share one deployment; the failover test makes its own. The whole binary is
// one CTest test (see CMakeLists.txt), so the shared deployment is started
// once.
#include "service/redis/redis_sentinel.h"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/redis/redis_challenge_store.h"
#include "service/redis/redis_replication.h"
#include "tests/core/challenge_store_contract.h"
#include "tests/testing/redis_topology.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/timing.h"

namespace scepca::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::unique_ptr<RedisSentinelTopology>& Shared() {
  static auto* const topology = new std::unique_ptr<RedisSentinelTopology>();
  return *topology;
}

class SentinelEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (FindRedisServer().empty()) {
      if (RedisRequired()) {
        FAIL() << "redis-server is not in PATH and SCEPCA_REQUIRE_REDIS=1";
      }
      std::printf("[  SKIPPED ] redis-server is not in PATH\n");
      GTEST_SKIP() << "redis-server is not in PATH";
    }
    absl::StatusOr<std::unique_ptr<RedisSentinelTopology>> t =
        RedisSentinelTopology::Start();
    ASSERT_TRUE(t.ok()) << t.status();
    Shared() = *std::move(t);
  }
  void TearDown() override { Shared().reset(); }
};

::testing::Environment* const kSentinel =
    ::testing::AddGlobalTestEnvironment(new SentinelEnvironment());

std::string UniquePrefix() {
  static std::atomic<int> counter{0};
  return absl::StrCat("scep:s", counter.fetch_add(1), ":");
}

absl::Time Now() {
  return absl::FromUnixMicros(absl::ToUnixMicros(absl::Now()));
}

std::string IdFor(int n) { return absl::StrFormat("%032x", n); }

ChallengeRecord MakeRecord(const std::string& id) {
  ChallengeRecord r;
  r.id = id;
  r.device_id = "dev";
  r.created_at = Now();
  r.expires_at = r.created_at + absl::Hours(1);
  r.forget_at = r.expires_at + absl::Minutes(5);
  return r;
}

// The WAIT timeout of the stores below that must not wait long for replicas
// that are not there (the store's default).
constexpr absl::Duration kShortWait = absl::Milliseconds(50);

// A store with patient timeouts (tests/testing/timing.h): its consumes are
// confirmed, and strict ones succeed, even when a replica is descheduled for
// a while. A test that needs WAIT to give up quickly passes kShortWait.
std::unique_ptr<RedisChallengeStore> MakeStore(
    const std::string& url, const std::string& prefix,
    RedisDurability durability = RedisDurability::kRelaxed,
    int wait_replicas = -1,
    absl::Duration wait_timeout = kPatientRedisWaitTimeout) {
  RedisStoreOptions options;
  options.url = url;
  options.prefix = prefix;
  options.pool_size = 8;
  options.command_timeout = kPatientRedisCommandTimeout;
  options.replication.durability = durability;
  options.replication.wait_replicas = wait_replicas;
  options.replication.wait_timeout = wait_timeout;
  absl::StatusOr<std::unique_ptr<RedisChallengeStore>> store =
      RedisChallengeStore::Create(options);
  if (!store.ok()) {
    ADD_FAILURE() << store.status();
    return nullptr;
  }
  // As the server's health check does at start (strict: learns the epoch).
  absl::Status pinged = (*store)->Ping();
  if (!pinged.ok()) ADD_FAILURE() << pinged;
  return *std::move(store);
}

std::unique_ptr<ChallengeStore> MakeSharedStore(RedisDurability durability) {
  if (Shared() == nullptr) return nullptr;
  return MakeStore(Shared()->url(), UniquePrefix(), durability);
}

INSTANTIATE_TEST_SUITE_P(
    Sentinel, ChallengeStoreContractTest,
    ::testing::Values(
        StoreFactory{"relaxed", /*real_time=*/true,
                     [] { return MakeSharedStore(RedisDurability::kRelaxed); }},
        StoreFactory{"strict", /*real_time=*/true,
                     [] { return MakeSharedStore(RedisDurability::kStrict); }}),
    StoreFactoryName);

TEST(RedisSentinelTest, FindsTheMasterThroughTheSentinelsAndChecksItsRole) {
  ASSERT_NE(Shared(), nullptr);
  std::unique_ptr<RedisChallengeStore> store =
      MakeStore(Shared()->url(), UniquePrefix());
  ASSERT_NE(store, nullptr);
  auto& backend = static_cast<RedisSentinelBackend&>(store->backend());
  const int master = Shared()->MasterIndex();
  ASSERT_GE(master, 0);
  EXPECT_EQ(backend.CurrentMaster(),
            absl::StrCat("127.0.0.1:", Shared()->node(master).port()));
  EXPECT_THAT(store->Describe(), HasSubstr("redis-sentinel://"));
  EXPECT_THAT(store->Describe(), Not(HasSubstr(kRedisTopologyPassword)));
}

TEST(RedisSentinelTest, IssueAndValidateWithWaitConfirmation) {
  ASSERT_NE(Shared(), nullptr);
  std::unique_ptr<RedisChallengeStore> store =
      MakeStore(Shared()->url(), UniquePrefix());
  ASSERT_NE(store, nullptr);
  ASSERT_THAT(store->Insert(MakeRecord(IdFor(1)), Now()), IsOk());
  absl::StatusOr<ConsumeResult> first =
      store->Consume(IdFor(1), UseInfo{"tx1", ""}, Now());
  ASSERT_THAT(first, IsOk());
  EXPECT_EQ(first->outcome, ConsumeResult::Outcome::kConsumed);
  // Two replicas are attached: WAIT 1 by default, and it was confirmed.
  EXPECT_EQ(store->replication().WaitCount(), 1);
  EXPECT_EQ(store->replication().unconfirmed(), 0);
  absl::StatusOr<ConsumeResult> second =
      store->Consume(IdFor(1), UseInfo{"tx2", ""}, Now());
  ASSERT_THAT(second, IsOk());
  EXPECT_EQ(second->outcome, ConsumeResult::Outcome::kAlreadyUsed);
}

TEST(RedisSentinelTest, WrongPasswordFailsUnavailableWithoutLeakingIt) {
  ASSERT_NE(Shared(), nullptr);
  std::string url = Shared()->url();
  url.replace(url.find(kRedisTopologyPassword),
              std::string(kRedisTopologyPassword).size(), "wrong-secret");
  RedisStoreOptions options;
  options.url = url;
  absl::StatusOr<std::unique_ptr<RedisChallengeStore>> store =
      RedisChallengeStore::Create(options);
  ASSERT_THAT(store, IsOk());
  const absl::Status pinged = (*store)->Ping();
  EXPECT_TRUE(absl::IsUnavailable(pinged)) << pinged;
  EXPECT_THAT(std::string(pinged.message()), Not(HasSubstr("wrong-secret")));
}

TEST(RedisSentinelTest, UnknownMasterNameFailsUnavailable) {
  ASSERT_NE(Shared(), nullptr);
  std::string url = Shared()->url();
  url.replace(url.rfind('/') + 1, std::string::npos, "nosuchmaster");
  RedisStoreOptions options;
  options.url = url;
  absl::StatusOr<std::unique_ptr<RedisChallengeStore>> store =
      RedisChallengeStore::Create(options);
  ASSERT_THAT(store, IsOk());
  const absl::Status pinged = (*store)->Ping();
  EXPECT_TRUE(absl::IsUnavailable(pinged)) << pinged;
  EXPECT_THAT(std::string(pinged.message()), HasSubstr("nosuchmaster"));
}

// Kill the master with SIGKILL while two stores consume the same
// challenges: after the failover both stores work without being recreated,
// challenges consumed (and confirmed by WAIT) before it stay consumed, no
// challenge is ever valid twice, and a strict store refuses what was issued
// before the failover.
TEST(RedisSentinelFailoverTest, StoresFollowTheFailoverWithoutDoubleConsume) {
  SCEPCA_SKIP_WITHOUT_REDIS_SERVER();
  RedisSentinelTopologyOptions options;
  options.down_after_ms = kRedisFastFailoverMs;
  absl::StatusOr<std::unique_ptr<RedisSentinelTopology>> started =
      RedisSentinelTopology::Start(options);
  ASSERT_THAT(started, IsOk());
  RedisSentinelTopology& t = **started;
  const std::string prefix = UniquePrefix();
  // WAIT for both replicas, so that whichever is promoted has every
  // confirmed consume. After the failover one replica is left, so every
  // WAIT of `a` and `b` times out: briefly, so that the load goes on.
  std::unique_ptr<RedisChallengeStore> a =
      MakeStore(t.url(), prefix, RedisDurability::kRelaxed, 2, kShortWait);
  std::unique_ptr<RedisChallengeStore> b =
      MakeStore(t.url(), prefix, RedisDurability::kRelaxed, 2, kShortWait);
  // Consumes before the failover, each surely confirmed by both replicas.
  std::unique_ptr<RedisChallengeStore> confirming =
      MakeStore(t.url(), prefix, RedisDurability::kRelaxed, 2);
  std::unique_ptr<RedisChallengeStore> strict =
      MakeStore(t.url(), prefix, RedisDurability::kStrict);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_NE(confirming, nullptr);
  ASSERT_NE(strict, nullptr);

  // Before: 20 issued, the first 10 consumed and confirmed.
  for (int i = 0; i < 20; ++i) {
    ASSERT_THAT(a->Insert(MakeRecord(IdFor(100 + i)), Now()), IsOk());
  }
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<ConsumeResult> c =
        confirming->Consume(IdFor(100 + i), UseInfo{"before", ""}, Now());
    ASSERT_THAT(c, IsOk());
    ASSERT_EQ(c->outcome, ConsumeResult::Outcome::kConsumed);
  }
  EXPECT_EQ(confirming->replication().unconfirmed(), 0);
  ChallengeRecord token = MakeRecord("s" + IdFor(999));
  token.kind = ChallengeKind::kSigned;

  ConsumeLoad load({a.get(), b.get()}, 2);
  ASSERT_TRUE(load.WaitForProgress(20, absl::Seconds(10)))
      << load.ErrorSample();
  const int old_master = t.MasterIndex();
  absl::StatusOr<int> new_master = t.KillMasterAndWaitForFailover();
  ASSERT_THAT(new_master, IsOk());
  EXPECT_NE(*new_master, old_master);
  // The load goes on through the new master, in both stores.
  ASSERT_TRUE(load.WaitForProgress(50, absl::Seconds(15)))
      << load.ErrorSample();
  load.Stop();
  EXPECT_LE(load.MaxValidPerChallenge(), 1);
  EXPECT_GE(load.valid(), 70);
  const std::string new_address =
      absl::StrCat("127.0.0.1:", t.node(*new_master).port());
  for (RedisChallengeStore* store : {a.get(), b.get()}) {
    auto& backend = static_cast<RedisSentinelBackend&>(store->backend());
    EXPECT_EQ(backend.CurrentMaster(), new_address);
    EXPECT_GE(backend.MasterChanges(), 1);
  }
  std::printf(
      "sentinel failover: %lld inserts, %lld consumes, %lld valid, "
      "%lld errors (during the failover)\n",
      static_cast<long long>(load.inserts()),
      static_cast<long long>(load.consumes()),
      static_cast<long long>(load.valid()),
      static_cast<long long>(load.errors()));

  // Consumed before the failover: still consumed, from either store.
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<ConsumeResult> again =
        a->Consume(IdFor(100 + i), UseInfo{"after", ""}, Now());
    ASSERT_THAT(again, IsOk());
    EXPECT_EQ(again->outcome, ConsumeResult::Outcome::kAlreadyUsed) << i;
  }
  // Relaxed: issued before, consumed after: accepted once.
  absl::StatusOr<ConsumeResult> relaxed =
      b->Consume(IdFor(110), UseInfo{"after", ""}, Now());
  ASSERT_THAT(relaxed, IsOk());
  EXPECT_EQ(relaxed->outcome, ConsumeResult::Outcome::kConsumed);
  // Sentinel then makes the replica that is left follow the new master,
  // which can take a while on a loaded machine; from then on, and not
  // before, a consume can be confirmed by it.
  ASSERT_TRUE(WaitFor(
      [&] {
        absl::StatusOr<RedisReply> info =
            AdminCommand(t.node(*new_master).port(), {"INFO", "replication"});
        return info.ok() && info->is_string() &&
               InfoField(info->str, "connected_slaves") == "1" &&
               absl::StrContains(info->str, "state=online");
      },
      absl::Seconds(30)))
      << t.Logs();
  // Strict: issued before the new epoch: refused, challenge and token.
  absl::StatusOr<ConsumeResult> refused =
      strict->Consume(IdFor(111), UseInfo{"after", ""}, Now());
  ASSERT_THAT(refused, IsOk());
  EXPECT_EQ(refused->outcome, ConsumeResult::Outcome::kRevoked);
  EXPECT_THAT(refused->record.revoke_reason, HasSubstr("failover"));
  absl::StatusOr<ConsumeResult> refused_token =
      strict->ConsumeToken(token, false, UseInfo{"after", ""}, Now());
  ASSERT_THAT(refused_token, IsOk());
  EXPECT_EQ(refused_token->outcome, ConsumeResult::Outcome::kRevoked);
  EXPECT_GE(strict->replication().epoch_changes(), 1);
  // Strict: issued after the failover: valid once.
  ASSERT_THAT(strict->Insert(MakeRecord(IdFor(500)), Now()), IsOk());
  absl::StatusOr<ConsumeResult> fresh =
      strict->Consume(IdFor(500), UseInfo{"after", ""}, Now());
  ASSERT_THAT(fresh, IsOk());
  EXPECT_EQ(fresh->outcome, ConsumeResult::Outcome::kConsumed);
  // One replica is left: WAIT 2 cannot be met, so a strict store that asks
  // for 2 answers UNAVAILABLE (and the challenge stays used).
  std::unique_ptr<RedisChallengeStore> strict2 =
      MakeStore(t.url(), prefix, RedisDurability::kStrict, 2, kShortWait);
  ASSERT_NE(strict2, nullptr);
  ASSERT_THAT(strict2->Insert(MakeRecord(IdFor(501)), Now()), IsOk());
  absl::StatusOr<ConsumeResult> unconfirmed =
      strict2->Consume(IdFor(501), UseInfo{"after", ""}, Now());
  EXPECT_TRUE(absl::IsUnavailable(unconfirmed.status()))
      << unconfirmed.status();
  absl::StatusOr<ConsumeResult> burned =
      a->Consume(IdFor(501), UseInfo{"after", ""}, Now());
  ASSERT_THAT(burned, IsOk());
  EXPECT_EQ(burned->outcome, ConsumeResult::Outcome::kAlreadyUsed);
}

}  // namespace
}  // namespace scepca::testing
