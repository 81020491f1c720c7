#include "service/core/challenge_authority.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/in_memory_challenge_store.h"
#include "service/core/one_time_challenge.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/forwarding_challenge_store.h"
#include "tests/testing/status_matchers.h"

namespace scepca {
namespace {

using ::scepca::testing::FakeClock;
using ::scepca::testing::IsOk;
using ::scepca::testing::IsOkAndHolds;
using ::scepca::testing::StatusIs;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::Optional;
using ::testing::SizeIs;

class ChallengeAuthorityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.default_ttl = absl::Minutes(60);
    options_.max_ttl = absl::Hours(24 * 30);
    options_.expired_retention = absl::Hours(1);
    auto authority = ChallengeAuthority::Create(options_, &store_, &clock_);
    ASSERT_THAT(authority, IsOk());
    authority_ = *std::move(authority);
  }

  IssueResult MustIssue(const std::string& device,
                        const std::string& user = "") {
    IssueRequest request;
    request.device_id = device;
    request.user_id = user;
    absl::StatusOr<IssueResult> result = authority_->Issue(request);
    EXPECT_THAT(result, IsOk());
    return result.ok() ? *result : IssueResult{};
  }

  Verdict MustValidate(const std::string& challenge, bool dry_run = false) {
    ValidateRequest request;
    request.challenge = challenge;
    request.transaction_id = "tx";
    request.dry_run = dry_run;
    absl::StatusOr<Verdict> verdict = authority_->Validate(request);
    EXPECT_THAT(verdict, IsOk());
    return verdict.ok() ? *verdict : Verdict{};
  }

  AuthorityOptions options_;
  FakeClock clock_;
  InMemoryChallengeStore store_;
  std::unique_ptr<ChallengeAuthority> authority_;
};

TEST_F(ChallengeAuthorityTest, IssuedChallengeValidatesOnceThenIsAlreadyUsed) {
  IssueRequest request;
  request.device_id = "dev-1";
  request.user_id = "alice";
  request.labels = {{"template", "wifi"}};
  absl::StatusOr<IssueResult> issued = authority_->Issue(request);
  ASSERT_THAT(issued, IsOk());
  EXPECT_THAT(issued->challenge, MatchesRegex("[A-Z2-7]{26}"));
  EXPECT_EQ(issued->challenge_id, ChallengeIdOf(issued->challenge));
  EXPECT_EQ(issued->expires_at, clock_.Now() + absl::Minutes(60));
  EXPECT_FALSE(issued->idempotent_replay);

  Verdict first = MustValidate(issued->challenge);
  EXPECT_TRUE(first.valid);
  EXPECT_EQ(first.reason, Reason::kValid);
  ASSERT_TRUE(first.record.has_value());
  EXPECT_EQ(first.record->device_id, "dev-1");
  EXPECT_EQ(first.record->user_id, "alice");
  EXPECT_EQ(first.record->labels.at("template"), "wifi");

  Verdict second = MustValidate(issued->challenge);
  EXPECT_FALSE(second.valid);
  EXPECT_EQ(second.reason, Reason::kAlreadyUsed);
  EXPECT_THAT(second.message, HasSubstr("already used"));
  EXPECT_THAT(second.message, Not(HasSubstr(issued->challenge)));
}

TEST_F(ChallengeAuthorityTest, DryRunDoesNotConsume) {
  IssueResult issued = MustIssue("dev");
  EXPECT_TRUE(MustValidate(issued.challenge, /*dry_run=*/true).valid);
  EXPECT_TRUE(MustValidate(issued.challenge, /*dry_run=*/true).valid);
  EXPECT_TRUE(MustValidate(issued.challenge).valid);
  Verdict after = MustValidate(issued.challenge, /*dry_run=*/true);
  EXPECT_EQ(after.reason, Reason::kAlreadyUsed);
}

TEST_F(ChallengeAuthorityTest, ExpiredThenForgotten) {
  IssueRequest request;
  request.device_id = "dev";
  request.ttl = absl::Seconds(5);
  absl::StatusOr<IssueResult> issued = authority_->Issue(request);
  ASSERT_THAT(issued, IsOk());
  clock_.Advance(absl::Seconds(5));
  Verdict expired = MustValidate(issued->challenge);
  EXPECT_FALSE(expired.valid);
  EXPECT_EQ(expired.reason, Reason::kExpired);
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(MustValidate(issued->challenge).reason, Reason::kNotFound);
}

TEST_F(ChallengeAuthorityTest, UnknownAndMalformedChallengesAreRefused) {
  Verdict unknown = MustValidate("AAAAAAAAAAAAAAAAAAAAAAAAAA");
  EXPECT_FALSE(unknown.valid);
  EXPECT_EQ(unknown.reason, Reason::kNotFound);
  EXPECT_FALSE(unknown.record.has_value());
  for (const char* bad : {"aaaaaaaaaaaaaaaaaaaaaaaaaa", "hello world",
                          "AAAAAAAAAAAAAAAAAAAAAAAAA="}) {
    Verdict v = MustValidate(bad);
    EXPECT_FALSE(v.valid);
    EXPECT_EQ(v.reason, Reason::kMalformed) << bad;
  }
}

TEST_F(ChallengeAuthorityTest, MalformedValidateRequestsFailInvalidArgument) {
  ValidateRequest request;
  EXPECT_THAT(
      authority_->Validate(request),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("challenge")));
  request.challenge = std::string(10 * 1024, 'A');
  EXPECT_THAT(
      authority_->Validate(request),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("challenge")));
  IssueResult issued = MustIssue("dev");
  request.challenge = issued.challenge + std::string("\0junk", 5);
  EXPECT_THAT(authority_->Validate(request),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // The valid prefix was not consumed.
  EXPECT_TRUE(MustValidate(issued.challenge).valid);
  request.challenge = "AAAAAAAAAAAAAAAAAAAAAAAAAA";
  request.transaction_id = std::string(300, 'x');
  EXPECT_THAT(authority_->Validate(request),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("transaction_id")));
}

TEST_F(ChallengeAuthorityTest, MalformedIssueRequestsFailAndStoreNothing) {
  struct Case {
    IssueRequest request;
    const char* field;
  };
  std::vector<Case> cases;
  cases.push_back({IssueRequest{}, "device_id"});
  IssueRequest zero_ttl;
  zero_ttl.device_id = "dev";
  zero_ttl.ttl = absl::ZeroDuration();
  cases.push_back({zero_ttl, "ttl"});
  IssueRequest long_ttl = zero_ttl;
  long_ttl.ttl = absl::Hours(24 * 30) + absl::Seconds(1);
  cases.push_back({long_ttl, "ttl"});
  IssueRequest long_device;
  long_device.device_id = std::string(129, 'd');
  cases.push_back({long_device, "device_id"});
  IssueRequest control;
  control.device_id = "dev\n";
  cases.push_back({control, "device_id"});
  IssueRequest labels;
  labels.device_id = "dev";
  labels.labels[""] = "x";
  cases.push_back({labels, "labels"});
  IssueRequest cn;
  cn.device_id = "dev";
  cn.binding.common_name = std::string(65, 'c');
  cases.push_back({cn, "binding.common_name"});
  IssueRequest dns;
  dns.device_id = "dev";
  dns.binding.dns_names = {"ok.example", ""};
  cases.push_back({dns, "binding.dns_names[1]"});
  for (const Case& c : cases) {
    EXPECT_THAT(
        authority_->Issue(c.request),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.field)))
        << c.field;
  }
  EXPECT_EQ(store_.RecordCountForTesting(), 0u);
}

TEST_F(ChallengeAuthorityTest, TtlBoundsAreInclusive) {
  IssueRequest request;
  request.device_id = "dev";
  request.ttl = absl::Seconds(1);
  EXPECT_THAT(authority_->Issue(request), IsOk());
  request.ttl = absl::Hours(24 * 30);
  EXPECT_THAT(authority_->Issue(request), IsOk());
}

TEST_F(ChallengeAuthorityTest, SignedKindNeedsAKeyRing) {
  IssueRequest request;
  request.device_id = "dev";
  request.kind = ChallengeKind::kSigned;
  EXPECT_THAT(authority_->Issue(request),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("--hmac-keys")));
}

TEST_F(ChallengeAuthorityTest, IdempotencyKeyReturnsTheSameChallenge) {
  IssueRequest request;
  request.device_id = "dev";
  request.idempotency_key = "3f8a-uuid";
  absl::StatusOr<IssueResult> first = authority_->Issue(request);
  ASSERT_THAT(first, IsOk());
  clock_.Advance(absl::Minutes(1));
  absl::StatusOr<IssueResult> again = authority_->Issue(request);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->challenge, first->challenge);
  EXPECT_EQ(again->challenge_id, first->challenge_id);
  EXPECT_EQ(again->expires_at, first->expires_at);
  EXPECT_TRUE(again->idempotent_replay);
  EXPECT_EQ(store_.RecordCountForTesting(), 1u);

  IssueRequest other_device = request;
  other_device.device_id = "dev-2";
  absl::StatusOr<IssueResult> other = authority_->Issue(other_device);
  ASSERT_THAT(other, IsOk());
  EXPECT_NE(other->challenge, first->challenge);

  IssueRequest changed = request;
  changed.labels["x"] = "y";
  EXPECT_THAT(authority_->Issue(changed),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("idempotency_key")));

  // After the challenge's lifetime the key may be used afresh.
  clock_.Advance(absl::Hours(2));
  absl::StatusOr<IssueResult> later = authority_->Issue(changed);
  ASSERT_THAT(later, IsOk());
  EXPECT_FALSE(later->idempotent_replay);
}

TEST_F(ChallengeAuthorityTest, ConcurrentIdempotentIssuesAgree) {
  IssueRequest request;
  request.device_id = "dev";
  request.idempotency_key = "same";
  std::vector<std::string> got(8);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      absl::StatusOr<IssueResult> r = authority_->Issue(request);
      if (r.ok()) got[i] = r->challenge;
    });
  }
  for (auto& t : threads) t.join();
  for (const std::string& c : got) EXPECT_EQ(c, got[0]);
  EXPECT_FALSE(got[0].empty());
}

TEST_F(ChallengeAuthorityTest, ExactlyOneOfManyConcurrentValidatesIsValid) {
  IssueResult issued = MustIssue("dev");
  std::atomic<int> valid{0}, used{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 24; ++i) {
    threads.emplace_back([&] {
      ValidateRequest request;
      request.challenge = issued.challenge;
      absl::StatusOr<Verdict> v = authority_->Validate(request);
      if (v.ok() && v->valid) ++valid;
      if (v.ok() && v->reason == Reason::kAlreadyUsed) ++used;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(valid.load(), 1);
  EXPECT_EQ(used.load(), 23);
}

TEST_F(ChallengeAuthorityTest, RevokeByEachSelector) {
  IssueResult by_id = MustIssue("dev-a");
  IssueResult by_value = MustIssue("dev-b");
  IssueResult by_device1 = MustIssue("dev-c");
  IssueResult by_device2 = MustIssue("dev-c", "bob");
  IssueResult by_user = MustIssue("dev-d", "carol");

  RevokeRequest r;
  r.selector = RevokeRequest::Selector::kChallengeId;
  r.value = by_id.challenge_id;
  r.reason = "lost";
  EXPECT_THAT(authority_->Revoke(r), IsOkAndHolds(1));
  EXPECT_THAT(authority_->Revoke(r), IsOkAndHolds(0));
  r.selector = RevokeRequest::Selector::kChallenge;
  r.value = by_value.challenge;
  EXPECT_THAT(authority_->Revoke(r), IsOkAndHolds(1));
  r.selector = RevokeRequest::Selector::kDevice;
  r.value = "dev-c";
  EXPECT_THAT(authority_->Revoke(r), IsOkAndHolds(2));
  r.selector = RevokeRequest::Selector::kUser;
  r.value = "carol";
  EXPECT_THAT(authority_->Revoke(r), IsOkAndHolds(1));

  for (const IssueResult* i :
       {&by_id, &by_value, &by_device1, &by_device2, &by_user}) {
    Verdict v = MustValidate(i->challenge);
    EXPECT_FALSE(v.valid);
    EXPECT_EQ(v.reason, Reason::kRevoked);
  }
  Verdict v = MustValidate(by_id.challenge);
  EXPECT_THAT(v.message, HasSubstr("lost"));

  // A challenge issued after the device was revoked is fine.
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_TRUE(MustValidate(MustIssue("dev-c").challenge).valid);
}

TEST_F(ChallengeAuthorityTest, RevokeRequestErrors) {
  RevokeRequest r;
  r.selector = RevokeRequest::Selector::kChallengeId;
  r.value = "nope";
  EXPECT_THAT(
      authority_->Revoke(r),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("challenge_id")));
  r.value = std::string(32, 'a');
  EXPECT_THAT(authority_->Revoke(r), StatusIs(absl::StatusCode::kNotFound));
  r.selector = RevokeRequest::Selector::kDevice;
  r.value = "";
  EXPECT_THAT(
      authority_->Revoke(r),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("device_id")));
  r.value = "dev";
  r.reason = std::string(300, 'r');
  EXPECT_THAT(
      authority_->Revoke(r),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("reason")));
}

// A store that lets a device revocation land between an Issue's index write
// and its check, as a concurrent Revoke on another instance could.
class RevokeDuringInsertStore final
    : public scepca::testing::ForwardingChallengeStore {
 public:
  explicit RevokeDuringInsertStore(ChallengeStore* inner)
      : ForwardingChallengeStore(inner), inner_(inner) {}
  absl::Status Insert(const ChallengeRecord& record, absl::Time now) override {
    // The revocation reads the index before this record is in it.
    absl::StatusOr<int64_t> n =
        inner_->RevokeSubject(SubjectType::kDevice, record.device_id, "race",
                              now, now + absl::Hours(1));
    if (!n.ok()) return n.status();
    return inner_->Insert(record, now);
  }

 private:
  ChallengeStore* const inner_;
};

TEST_F(ChallengeAuthorityTest, IssueRacingADeviceRevocationIsRevoked) {
  RevokeDuringInsertStore racing(&store_);
  auto authority = ChallengeAuthority::Create(options_, &racing, &clock_);
  ASSERT_THAT(authority, IsOk());
  IssueRequest request;
  request.device_id = "dev";
  EXPECT_THAT((*authority)->Issue(request),
              StatusIs(absl::StatusCode::kAborted, HasSubstr("revoked")));
  absl::StatusOr<ChallengePage> page = authority_->List("dev", "", 10, "");
  ASSERT_THAT(page, IsOk());
  ASSERT_THAT(page->records, SizeIs(1));
  EXPECT_EQ(page->records[0].state, ChallengeState::kRevoked);
}

TEST_F(ChallengeAuthorityTest, GetShowsStateAndNeverTheChallenge) {
  IssueRequest request;
  request.device_id = "dev";
  request.binding.common_name = "dev.example.org";
  absl::StatusOr<IssueResult> issued = authority_->Issue(request);
  ASSERT_THAT(issued, IsOk());
  absl::StatusOr<ChallengeRecord> got = authority_->Get(issued->challenge_id);
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->state, ChallengeState::kPending);
  EXPECT_EQ(got->binding.common_name, "dev.example.org");
  // A bound challenge is not used up by a Validate without the CSR.
  Verdict no_csr = MustValidate(issued->challenge);
  EXPECT_EQ(no_csr.reason, Reason::kCsrRequired);
  EXPECT_THAT(
      authority_->Get(issued->challenge_id),
      IsOkAndHolds(Field(&ChallengeRecord::state, ChallengeState::kPending)));
  IssueResult unbound = MustIssue("dev");
  ASSERT_TRUE(MustValidate(unbound.challenge).valid);
  EXPECT_THAT(
      authority_->Get(unbound.challenge_id),
      IsOkAndHolds(Field(&ChallengeRecord::state, ChallengeState::kUsed)));
  IssueResult other = MustIssue("dev");
  clock_.Advance(absl::Minutes(61));
  EXPECT_THAT(
      authority_->Get(other.challenge_id),
      IsOkAndHolds(Field(&ChallengeRecord::state, ChallengeState::kExpired)));
  EXPECT_THAT(authority_->Get("zz"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(authority_->Get(std::string(32, '0')),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(ChallengeAuthorityTest, ListNeedsExactlyOneSubject) {
  MustIssue("dev", "user");
  EXPECT_THAT(authority_->List("", "", 10, ""),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(authority_->List("dev", "user", 10, ""),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      authority_->List("dev", "", 1001, ""),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("page_size")));
  absl::StatusOr<ChallengePage> by_user = authority_->List("", "user", 0, "");
  ASSERT_THAT(by_user, IsOk());
  EXPECT_THAT(by_user->records, SizeIs(1));
}

TEST_F(ChallengeAuthorityTest, NotifyOutcomeByTransactionOrIdBuildsHistory) {
  IssueResult issued = MustIssue("dev-n");
  ValidateRequest validate;
  validate.challenge = issued.challenge;
  validate.transaction_id = "tx-notify";
  ASSERT_TRUE(authority_->Validate(validate)->valid);

  OutcomeReport failed;
  failed.transaction_id = "tx-notify";
  failed.failure = "CA unavailable\nretry";
  EXPECT_THAT(authority_->NotifyOutcome(failed),
              IsOkAndHolds(issued.challenge_id));
  OutcomeReport ok;
  ok.challenge_id = issued.challenge_id;
  ok.issued = true;
  ok.certificate_serial = "0A1B";
  ok.certificate_sha256 = std::string(64, 'F');
  EXPECT_THAT(authority_->NotifyOutcome(ok), IsOkAndHolds(issued.challenge_id));

  absl::StatusOr<ChallengeRecord> got = authority_->Get(issued.challenge_id);
  ASSERT_THAT(got, IsOk());
  ASSERT_EQ(got->outcomes.size(), 2u);
  EXPECT_FALSE(got->outcomes[0].issued);
  EXPECT_EQ(got->outcomes[0].failure, "CA unavailable retry");
  EXPECT_EQ(got->outcomes[0].transaction_id, "tx-notify");
  EXPECT_TRUE(got->outcomes[1].issued);
  EXPECT_EQ(got->outcomes[1].certificate_serial, "0a1b");
  EXPECT_EQ(got->outcomes[1].certificate_sha256, std::string(64, 'f'));
}

TEST_F(ChallengeAuthorityTest, NotifyOutcomeRefusals) {
  OutcomeReport none;
  EXPECT_THAT(
      authority_->NotifyOutcome(none),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("exactly one")));
  OutcomeReport unknown_tx;
  unknown_tx.transaction_id = "never-validated";
  EXPECT_THAT(authority_->NotifyOutcome(unknown_tx),
              StatusIs(absl::StatusCode::kNotFound));
  OutcomeReport unknown_id;
  unknown_id.challenge_id = std::string(32, 'a');
  EXPECT_THAT(authority_->NotifyOutcome(unknown_id),
              StatusIs(absl::StatusCode::kNotFound));
  OutcomeReport bad_serial;
  bad_serial.challenge_id = std::string(32, 'a');
  bad_serial.issued = true;
  bad_serial.certificate_serial = "xyz";
  EXPECT_THAT(authority_->NotifyOutcome(bad_serial),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("certificate_serial")));
  OutcomeReport both;
  both.challenge_id = std::string(32, 'a');
  both.transaction_id = "tx";
  EXPECT_THAT(authority_->NotifyOutcome(both),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(AuthorityOptionsTest, RefusesInconsistentOptions) {
  AuthorityOptions o;
  o.default_ttl = absl::Hours(24 * 31);
  EXPECT_THAT(o.Check(), StatusIs(absl::StatusCode::kInvalidArgument));
  o = AuthorityOptions();
  o.max_ttl = absl::ZeroDuration();
  EXPECT_THAT(o.Check(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(AuthorityOptions().Check(), IsOk());
}

}  // namespace
}  // namespace scepca
