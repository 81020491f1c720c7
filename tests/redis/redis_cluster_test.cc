// Tests of the Redis store on a real Redis Cluster: three masters and three
// replicas made with `redis-cli --cluster create` on loopback ports
// (tests/testing/redis_topology.h). The contract suite and most tests share
// one cluster; the failover test makes its own. The whole binary is one CTest
// test (see CMakeLists.txt).
#include "service/redis/redis_cluster.h"

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/hashing.h"
#include "service/redis/redis_challenge_store.h"
#include "service/redis/redis_slot.h"
#include "tests/core/challenge_store_contract.h"
#include "tests/testing/redis_topology.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/timing.h"

namespace scepca::testing {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<RedisClusterTopology>& Shared() {
  static auto* const topology = new std::unique_ptr<RedisClusterTopology>();
  return *topology;
}

class ClusterEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (FindRedisServer().empty()) {
      if (RedisRequired()) {
        FAIL() << "redis-server is not in PATH and SCEPCA_REQUIRE_REDIS=1";
      }
      std::printf("[  SKIPPED ] redis-server is not in PATH\n");
      GTEST_SKIP() << "redis-server is not in PATH";
    }
    absl::StatusOr<std::unique_ptr<RedisClusterTopology>> t =
        RedisClusterTopology::Start();
    ASSERT_TRUE(t.ok()) << t.status();
    Shared() = *std::move(t);
  }
  void TearDown() override { Shared().reset(); }
};

::testing::Environment* const kCluster =
    ::testing::AddGlobalTestEnvironment(new ClusterEnvironment());

std::string UniquePrefix() {
  static std::atomic<int> counter{0};
  return absl::StrCat("scep:k", counter.fetch_add(1), ":");
}

absl::Time Now() {
  return absl::FromUnixMicros(absl::ToUnixMicros(absl::Now()));
}

std::string IdFor(int n) { return absl::StrFormat("%032x", n); }

ChallengeRecord MakeRecord(const std::string& id,
                           const std::string& device = "dev") {
  ChallengeRecord r;
  r.id = id;
  r.device_id = device;
  r.created_at = Now();
  r.expires_at = r.created_at + absl::Hours(1);
  r.forget_at = r.expires_at + absl::Minutes(5);
  return r;
}

// The WAIT timeout of the stores below that must not wait long for replicas
// that are not there (the store's default).
constexpr absl::Duration kShortWait = absl::Milliseconds(50);

// A store with patient timeouts (tests/testing/timing.h): its consumes are
// confirmed, and no call fails, even when a node is descheduled for a while.
// A test that needs WAIT to give up quickly passes kShortWait.
std::unique_ptr<RedisChallengeStore> MakeStore(
    const std::string& url, const std::string& prefix,
    RedisDurability durability = RedisDurability::kRelaxed,
    absl::Duration wait_timeout = kPatientRedisWaitTimeout) {
  RedisStoreOptions options;
  options.url = url;
  options.prefix = prefix;
  options.pool_size = 4;
  options.command_timeout = kPatientRedisCommandTimeout;
  options.replication.durability = durability;
  options.replication.wait_timeout = wait_timeout;
  absl::StatusOr<std::unique_ptr<RedisChallengeStore>> store =
      RedisChallengeStore::Create(options);
  if (!store.ok()) {
    ADD_FAILURE() << store.status();
    return nullptr;
  }
  absl::Status pinged = (*store)->Ping();
  if (!pinged.ok()) ADD_FAILURE() << pinged;
  return *std::move(store);
}

std::unique_ptr<ChallengeStore> MakeSharedStore(RedisDurability durability) {
  if (Shared() == nullptr) return nullptr;
  return MakeStore(Shared()->url(), UniquePrefix(), durability);
}

RedisClusterBackend& Cluster(RedisChallengeStore& store) {
  return static_cast<RedisClusterBackend&>(store.backend());
}

INSTANTIATE_TEST_SUITE_P(
    Cluster, ChallengeStoreContractTest,
    ::testing::Values(
        StoreFactory{"relaxed", /*real_time=*/true,
                     [] { return MakeSharedStore(RedisDurability::kRelaxed); }},
        StoreFactory{"strict", /*real_time=*/true,
                     [] { return MakeSharedStore(RedisDurability::kStrict); }}),
    StoreFactoryName);

// Ids whose record key falls in `slot` (the hash tag is the id).
std::vector<std::string> IdsInSlot(int slot, int count, int start = 0) {
  std::vector<std::string> ids;
  for (int n = start; static_cast<int>(ids.size()) < count; ++n) {
    std::string id = IdFor(n);
    if (RedisKeySlot(id) == slot) ids.push_back(std::move(id));
  }
  return ids;
}

// Returns the keys under `prefix` stored on the node on `port`.
std::vector<std::string> KeysOn(int port, const std::string& prefix) {
  std::vector<std::string> keys;
  std::string cursor = "0";
  do {
    absl::StatusOr<RedisReply> reply = AdminCommand(
        port, {"SCAN", cursor, "MATCH", prefix + "*", "COUNT", "1000"});
    if (!reply.ok() || !reply->is_array() || reply->elements.size() != 2) {
      ADD_FAILURE() << "SCAN failed";
      return keys;
    }
    cursor = reply->elements[0].str;
    for (const RedisReply& key : reply->elements[1].elements) {
      keys.push_back(key.str);
    }
  } while (cursor != "0");
  return keys;
}

TEST(RedisClusterTest, SlotsMatchTheServersClusterKeyslot) {
  ASSERT_NE(Shared(), nullptr);
  const int port = Shared()->MasterPorts()[0];
  for (const std::string key :
       {"foo", "scep:c:{0123abcd}", "scep:d:{x}:rb", "a{b}c", "{}x", "z{"}) {
    absl::StatusOr<RedisReply> slot =
        AdminCommand(port, {"CLUSTER", "KEYSLOT", key});
    ASSERT_THAT(slot, IsOk());
    EXPECT_EQ(slot->integer, RedisKeySlot(key)) << key;
  }
}

TEST(RedisClusterTest, ChallengesSpreadOverEveryMaster) {
  ASSERT_NE(Shared(), nullptr);
  const std::string prefix = UniquePrefix();
  std::unique_ptr<RedisChallengeStore> store =
      MakeStore(Shared()->url(), prefix);
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 300; ++i) {
    ASSERT_THAT(
        store->Insert(MakeRecord(IdFor(i), absl::StrCat("dev", i)), Now()),
        IsOk());
  }
  const std::vector<int> masters = Shared()->MasterPorts();
  ASSERT_EQ(masters.size(), 3u);
  size_t records = 0;
  for (int port : masters) {
    std::vector<std::string> keys = KeysOn(port, prefix);
    size_t here = 0;
    for (const std::string& key : keys) {
      if (absl::StartsWith(key, prefix + "c:")) ++here;
      // Each key is on the master of its slot.
      absl::StatusOr<int> owner =
          Shared()->MasterPortOfSlot(RedisKeySlot(key), port);
      ASSERT_THAT(owner, IsOk());
      EXPECT_EQ(*owner, port) << key;
      EXPECT_EQ(Cluster(*store).MasterOf(key),
                absl::StrCat("127.0.0.1:", port));
    }
    // About a third each: far from zero.
    EXPECT_GT(here, 50u) << "master " << port;
    records += here;
  }
  EXPECT_EQ(records, 300u);
  for (int i = 0; i < 300; ++i) {
    absl::StatusOr<ConsumeResult> c =
        store->Consume(IdFor(i), UseInfo{"tx", ""}, Now());
    ASSERT_THAT(c, IsOk());
    EXPECT_EQ(c->outcome, ConsumeResult::Outcome::kConsumed);
  }
  // Three replicas: WAIT 1, confirmed.
  EXPECT_EQ(store->replication().WaitCount(), 1);
  EXPECT_EQ(store->replication().unconfirmed(), 0);
}

TEST(RedisClusterTest, ListAndRevokeSubjectReachRecordsOnEveryMaster) {
  ASSERT_NE(Shared(), nullptr);
  std::unique_ptr<RedisChallengeStore> store =
      MakeStore(Shared()->url(), UniquePrefix());
  ASSERT_NE(store, nullptr);
  std::set<std::string> nodes;
  for (int i = 0; i < 60; ++i) {
    ASSERT_THAT(store->Insert(MakeRecord(IdFor(1000 + i), "one-device"), Now()),
                IsOk());
    nodes.insert(
        Cluster(*store).MasterOf(store->RecordKeyForTesting(IdFor(1000 + i))));
  }
  EXPECT_EQ(nodes.size(), 3u);
  absl::StatusOr<ChallengePage> page =
      store->List(SubjectType::kDevice, "one-device", 100, "", Now());
  ASSERT_THAT(page, IsOk());
  EXPECT_EQ(page->records.size(), 60u);
  absl::StatusOr<int64_t> revoked =
      store->RevokeSubject(SubjectType::kDevice, "one-device", "lost", Now(),
                           Now() + absl::Hours(2));
  ASSERT_THAT(revoked, IsOk());
  EXPECT_EQ(*revoked, 60);
}

TEST(RedisClusterTest, DescribeNamesTheSeedsWithoutThePassword) {
  ASSERT_NE(Shared(), nullptr);
  std::unique_ptr<RedisChallengeStore> store =
      MakeStore(Shared()->url(), UniquePrefix());
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(store->Describe(), HasSubstr("redis-cluster://127.0.0.1:"));
  EXPECT_THAT(store->Describe(),
              ::testing::Not(HasSubstr(kRedisTopologyPassword)));
}

// A slot migration by hand (SETSLOT IMPORTING/MIGRATING, MIGRATE in small
// batches, SETSLOT NODE) while two stores race to consume the challenges of
// that slot and a load runs on slots being migrated too: only MOVED/ASK
// retries, no error, no challenge valid twice.
TEST(RedisClusterTest, SlotMigrationDuringLoadCausesOnlyRetries) {
  ASSERT_NE(Shared(), nullptr);
  RedisClusterTopology& t = *Shared();
  const std::string prefix = UniquePrefix();
  std::unique_ptr<RedisChallengeStore> a = MakeStore(t.url(), prefix);
  std::unique_ptr<RedisChallengeStore> b = MakeStore(t.url(), prefix);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  const std::vector<int> masters = t.MasterPorts();
  ASSERT_EQ(masters.size(), 3u);

  // 40 challenges in one slot, and the slots of the load's device indexes
  // (every insert of the load writes one of them).
  const int slot = RedisKeySlot(IdFor(77));
  const std::vector<std::string> ids = IdsInSlot(slot, 40);
  for (const std::string& id : ids) {
    ASSERT_THAT(a->Insert(MakeRecord(id), Now()), IsOk());
  }
  std::vector<int> slots = {slot};
  for (int d = 0; d < 4; ++d) {
    const std::string index_key = absl::StrCat(
        prefix, "d:{",
        HexEncode(Sha256(absl::StrCat("load-device-", d))).substr(0, 32), "}");
    slots.push_back(RedisKeySlot(index_key));
  }

  ConsumeLoad load({a.get(), b.get()}, 2);
  std::atomic<int> valid{0}, errors{0};
  std::map<std::string, std::atomic<int>> valid_per_id;
  for (const std::string& id : ids) valid_per_id[id] = 0;
  std::string first_error;
  absl::Mutex error_mu;
  std::vector<std::thread> racers;
  for (ChallengeStore* store : {a.get(), b.get()}) {
    racers.emplace_back([&, store] {
      for (int round = 0; round < 30; ++round) {
        for (const std::string& id : ids) {
          absl::StatusOr<ConsumeResult> c =
              store->Consume(id, UseInfo{"race", ""}, Now());
          if (!c.ok()) {
            ++errors;
            absl::MutexLock lock(&error_mu);
            if (first_error.empty()) first_error = c.status().ToString();
          } else if (c->outcome == ConsumeResult::Outcome::kConsumed) {
            ++valid;
            ++valid_per_id[id];
          }
        }
        absl::SleepFor(absl::Milliseconds(10));
      }
    });
  }
  ASSERT_TRUE(load.WaitForProgress(10, absl::Seconds(10)))
      << load.ErrorSample();
  const int64_t redirects_before = Cluster(*a).moved() + Cluster(*a).asked() +
                                   Cluster(*b).moved() + Cluster(*b).asked();
  for (int s : slots) {
    absl::StatusOr<int> from = t.MasterPortOfSlot(s, masters[0]);
    ASSERT_THAT(from, IsOk());
    const int to = *from == masters[0] ? masters[1] : masters[0];
    ASSERT_THAT(t.MigrateSlot(s, *from, to, 2, absl::Milliseconds(20)), IsOk());
  }
  ASSERT_TRUE(load.WaitForProgress(20, absl::Seconds(10)))
      << load.ErrorSample();
  for (std::thread& r : racers) r.join();
  load.Stop();
  const int64_t redirects = Cluster(*a).moved() + Cluster(*a).asked() +
                            Cluster(*b).moved() + Cluster(*b).asked() -
                            redirects_before;
  std::printf(
      "slot migration: %lld redirections followed; load %lld valid, "
      "%lld errors\n",
      static_cast<long long>(redirects), static_cast<long long>(load.valid()),
      static_cast<long long>(load.errors()));
  EXPECT_GT(redirects, 0);
  EXPECT_EQ(errors.load(), 0) << first_error;
  EXPECT_EQ(load.errors(), 0) << load.ErrorSample();
  EXPECT_LE(load.MaxValidPerChallenge(), 1);
  EXPECT_EQ(valid.load(), static_cast<int>(ids.size()));
  for (const auto& [id, count] : valid_per_id) EXPECT_EQ(count.load(), 1) << id;
  // The slot is now served by its new master, for both stores.
  absl::StatusOr<int> owner = t.MasterPortOfSlot(slot, masters[2]);
  ASSERT_THAT(owner, IsOk());
  ASSERT_THAT(Cluster(*a).Refresh(), IsOk());
  EXPECT_EQ(Cluster(*a).MasterOf(a->RecordKeyForTesting(ids[0])),
            absl::StrCat("127.0.0.1:", *owner));
}

// Kill a master: its replica is promoted (cluster-node-timeout
// kRedisFastFailoverMs) and both stores go on by themselves; no challenge is
// valid twice.
TEST(RedisClusterFailoverTest, MasterKilledReplicaPromotedStoresRecover) {
  SCEPCA_SKIP_WITHOUT_REDIS_SERVER();
  RedisClusterTopologyOptions options;
  options.node_timeout_ms = kRedisFastFailoverMs;
  absl::StatusOr<std::unique_ptr<RedisClusterTopology>> started =
      RedisClusterTopology::Start(options);
  ASSERT_THAT(started, IsOk());
  RedisClusterTopology& t = **started;
  const std::string prefix = UniquePrefix();
  // The promoted master has no replica, so every WAIT there times out:
  // briefly, so that the load goes on.
  std::unique_ptr<RedisChallengeStore> a =
      MakeStore(t.url(), prefix, RedisDurability::kRelaxed, kShortWait);
  std::unique_ptr<RedisChallengeStore> b =
      MakeStore(t.url(), prefix, RedisDurability::kRelaxed, kShortWait);
  std::unique_ptr<RedisChallengeStore> strict =
      MakeStore(t.url(), prefix, RedisDurability::kStrict, kShortWait);
  // Consumes before the failover, each surely confirmed by the replica.
  std::unique_ptr<RedisChallengeStore> confirming = MakeStore(t.url(), prefix);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_NE(strict, nullptr);
  ASSERT_NE(confirming, nullptr);
  const std::vector<int> masters = t.MasterPorts();
  ASSERT_EQ(masters.size(), 3u);
  const int victim = masters[1];
  // Challenges on the victim, consumed before (confirmed by WAIT 1) and not.
  std::vector<std::string> on_victim;
  for (int n = 0; on_victim.size() < 10; ++n) {
    const std::string id = IdFor(50000 + n);
    if (Cluster(*a).MasterOf(a->RecordKeyForTesting(id)) ==
        absl::StrCat("127.0.0.1:", victim)) {
      on_victim.push_back(id);
    }
  }
  for (const std::string& id : on_victim) {
    ASSERT_THAT(a->Insert(MakeRecord(id), Now()), IsOk());
  }
  for (size_t i = 0; i < 5; ++i) {
    absl::StatusOr<ConsumeResult> c =
        confirming->Consume(on_victim[i], UseInfo{"before", ""}, Now());
    ASSERT_THAT(c, IsOk());
    ASSERT_EQ(c->outcome, ConsumeResult::Outcome::kConsumed);
  }
  EXPECT_EQ(confirming->replication().unconfirmed(), 0);

  ConsumeLoad load({a.get(), b.get()}, 2);
  ASSERT_TRUE(load.WaitForProgress(20, absl::Seconds(10)))
      << load.ErrorSample();
  absl::StatusOr<int> promoted = t.KillMasterAndWaitForFailover(victim);
  ASSERT_THAT(promoted, IsOk());
  ASSERT_TRUE(load.WaitForProgress(50, absl::Seconds(15)))
      << load.ErrorSample();
  load.Stop();
  EXPECT_LE(load.MaxValidPerChallenge(), 1);
  std::printf(
      "cluster failover: %lld inserts, %lld consumes, %lld valid, "
      "%lld errors (during the failover)\n",
      static_cast<long long>(load.inserts()),
      static_cast<long long>(load.consumes()),
      static_cast<long long>(load.valid()),
      static_cast<long long>(load.errors()));
  const std::string promoted_address = absl::StrCat("127.0.0.1:", *promoted);
  for (RedisChallengeStore* store : {a.get(), b.get()}) {
    EXPECT_EQ(
        Cluster(*store).MasterOf(store->RecordKeyForTesting(on_victim[0])),
        promoted_address);
  }
  // Consumed before: still consumed on the promoted replica.
  for (size_t i = 0; i < 5; ++i) {
    absl::StatusOr<ConsumeResult> again =
        a->Consume(on_victim[i], UseInfo{"after", ""}, Now());
    ASSERT_THAT(again, IsOk());
    EXPECT_EQ(again->outcome, ConsumeResult::Outcome::kAlreadyUsed);
  }
  // Relaxed: issued before, consumed after: valid once.
  absl::StatusOr<ConsumeResult> relaxed =
      b->Consume(on_victim[5], UseInfo{"after", ""}, Now());
  ASSERT_THAT(relaxed, IsOk());
  EXPECT_EQ(relaxed->outcome, ConsumeResult::Outcome::kConsumed);
  // Strict: the promoted master starts a new epoch: refused.
  absl::StatusOr<ConsumeResult> refused =
      strict->Consume(on_victim[6], UseInfo{"after", ""}, Now());
  ASSERT_THAT(refused, IsOk());
  EXPECT_EQ(refused->outcome, ConsumeResult::Outcome::kRevoked);
  EXPECT_GE(strict->replication().epoch_changes(), 1);
  // New challenges work everywhere, from every store. (Strict consumes
  // would need a replica of the promoted master, which has none left.)
  for (int i = 0; i < 30; ++i) {
    const std::string id = IdFor(60000 + i);
    RedisChallengeStore* issuer = i % 2 == 0 ? a.get() : strict.get();
    ASSERT_THAT(issuer->Insert(MakeRecord(id), Now()), IsOk());
    absl::StatusOr<ConsumeResult> c =
        (i % 2 == 0 ? b.get() : a.get())
            ->Consume(id, UseInfo{"new", ""}, Now());
    ASSERT_THAT(c, IsOk()) << i;
    EXPECT_EQ(c->outcome, ConsumeResult::Outcome::kConsumed) << i;
  }
}

}  // namespace
}  // namespace scepca::testing
