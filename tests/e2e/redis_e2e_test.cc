// End-to-end on Redis: real challenge-authority processes sharing a real
// redis-server, through restarts and faults.
#include <signal.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "client/challenge_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/authority_process.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/timing.h"

namespace scepca::testing {
namespace {

namespace v1 = ::scep::challenge::v1;
using ::testing::HasSubstr;

std::unique_ptr<ChallengeClient> ClientFor(
    const AuthorityProcess& server,
    absl::Duration deadline = absl::Seconds(5)) {
  ClientOptions options;
  options.target = server.address();
  options.deadline = deadline;
  return *ChallengeClient::Create(options);
}

// Two authorities on one Redis with an AOF. The fixtures below that derive
// from it change what SetUp() starts.
class RedisE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SCEPCA_SKIP_WITHOUT_REDIS_SERVER();
    RedisServerOptions options;
    options.appendonly = true;
    options.appendfsync_always = appendfsync_always_;
    auto redis = RedisServer::Start(options);
    ASSERT_THAT(redis, IsOk());
    redis_ = *std::move(redis);
    std::vector<std::string> flags = {"--store", redis_->tcp_url(),
                                      "--health-interval", "200ms"};
    if (!fail_fast_) {
      flags.insert(flags.end(),
                   {"--redis-command-timeout",
                    absl::FormatDuration(kPatientRedisCommandTimeout)});
    }
    for (auto* server : {&a_, &b_}) {
      ASSERT_THAT(server->Start(flags), IsOk());
    }
  }

  std::string Issue(AuthorityProcess& server,
                    const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"issue", "--device", "dev-redis"};
    args.insert(args.end(), extra.begin(), extra.end());
    CommandResult r = RunChallengectl(server.address(), args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return std::string(absl::StripSuffix(r.out, "\n"));
  }
  CommandResult Validate(AuthorityProcess& server, const std::string& c) {
    return RunChallengectl(server.address(), {"validate", "--challenge", c});
  }
  bool HealthIs(AuthorityProcess& server, bool serving) {
    absl::StatusOr<bool> health =
        ClientFor(server, absl::Seconds(1))->CheckHealth();
    return health.ok() && *health == serving;
  }

  // Redis syncs the AOF at every write, so that what it acknowledged
  // survives a kill -9 of it.
  bool appendfsync_always_ = false;
  // The authorities keep the default Redis command timeout, which the tests
  // of the fail-fast budget are about; the others get a patient one, so that
  // a stall of a loaded machine cannot fail them.
  bool fail_fast_ = false;
  std::unique_ptr<RedisServer> redis_;
  AuthorityProcess a_, b_;
};

// Tests that kill -9 Redis and expect what it acknowledged.
class RedisE2eAofTest : public RedisE2eTest {
 protected:
  RedisE2eAofTest() { appendfsync_always_ = true; }
};

// Tests of the fail-fast budget while Redis is down or frozen (which also
// kill -9 Redis).
class RedisE2eFailFastTest : public RedisE2eTest {
 protected:
  RedisE2eFailFastTest() {
    appendfsync_always_ = true;
    fail_fast_ = true;
  }
};

TEST_F(RedisE2eTest, IssuedOnOneInstanceValidatesOnceOnTheOther) {
  const std::string c = Issue(a_);
  CommandResult on_b = Validate(b_, c);
  EXPECT_EQ(on_b.exit_code, 0) << on_b.out << on_b.err;
  CommandResult on_a = Validate(a_, c);
  EXPECT_EQ(on_a.exit_code, 1);
  EXPECT_THAT(on_a.out, HasSubstr("already_used"));
  EXPECT_THAT(a_.Log(), HasSubstr("with store redis://127.0.0.1:"));
}

TEST_F(RedisE2eTest, StormAcrossTwoInstancesHasOneWinnerPerChallenge) {
  constexpr int kChallenges = 20;
  constexpr int kThreads = 16;
  std::vector<std::string> challenges;
  for (int i = 0; i < kChallenges; ++i) challenges.push_back(Issue(a_));
  std::vector<std::atomic<int>> valid(kChallenges);
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto client = ClientFor(t % 2 == 0 ? a_ : b_, absl::Seconds(30));
      for (int i = 0; i < kChallenges; ++i) {
        v1::ValidateRequest request;
        request.set_challenge(challenges[i]);
        auto r = client->Validate(request);
        if (!r.ok()) {
          ++errors;
        } else if (r->valid()) {
          ++valid[i];
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  for (int i = 0; i < kChallenges; ++i) EXPECT_EQ(valid[i].load(), 1) << i;
}

TEST_F(RedisE2eTest, ChallengesSurviveAServiceRestart) {
  const std::string fresh = Issue(a_);
  const std::string used = Issue(a_);
  ASSERT_EQ(Validate(a_, used).exit_code, 0);
  ASSERT_THAT(a_.Restart(), IsOk());
  EXPECT_EQ(Validate(a_, used).exit_code, 1);
  EXPECT_EQ(Validate(a_, fresh).exit_code, 0);
}

TEST_F(RedisE2eAofTest, ChallengesSurviveKill9OfRedisWithAof) {
  const std::string fresh = Issue(a_);
  const std::string used = Issue(a_);
  ASSERT_EQ(Validate(a_, used).exit_code, 0);
  redis_->Kill();
  ASSERT_THAT(redis_->Restart(), IsOk());
  // Right after the restart the store may still wait out its reconnect
  // backoff and answer UNAVAILABLE (exit code 3) without sending anything:
  // ask again until it answers.
  auto validate_once_back = [&](const std::string& c) {
    CommandResult r;
    WaitFor(
        [&] {
          r = Validate(b_, c);
          return r.exit_code != 3;
        },
        absl::Seconds(10));
    return r;
  };
  CommandResult still_used = validate_once_back(used);
  EXPECT_EQ(still_used.exit_code, 1) << still_used.out << still_used.err;
  EXPECT_THAT(still_used.out, HasSubstr("already_used"));
  CommandResult still_fresh = validate_once_back(fresh);
  EXPECT_EQ(still_fresh.exit_code, 0) << still_fresh.out << still_fresh.err;
}

TEST_F(RedisE2eFailFastTest,
       RedisDownIsUnavailableFastAndRecoversWithoutRestart) {
  const std::string c = Issue(a_);
  auto client = ClientFor(a_);
  v1::ValidateRequest validate;
  validate.set_challenge(c);

  redis_->Kill();
  for (int i = 0; i < 3; ++i) {
    const absl::Time start = absl::Now();
    auto r = client->Validate(validate);
    EXPECT_THAT(r, StatusIs(absl::StatusCode::kUnavailable));
    EXPECT_LT(absl::Now() - start, FailFastBound(absl::Seconds(1)));
  }
  CommandResult issue =
      RunChallengectl(a_.address(), {"issue", "--device", "d"});
  EXPECT_EQ(issue.exit_code, 3) << issue.err;
  EXPECT_TRUE(WaitFor([&] { return HealthIs(a_, false); }, absl::Seconds(5)));

  ASSERT_THAT(redis_->Restart(), IsOk());
  EXPECT_TRUE(WaitFor([&] { return HealthIs(a_, true); }, absl::Seconds(10)));
  EXPECT_TRUE(WaitFor(
      [&] {
        auto r = client->Validate(validate);
        return r.ok() && r->valid();
      },
      absl::Seconds(10)));
}

TEST_F(RedisE2eFailFastTest,
       PausedRedisIsUnavailableWithinTheBudgetAndRecovers) {
  const std::string c = Issue(a_);
  auto client = ClientFor(a_);
  v1::ValidateRequest validate;
  validate.set_challenge(c);
  redis_->Pause();
  const absl::Time start = absl::Now();
  auto r = client->Validate(validate);
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_LT(absl::Now() - start, FailFastBound(absl::Seconds(1)));
  EXPECT_TRUE(WaitFor([&] { return HealthIs(a_, false); }, absl::Seconds(5)));
  redis_->Resume();
  EXPECT_TRUE(WaitFor([&] { return HealthIs(a_, true); }, absl::Seconds(10)));
  // The command that timed out was GETDEL-like: its outcome is unknown, but
  // it was never reported valid. Now the answer is definite.
  auto after = client->Validate(validate);
  ASSERT_THAT(after, IsOk());
  if (!after->valid()) {
    EXPECT_EQ(after->reason(), v1::REASON_ALREADY_USED);
  }
}

TEST_F(RedisE2eTest, NoChallengeIsStoredInRedis) {
  std::vector<std::string> challenges;
  for (int i = 0; i < 3; ++i) challenges.push_back(Issue(a_));
  challenges.push_back(Issue(a_, {"--idempotency-key", "idem-1", "--user",
                                  "alice", "--cn", "dev.example.org"}));
  ASSERT_EQ(Validate(a_, challenges[0]).exit_code, 0);
  ASSERT_THAT(
      RunChallengectl(a_.address(), {"revoke", "--challenge", challenges[1]})
          .exit_code,
      0);
  absl::StatusOr<RedisReply> keys = redis_->Command({"KEYS", "*"});
  ASSERT_THAT(keys, IsOk());
  ASSERT_FALSE(keys->elements.empty());
  std::string everything;
  for (const RedisReply& key : keys->elements) {
    absl::StrAppend(&everything, key.str, "\n");
    absl::StatusOr<RedisReply> dump = redis_->Command({"DUMP", key.str});
    ASSERT_THAT(dump, IsOk());
    absl::StrAppend(&everything, dump->str, "\n");
  }
  for (const std::string& c : challenges) {
    EXPECT_FALSE(absl::StrContains(everything, c)) << "challenge at rest";
  }
  EXPECT_THAT(everything, HasSubstr("dev-redis"));  // The dump is real.
}

TEST(RedisE2eStartupTest, StartsWhileRedisIsDownAndAnswersUnavailable) {
  SCEPCA_SKIP_WITHOUT_REDIS_SERVER();
  const int port = PickFreePort();
  AuthorityProcess server;
  ASSERT_THAT(server.Start({"--store", absl::StrCat("redis://127.0.0.1:", port),
                            "--health-interval", "200ms"}),
              IsOk());
  CommandResult down =
      RunChallengectl(server.address(), {"issue", "--device", "d"});
  EXPECT_EQ(down.exit_code, 3);
  EXPECT_THAT(down.err, HasSubstr("UNAVAILABLE"));
  EXPECT_THAT(server.Log(), HasSubstr("NOT_SERVING"));
}

}  // namespace
}  // namespace scepca::testing
