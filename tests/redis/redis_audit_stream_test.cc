// The audit trail in a Redis Stream, against a real redis-server.
#include "service/redis/redis_audit_stream.h"

#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/redis/redis_challenge_store.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"

namespace scepca::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

AuditEntry Entry(int n) {
  AuditEntry e;
  e.time = absl::Now();
  e.caller = "scep";
  e.peer = "ipv4:127.0.0.1:1";
  e.method = "Validate";
  e.challenge_id = absl::StrCat("c", n);
  e.device_id = absl::StrCat("dev-", n);
  e.transaction_id = "tx";
  e.outcome = "valid";
  e.reason = "valid";
  e.latency = absl::Microseconds(120);
  return e;
}

class RedisAuditStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SCEPCA_SKIP_WITHOUT_REDIS_SERVER();
    auto server = RedisServer::Start();
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
    RedisStoreOptions options;
    options.url = server_->tcp_url();
    // Generous: the stream retries anyway, and a loaded (or sanitized) run
    // must not turn a slow answer into a failure.
    options.command_timeout = absl::Seconds(10);
    auto store = RedisChallengeStore::Create(options);
    ASSERT_THAT(store, IsOk());
    store_ = *std::move(store);
  }

  std::unique_ptr<RedisAuditStream> Start(RedisAuditStreamOptions options) {
    options.key = "scep:audit";
    auto stream = RedisAuditStream::Start(&store_->backend(), options);
    EXPECT_THAT(stream, IsOk());
    return stream.ok() ? *std::move(stream) : nullptr;
  }

  int64_t Length() {
    auto reply = server_->Command({"XLEN", "scep:audit"});
    return reply.ok() && reply->is_integer() ? reply->integer : -1;
  }

  // Every entry of the stream as field -> value.
  std::vector<std::map<std::string, std::string>> Entries() {
    std::vector<std::map<std::string, std::string>> out;
    auto reply = server_->Command({"XRANGE", "scep:audit", "-", "+"});
    if (!reply.ok() || !reply->is_array()) return out;
    for (const RedisReply& item : reply->elements) {
      std::map<std::string, std::string> fields;
      const RedisReply& kv = item.elements[1];
      for (size_t i = 0; i + 1 < kv.elements.size(); i += 2) {
        fields[kv.elements[i].str] = kv.elements[i + 1].str;
      }
      out.push_back(std::move(fields));
    }
    return out;
  }

  std::unique_ptr<RedisServer> server_;
  std::unique_ptr<RedisChallengeStore> store_;
};

TEST_F(RedisAuditStreamTest, AppendsEachEntryWithItsFieldsInOrder) {
  auto stream = Start({});
  ASSERT_NE(stream, nullptr);
  for (int i = 1; i <= 300; ++i) stream->Record(Entry(i));
  ASSERT_TRUE(stream->Flush(absl::Seconds(10)));
  EXPECT_EQ(stream->written(), 300u);
  EXPECT_EQ(stream->dropped(), 0u);
  auto entries = Entries();
  ASSERT_EQ(entries.size(), 300u);
  for (int i = 1; i <= 300; ++i) {
    const auto& e = entries[i - 1];
    EXPECT_EQ(e.at("seq"), absl::StrCat(i));
    EXPECT_EQ(e.at("instance"), stream->instance());
    EXPECT_EQ(e.at("method"), "Validate");
    EXPECT_EQ(e.at("outcome"), "valid");
    EXPECT_EQ(e.at("caller"), "scep");
    EXPECT_EQ(e.at("challenge_id"), absl::StrCat("c", i));
    EXPECT_EQ(e.at("device_id"), absl::StrCat("dev-", i));
    EXPECT_EQ(e.count("user_id"), 0u);  // Empty fields are left out.
    // The whole entry, as the file trail has it (one line of JSON).
    EXPECT_THAT(e.at("json"),
                HasSubstr(absl::StrCat("\"challenge_id\":\"c", i, "\"")));
    EXPECT_THAT(e.at("json"), Not(HasSubstr("\n")));
  }
}

TEST_F(RedisAuditStreamTest, InstancesShareOneTrail) {
  auto a = Start({});
  auto b = Start({});
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(a->instance(), b->instance());
  std::thread ta([&] {
    for (int i = 0; i < 200; ++i) a->Record(Entry(i));
  });
  std::thread tb([&] {
    for (int i = 0; i < 200; ++i) b->Record(Entry(i));
  });
  ta.join();
  tb.join();
  ASSERT_TRUE(a->Flush(absl::Seconds(10)));
  ASSERT_TRUE(b->Flush(absl::Seconds(10)));
  std::map<std::string, std::set<std::string>> seqs;
  for (const auto& e : Entries()) seqs[e.at("instance")].insert(e.at("seq"));
  ASSERT_EQ(seqs.size(), 2u);
  EXPECT_EQ(seqs[a->instance()].size(), 200u);
  EXPECT_EQ(seqs[b->instance()].size(), 200u);
}

TEST_F(RedisAuditStreamTest, StreamIsCapped) {
  RedisAuditStreamOptions options;
  options.max_length = 500;
  auto stream = Start(options);
  ASSERT_NE(stream, nullptr);
  for (int i = 0; i < 5000; ++i) stream->Record(Entry(i));
  ASSERT_TRUE(stream->Flush(absl::Seconds(20)));
  // MAXLEN ~ trims whole macro nodes (100 entries by default): at least the
  // cap, not much more.
  const int64_t length = Length();
  EXPECT_GE(length, 500);
  EXPECT_LE(length, 700);
  // The newest entries are the ones kept.
  auto entries = Entries();
  ASSERT_FALSE(entries.empty());
  EXPECT_EQ(entries.back().at("seq"), "5000");
}

TEST_F(RedisAuditStreamTest, QueuesWhileRedisIsDownAndDeliversAfter) {
  // The production timeout here: the writes must fail (and be retried)
  // while Redis is paused.
  RedisStoreOptions store_options;
  store_options.url = server_->tcp_url();
  auto short_timeouts = RedisChallengeStore::Create(store_options);
  ASSERT_THAT(short_timeouts, IsOk());
  RedisAuditStreamOptions options;
  options.key = "scep:audit";
  auto started =
      RedisAuditStream::Start(&(*short_timeouts)->backend(), options);
  ASSERT_THAT(started, IsOk());
  auto stream = *std::move(started);
  stream->Record(Entry(1));
  ASSERT_TRUE(stream->Flush(absl::Seconds(10)));
  server_->Pause();
  // Recording does not wait for Redis.
  const absl::Time start = absl::Now();
  for (int i = 2; i <= 50; ++i) stream->Record(Entry(i));
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(200));
  EXPECT_FALSE(stream->Flush(absl::Milliseconds(700)));
  server_->Resume();
  ASSERT_TRUE(stream->Flush(absl::Seconds(15)));
  EXPECT_GE(stream->failed_attempts(), 1u);
  // At least once: every sequence number arrived (a batch sent again after
  // its connection broke may show twice).
  std::set<int> seen;
  for (const auto& e : Entries()) {
    int seq = 0;
    ASSERT_TRUE(absl::SimpleAtoi(e.at("seq"), &seq));
    seen.insert(seq);
  }
  EXPECT_EQ(seen.size(), 50u);
  EXPECT_EQ(*seen.begin(), 1);
  EXPECT_EQ(*seen.rbegin(), 50);
}

TEST_F(RedisAuditStreamTest, DropsAndCountsBeyondTheQueue) {
  RedisAuditStreamOptions options;
  options.queue_capacity = 10;
  options.flush_on_close = absl::Milliseconds(100);
  auto stream = Start(options);
  ASSERT_NE(stream, nullptr);
  server_->Pause();
  for (int i = 0; i < 25; ++i) stream->Record(Entry(i));
  EXPECT_GE(stream->dropped(), 15u);
  server_->Resume();
  ASSERT_TRUE(stream->Flush(absl::Seconds(15)));
  EXPECT_EQ(stream->written() + stream->dropped(), 25u);
}

TEST_F(RedisAuditStreamTest, RefusesBadOptions) {
  RedisAuditStreamOptions options;
  EXPECT_THAT(RedisAuditStream::Start(&store_->backend(), options),
              StatusIs(absl::StatusCode::kInvalidArgument));
  options.key = "k";
  options.max_length = 0;
  EXPECT_THAT(RedisAuditStream::Start(&store_->backend(), options),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace scepca::testing
