// Tests of RedisChallengeStore against a real redis-server: the store
// contract over TCP and over the unix socket, the key layout, races between
// stores, options, and the recommended ACL.
#include "service/redis/redis_challenge_store.h"

#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/hashing.h"
#include "tests/core/challenge_store_contract.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/timing.h"

namespace scepca::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

::testing::Environment* const kSharedRedis =
    ::testing::AddGlobalTestEnvironment(new SharedRedisServer());

// A fresh prefix per store, so tests never see each other's keys.
std::string UniquePrefix() {
  static std::atomic<int> counter{0};
  return absl::StrCat("scep:t", counter.fetch_add(1), ":");
}

std::unique_ptr<ChallengeStore> MakeStore(bool unix_socket,
                                          const std::string& prefix,
                                          int pool_size = 16) {
  RedisServer* server = SharedRedisServer::Get();
  if (server == nullptr) return nullptr;
  RedisStoreOptions options;
  options.url = unix_socket ? server->unix_url() : server->tcp_url();
  options.prefix = prefix;
  options.pool_size = pool_size;
  // No test here is about timeouts (redis_fault_test is).
  options.command_timeout = kPatientRedisCommandTimeout;
  absl::StatusOr<std::unique_ptr<ChallengeStore>> store =
      NewRedisChallengeStore(options);
  if (!store.ok()) {
    ADD_FAILURE() << store.status();
    return nullptr;
  }
  return *std::move(store);
}

INSTANTIATE_TEST_SUITE_P(
    Redis, ChallengeStoreContractTest,
    ::testing::Values(
        StoreFactory{"tcp", /*real_time=*/true,
                     [] { return MakeStore(false, UniquePrefix()); }},
        StoreFactory{"unix", /*real_time=*/true,
                     [] { return MakeStore(true, UniquePrefix()); }}),
    StoreFactoryName);

std::string IdFor(int n) { return absl::StrFormat("%032x", n); }

absl::Time Now() {
  return absl::FromUnixMicros(absl::ToUnixMicros(absl::Now()));
}

ChallengeRecord MakeRecord(const std::string& id, const std::string& device,
                           const std::string& user,
                           absl::Duration ttl = absl::Hours(1)) {
  ChallengeRecord r;
  r.id = id;
  r.device_id = device;
  r.user_id = user;
  r.created_at = Now();
  r.expires_at = r.created_at + ttl;
  r.forget_at = r.expires_at + absl::Minutes(5);
  return r;
}

// Returns every key of the server that starts with `prefix`.
std::vector<std::string> ScanKeys(const std::string& prefix) {
  std::vector<std::string> keys;
  std::string cursor = "0";
  do {
    absl::StatusOr<RedisReply> reply = SharedRedisServer::Get()->Command(
        {"SCAN", cursor, "MATCH", prefix + "*", "COUNT", "1000"});
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

class RedisChallengeStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    prefix_ = UniquePrefix();
    store_ = MakeStore(false, prefix_);
    ASSERT_NE(store_, nullptr);
  }
  std::string prefix_;
  std::unique_ptr<ChallengeStore> store_;
};

TEST_F(RedisChallengeStoreTest, KeysHoldOnlyThePrefixAndHashes) {
  const std::string device = "serial-C02XK1ZZJGH5";
  const std::string user = "alice@example.org";
  ChallengeRecord r = MakeRecord(IdFor(1), device, user);
  r.labels = {{"tenant", "acme"}};
  r.binding.common_name = "alice-laptop";
  ASSERT_THAT(store_->Insert(r, Now()), IsOk());
  ASSERT_THAT(store_->Insert(MakeRecord(IdFor(2), device, ""), Now()), IsOk());
  ASSERT_THAT(store_->Consume(IdFor(1), UseInfo{"tx-1", ""}, Now()), IsOk());
  ASSERT_THAT(store_->RevokeSubject(SubjectType::kDevice, device, "lost", Now(),
                                    Now() + absl::Hours(1)),
              IsOkAndHolds(1));
  ASSERT_THAT(store_->RevokeSubject(SubjectType::kUser, user, "left", Now(),
                                    Now() + absl::Hours(1)),
              IsOk());
  IdempotencyEntry entry;
  entry.request_fingerprint = "fp";
  entry.challenge_id = IdFor(1);
  entry.sealed_challenge = "sealed";
  entry.expires_at = Now() + absl::Hours(1);
  ASSERT_THAT(store_->PutIdempotencyIfAbsent("idem-key-4711", entry, Now()),
              IsOk());

  const std::vector<std::string> keys = ScanKeys(prefix_);
  // 2 records, 2 indexes, 2 markers, 1 idempotency entry.
  EXPECT_THAT(keys, SizeIs(7));
  const std::regex allowed(
      "(c|d|u|i):\\{[0-9a-f]{32}\\}|(d|u):\\{[0-9a-f]{32}\\}:rb");
  for (const std::string& key : keys) {
    ASSERT_TRUE(absl::StartsWith(key, prefix_)) << key;
    const std::string rest = key.substr(prefix_.size());
    EXPECT_TRUE(std::regex_match(rest, allowed)) << key;
    for (absl::string_view secret :
         {absl::string_view("C02XK1"), absl::string_view("alice"),
          absl::string_view("4711"), absl::string_view("acme")}) {
      EXPECT_THAT(key, Not(HasSubstr(std::string(secret))));
    }
  }
  // The hash tag of a marker is its index's, so both live in one slot.
  const std::string device_hash = HexEncode(Sha256(device)).substr(0, 32);
  EXPECT_THAT(keys, ::testing::Contains(
                        absl::StrCat(prefix_, "d:{", device_hash, "}")));
  EXPECT_THAT(keys, ::testing::Contains(
                        absl::StrCat(prefix_, "d:{", device_hash, "}:rb")));
}

TEST_F(RedisChallengeStoreTest, EveryKeyHasATtl) {
  ASSERT_THAT(store_->Insert(MakeRecord(IdFor(3), "dev", "usr"), Now()),
              IsOk());
  ASSERT_THAT(store_->RevokeSubject(SubjectType::kDevice, "other", "", Now(),
                                    Now() + absl::Minutes(1)),
              IsOk());
  for (const std::string& key : ScanKeys(prefix_)) {
    absl::StatusOr<RedisReply> ttl =
        SharedRedisServer::Get()->Command({"PTTL", key});
    ASSERT_THAT(ttl, IsOk());
    EXPECT_GT(ttl->integer, 0) << key;
    EXPECT_LE(ttl->integer, absl::ToInt64Milliseconds(absl::Minutes(66)))
        << key;
  }
}

TEST_F(RedisChallengeStoreTest, BinaryFieldsRoundTrip) {
  const std::string device("dev\0{x}\xff", 8);
  ChallengeRecord r = MakeRecord(IdFor(4), device, std::string("u\0", 2));
  r.binding.dns_names = {"", std::string("a\0b", 3), "12:34"};
  r.binding.uris = {"urn:x"};
  r.labels = {{std::string("k\0", 2), std::string("v\r\n", 3)}, {"", ""}};
  ASSERT_THAT(store_->Insert(r, Now()), IsOk());
  absl::StatusOr<ChallengeRecord> got = store_->Get(IdFor(4), Now());
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->device_id, device);
  EXPECT_EQ(got->user_id, r.user_id);
  EXPECT_EQ(got->binding, r.binding);
  EXPECT_EQ(got->labels, r.labels);
  absl::StatusOr<ChallengePage> page =
      store_->List(SubjectType::kDevice, device, 10, "", Now());
  ASSERT_THAT(page, IsOk());
  EXPECT_THAT(page->records, SizeIs(1));
}

TEST_F(RedisChallengeStoreTest, InfiniteForgetAtIsKeptWithoutTtl) {
  ChallengeRecord r = MakeRecord(IdFor(5), "dev-inf", "");
  r.forget_at = absl::InfiniteFuture();
  ASSERT_THAT(store_->Insert(r, Now()), IsOk());
  EXPECT_THAT(store_->Get(IdFor(5), Now()),
              IsOkAndHolds(::testing::Field(&ChallengeRecord::forget_at,
                                            absl::InfiniteFuture())));
  absl::StatusOr<RedisReply> ttl = SharedRedisServer::Get()->Command(
      {"PTTL", static_cast<RedisChallengeStore*>(store_.get())
                   ->RecordKeyForTesting(IdFor(5))});
  ASSERT_THAT(ttl, IsOk());
  EXPECT_EQ(ttl->integer, -1);
  absl::StatusOr<ChallengePage> page =
      store_->List(SubjectType::kDevice, "dev-inf", 1, "", Now());
  ASSERT_THAT(page, IsOk());
  EXPECT_THAT(page->records, SizeIs(1));
  EXPECT_EQ(page->next_page_token, "");
}

TEST_F(RedisChallengeStoreTest, IndexEntryOfAnotherSubjectIsIgnored) {
  ASSERT_THAT(store_->Insert(MakeRecord(IdFor(6), "dev-owner", ""), Now()),
              IsOk());
  // What a lost insert race can leave behind: dev-stranger's index names a
  // record of dev-owner.
  const std::string stranger_index = absl::StrCat(
      prefix_, "d:{", HexEncode(Sha256("dev-stranger")).substr(0, 32), "}");
  ASSERT_THAT(
      SharedRedisServer::Get()->Command(
          {"ZADD", stranger_index,
           absl::StrCat(absl::ToUnixMicros(Now() + absl::Hours(1))), IdFor(6)}),
      IsOk());
  absl::StatusOr<ChallengePage> page =
      store_->List(SubjectType::kDevice, "dev-stranger", 10, "", Now());
  ASSERT_THAT(page, IsOk());
  EXPECT_THAT(page->records, SizeIs(0));
  EXPECT_THAT(store_->RevokeSubject(SubjectType::kDevice, "dev-stranger", "",
                                    Now(), Now() + absl::Hours(1)),
              IsOkAndHolds(0));
  EXPECT_THAT(store_->Get(IdFor(6), Now()),
              IsOkAndHolds(::testing::Field(&ChallengeRecord::state,
                                            ChallengeState::kPending)));
}

TEST_F(RedisChallengeStoreTest, ListPagesThroughEqualForgetTimes) {
  const absl::Time now = Now();
  for (int i = 0; i < 7; ++i) {
    ChallengeRecord r = MakeRecord(IdFor(100 + i), "dev-same", "");
    r.forget_at = now + absl::Hours(2);  // All share one score.
    ASSERT_THAT(store_->Insert(r, now), IsOk());
  }
  std::vector<std::string> ids;
  std::string token;
  int pages = 0;
  do {
    absl::StatusOr<ChallengePage> page =
        store_->List(SubjectType::kDevice, "dev-same", 3, token, Now());
    ASSERT_THAT(page, IsOk());
    for (const ChallengeRecord& r : page->records) ids.push_back(r.id);
    token = page->next_page_token;
    ASSERT_LT(++pages, 10);
  } while (!token.empty());
  EXPECT_EQ(pages, 3);
  std::vector<std::string> expected;
  for (int i = 0; i < 7; ++i) expected.push_back(IdFor(100 + i));
  EXPECT_EQ(ids, expected);
}

TEST_F(RedisChallengeStoreTest, InsertOfNonHexIdFailsInvalidArgument) {
  ChallengeRecord r = MakeRecord("NOT-HEX}", "dev", "");
  EXPECT_THAT(store_->Insert(r, Now()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->Get("NOT-HEX}", Now()),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->Delete("NOT-HEX}"), IsOk());
}

// Returns the number of calls of `command` in INFO commandstats.
int64_t CommandCalls(const std::string& command) {
  absl::StatusOr<RedisReply> info =
      SharedRedisServer::Get()->Command({"INFO", "commandstats"});
  if (!info.ok()) return -1;
  const std::string field = absl::StrCat("cmdstat_", command, ":calls=");
  const size_t at = info->str.find(field);
  if (at == std::string::npos) return 0;
  int64_t calls = 0;
  const size_t start = at + field.size();
  const size_t end = info->str.find(',', start);
  if (!absl::SimpleAtoi(info->str.substr(start, end - start), &calls)) {
    return -1;
  }
  return calls;
}

TEST_F(RedisChallengeStoreTest, ScriptsRunBySha1OnceLoaded) {
  // Loads every script (EVALSHA misses once per script, then EVAL).
  ASSERT_THAT(store_->Insert(MakeRecord(IdFor(7), "dev-sha", "u"), Now()),
              IsOk());
  ASSERT_THAT(store_->Consume(IdFor(7), UseInfo{"tx", ""}, Now()), IsOk());
  ASSERT_THAT(store_->Revoke(IdFor(7), "r", Now()), IsOk());
  ASSERT_THAT(store_->RevokeSubject(SubjectType::kUser, "u", "r", Now(),
                                    Now() + absl::Minutes(1)),
              IsOk());
  ASSERT_THAT(SharedRedisServer::Get()->Command({"CONFIG", "RESETSTAT"}),
              IsOk());
  for (int i = 0; i < 5; ++i) {
    ASSERT_THAT(
        store_->Insert(MakeRecord(IdFor(10 + i), "dev-sha", "u"), Now()),
        IsOk());
    ASSERT_THAT(store_->Consume(IdFor(10 + i), UseInfo{"tx", ""}, Now()),
                IsOk());
  }
  EXPECT_EQ(CommandCalls("eval"), 0);
  // Per round: two index scripts, the insert script, the consume script.
  EXPECT_EQ(CommandCalls("evalsha"), 20);
}

TEST_F(RedisChallengeStoreTest, DescribeNamesTheServerWithoutSecrets) {
  EXPECT_THAT(store_->Describe(), HasSubstr("redis://127.0.0.1:"));
}

// Two stores with separate pools race on the same ids: per id, exactly one
// Consume wins.
TEST(RedisConcurrencyTest, TwoStoresRacingConsumeHaveOneWinnerPerId) {
  const std::string prefix = UniquePrefix();
  std::unique_ptr<ChallengeStore> stores[2] = {MakeStore(false, prefix),
                                               MakeStore(true, prefix)};
  ASSERT_NE(stores[0], nullptr);
  ASSERT_NE(stores[1], nullptr);
  constexpr int kIds = 50;
  constexpr int kThreads = 16;
  for (int i = 0; i < kIds; ++i) {
    ASSERT_THAT(
        stores[i % 2]->Insert(MakeRecord(IdFor(1000 + i), "dev", ""), Now()),
        IsOk());
  }
  std::vector<std::atomic<int>> wins(kIds);
  std::atomic<int> errors{0};
  std::atomic<int> others{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ChallengeStore* store = stores[t % 2].get();
      for (int k = 0; k < kIds; ++k) {
        const int i = (k + t * 7) % kIds;  // Different orders per thread.
        absl::StatusOr<ConsumeResult> r = store->Consume(
            IdFor(1000 + i), UseInfo{absl::StrCat("tx-", t), ""}, Now());
        if (!r.ok()) {
          ++errors;
        } else if (r->outcome == ConsumeResult::Outcome::kConsumed) {
          ++wins[i];
        } else if (r->outcome != ConsumeResult::Outcome::kAlreadyUsed) {
          ++others;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(others.load(), 0);
  for (int i = 0; i < kIds; ++i) EXPECT_EQ(wins[i].load(), 1) << i;
}

TEST(RedisStoreOptionsTest, BadOptionsFailInvalidArgument) {
  RedisStoreOptions good;
  good.url = "redis://127.0.0.1:1";
  EXPECT_THAT(NewRedisChallengeStore(good), IsOk());

  std::vector<RedisStoreOptions> bad(7, good);
  bad[0].url = "redis://127.0.0.1:99999";
  bad[1].prefix = "";
  bad[2].prefix = "scep:{x}:";
  bad[3].prefix = "has space";
  bad[4].pool_size = 0;
  bad[5].command_timeout = absl::ZeroDuration();
  bad[6].connect_timeout = absl::Minutes(5);
  for (const RedisStoreOptions& options : bad) {
    EXPECT_THAT(NewRedisChallengeStore(options),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << options.url << " " << options.prefix;
  }
}

TEST(RedisStoreOptionsTest, StoreForUnreachableRedisAnswersUnavailableFast) {
  RedisStoreOptions options;
  options.url = absl::StrCat("redis://127.0.0.1:", PickFreePort());
  absl::StatusOr<std::unique_ptr<ChallengeStore>> store =
      NewRedisChallengeStore(options);
  ASSERT_THAT(store, IsOk());
  const absl::Time start = absl::Now();
  EXPECT_THAT((*store)->Ping(), StatusIs(absl::StatusCode::kUnavailable,
                                         HasSubstr("cannot connect")));
  EXPECT_THAT((*store)->Get(IdFor(1), Now()),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_LT(absl::Now() - start, FailFastBound(absl::Milliseconds(500)));
}

// deploy/redis/redis.conf as shipped (with a real password hash in place of
// the all-zero one): its ACL user can make every call, AUTH user password and
// SELECT work, keys outside the prefix are denied, anonymous access is off.
TEST(RedisAclTest, DeployConfigAclUserCanMakeEveryCall) {
  SCEPCA_SKIP_WITHOUT_REDIS_SERVER();
  std::string conf =
      ReadFile(absl::StrCat(SCEPCA_SOURCE_DIR, "/deploy/redis/redis.conf"));
  const std::string user_line =
      absl::StrCat("user scepca on #", std::string(64, '0'), " ");
  const size_t at = conf.find(user_line);
  ASSERT_NE(at, std::string::npos) << "no ACL user line in redis.conf";
  conf.replace(
      at, user_line.size(),
      absl::StrCat("user scepca on #", HexEncode(Sha256("acl-pass-123")), " "));
  const std::string conf_dir = MakeTempDir();
  const std::string conf_path = absl::StrCat(conf_dir, "/redis.conf");
  {
    std::ofstream out(conf_path);
    out << conf;
  }
  RedisServerOptions server_options;
  server_options.config_file = conf_path;
  server_options.appendonly = true;
  server_options.appendfsync_always = true;
  absl::StatusOr<std::unique_ptr<RedisServer>> server =
      RedisServer::Start(server_options);
  std::filesystem::remove_all(conf_dir);
  ASSERT_THAT(server, IsOk());

  for (const std::string& url :
       {absl::StrCat(
            "redis://scepca:acl-pass-123@127.0.0.1:", (*server)->port(), "/2"),
        absl::StrCat("unix://scepca:acl-pass-123@", (*server)->socket_path(),
                     "?db=2")}) {
    SCOPED_TRACE(url);
    RedisStoreOptions options;
    options.url = url;
    options.prefix = UniquePrefix();
    // Every write waits for the disk (appendfsync always).
    options.command_timeout = kPatientRedisCommandTimeout;
    absl::StatusOr<std::unique_ptr<ChallengeStore>> created =
        NewRedisChallengeStore(options);
    ASSERT_THAT(created, IsOk());
    ChallengeStore& store = **created;
    EXPECT_THAT(store.Describe(), Not(HasSubstr("acl-pass")));
    EXPECT_THAT(store.Ping(), IsOk());
    ASSERT_THAT(store.Insert(MakeRecord(IdFor(1), "dev", "usr"), Now()),
                IsOk());
    ASSERT_THAT(store.Insert(MakeRecord(IdFor(2), "dev", ""), Now()), IsOk());
    EXPECT_THAT(store.Insert(MakeRecord(IdFor(2), "dev", ""), Now()),
                StatusIs(absl::StatusCode::kAlreadyExists));
    EXPECT_THAT(store.Get(IdFor(1), Now()), IsOk());
    absl::StatusOr<ConsumeResult> consumed =
        store.Consume(IdFor(1), UseInfo{"tx", ""}, Now());
    ASSERT_THAT(consumed, IsOk());
    EXPECT_EQ(consumed->outcome, ConsumeResult::Outcome::kConsumed);
    EXPECT_THAT(store.Revoke(IdFor(1), "r", Now()), IsOkAndHolds(false));
    EXPECT_THAT(store.RevokeSubject(SubjectType::kDevice, "dev", "r", Now(),
                                    Now() + absl::Hours(1)),
                IsOkAndHolds(1));
    EXPECT_THAT(store.RevokedBefore(SubjectType::kDevice, "dev", Now()),
                IsOk());
    absl::StatusOr<ChallengePage> page =
        store.List(SubjectType::kDevice, "dev", 1, "", Now());
    ASSERT_THAT(page, IsOk());
    EXPECT_THAT(store.List(SubjectType::kDevice, "dev", 1,
                           page->next_page_token, Now()),
                IsOk());
    IdempotencyEntry entry;
    entry.challenge_id = IdFor(2);
    entry.expires_at = Now() + absl::Hours(1);
    EXPECT_THAT(store.PutIdempotencyIfAbsent("k", entry, Now()), IsOk());
    EXPECT_THAT(store.PutIdempotencyIfAbsent("k", entry, Now()), IsOk());
    EXPECT_THAT(store.Delete(IdFor(2)), IsOk());

    // Database 0 holds none of it.
    RedisStoreOptions db0 = options;
    db0.url = absl::StrCat(
        "redis://scepca:acl-pass-123@127.0.0.1:", (*server)->port(), "/0");
    absl::StatusOr<std::unique_ptr<ChallengeStore>> other =
        NewRedisChallengeStore(db0);
    ASSERT_THAT(other, IsOk());
    EXPECT_THAT((*other)->Get(IdFor(1), Now()),
                StatusIs(absl::StatusCode::kNotFound));
  }

  // Keys outside ~scep:* are denied, with a message that says so.
  RedisStoreOptions outside;
  outside.url =
      absl::StrCat("redis://scepca:acl-pass-123@127.0.0.1:", (*server)->port());
  outside.prefix = "other:";
  outside.command_timeout = kPatientRedisCommandTimeout;
  absl::StatusOr<std::unique_ptr<ChallengeStore>> denied =
      NewRedisChallengeStore(outside);
  ASSERT_THAT(denied, IsOk());
  EXPECT_THAT((*denied)->Insert(MakeRecord(IdFor(3), "dev", ""), Now()),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("NOPERM")));

  // The default user is off.
  RedisStoreOptions anonymous;
  anonymous.url = absl::StrCat("redis://127.0.0.1:", (*server)->port());
  absl::StatusOr<std::unique_ptr<ChallengeStore>> anonymous_store =
      NewRedisChallengeStore(anonymous);
  ASSERT_THAT(anonymous_store, IsOk());
  EXPECT_THAT((*anonymous_store)->Ping(),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST(RedisAclTest, WrongPasswordFailsUnavailableWithoutLeakingIt) {
  SCEPCA_SKIP_WITHOUT_REDIS_SERVER();
  RedisServerOptions server_options;
  server_options.extra_args = {"--requirepass", "right-pass-456"};
  absl::StatusOr<std::unique_ptr<RedisServer>> server =
      RedisServer::Start(server_options);
  ASSERT_THAT(server, IsOk());
  for (const std::string& url :
       {absl::StrCat("redis://:wrong-pass-789@127.0.0.1:", (*server)->port()),
        absl::StrCat("redis://127.0.0.1:", (*server)->port())}) {
    RedisStoreOptions options;
    options.url = url;
    absl::StatusOr<std::unique_ptr<ChallengeStore>> store =
        NewRedisChallengeStore(options);
    ASSERT_THAT(store, IsOk());
    absl::Status ping = (*store)->Ping();
    EXPECT_THAT(ping, StatusIs(absl::StatusCode::kUnavailable,
                               Not(HasSubstr("pass-"))));
    EXPECT_THAT(ping.message(), ::testing::AnyOf(HasSubstr("AUTH"),
                                                 HasSubstr("authentication")));
  }
}

TEST(RedisAclTest, PasswordFileKeepsThePasswordOutOfTheUrl) {
  SCEPCA_SKIP_WITHOUT_REDIS_SERVER();
  RedisServerOptions server_options;
  server_options.extra_args = {"--requirepass", "file-pass-123"};
  absl::StatusOr<std::unique_ptr<RedisServer>> server =
      RedisServer::Start(server_options);
  ASSERT_THAT(server, IsOk());
  const std::string path = absl::StrCat(MakeTempDir(), "/redis-password");
  FILE* f = fopen(path.c_str(), "w");
  fputs("file-pass-123\n", f);
  fclose(f);
  chmod(path.c_str(), 0600);
  RedisStoreOptions options;
  options.url = (*server)->tcp_url();
  options.password_file = path;
  absl::StatusOr<std::unique_ptr<ChallengeStore>> store =
      NewRedisChallengeStore(options);
  ASSERT_THAT(store, IsOk());
  EXPECT_THAT((*store)->Ping(), IsOk());
  EXPECT_THAT((*store)->Describe(), Not(HasSubstr("file-pass")));

  chmod(path.c_str(), 0644);
  EXPECT_THAT(
      NewRedisChallengeStore(options),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("chmod 600")));
  options.password_file = "/nonexistent/password";
  EXPECT_THAT(NewRedisChallengeStore(options),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace scepca::testing
