// ChallengeAuthority with signed challenges (kind SIGNED).
#include <memory>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/base64.h"
#include "service/core/challenge_authority.h"
#include "service/core/in_memory_challenge_store.h"
#include "tests/testing/fake_clock.h"
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

KeyRing RingWith(uint32_t id, char fill) {
  return *KeyRing::Parse(absl::StrCat("key ", id, " primary ",
                                      Base64Encode(std::string(32, fill))));
}

class SignedAuthorityTest : public ::testing::Test {
 protected:
  SignedAuthorityTest() : keys_(RingWith(1, 'a')) {}
  void SetUp() override {
    options_.clock_leeway = absl::Minutes(2);
    authority_ =
        *ChallengeAuthority::Create(options_, &store_, &clock_, &keys_);
  }

  IssueResult MustIssue(const std::string& device, const std::string& user,
                        bool multi_use = false,
                        absl::Duration ttl = absl::Minutes(10)) {
    IssueRequest request;
    request.device_id = device;
    request.user_id = user;
    request.kind = ChallengeKind::kSigned;
    request.multi_use = multi_use;
    request.ttl = ttl;
    request.labels = {{"template", "vpn"}};
    absl::StatusOr<IssueResult> r = authority_->Issue(request);
    EXPECT_THAT(r, IsOk());
    return r.ok() ? *r : IssueResult{};
  }
  Verdict Check(const std::string& challenge, bool dry_run = false) {
    ValidateRequest request;
    request.challenge = challenge;
    request.dry_run = dry_run;
    absl::StatusOr<Verdict> v = authority_->Validate(request);
    EXPECT_THAT(v, IsOk());
    return v.ok() ? *v : Verdict{};
  }

  AuthorityOptions options_;
  FakeClock clock_;
  InMemoryChallengeStore store_;
  KeyRingHolder keys_;
  std::unique_ptr<ChallengeAuthority> authority_;
};

TEST_F(SignedAuthorityTest, IssuesWithoutAStoreWriteAndValidatesOnce) {
  IssueResult issued = MustIssue("device-a", "alice");
  EXPECT_EQ(issued.kind, ChallengeKind::kSigned);
  EXPECT_THAT(issued.challenge, MatchesRegex("A[A-Za-z0-9+/=]+"));
  EXPECT_LE(issued.challenge.size(), 255u);
  EXPECT_THAT(issued.challenge_id, MatchesRegex("s[0-9a-f]{32}"));
  EXPECT_EQ(store_.RecordCountForTesting(), 0u);

  Verdict first = Check(issued.challenge);
  EXPECT_TRUE(first.valid);
  ASSERT_TRUE(first.record.has_value());
  EXPECT_EQ(first.record->device_id, "device-a");
  EXPECT_EQ(first.record->user_id, "alice");
  EXPECT_EQ(first.record->labels.at("template"), "vpn");
  EXPECT_EQ(first.record->kind, ChallengeKind::kSigned);
  EXPECT_EQ(first.record->id, issued.challenge_id);

  Verdict replay = Check(issued.challenge);
  EXPECT_FALSE(replay.valid);
  EXPECT_EQ(replay.reason, Reason::kAlreadyUsed);
  EXPECT_THAT(
      authority_->Get(issued.challenge_id),
      IsOkAndHolds(Field(&ChallengeRecord::state, ChallengeState::kUsed)));
}

TEST_F(SignedAuthorityTest, DryRunDoesNotConsume) {
  IssueResult issued = MustIssue("d", "");
  EXPECT_TRUE(Check(issued.challenge, /*dry_run=*/true).valid);
  EXPECT_TRUE(Check(issued.challenge).valid);
  EXPECT_EQ(Check(issued.challenge, /*dry_run=*/true).reason,
            Reason::kAlreadyUsed);
}

TEST_F(SignedAuthorityTest, MultiUseTokenValidatesRepeatedly) {
  IssueResult issued = MustIssue("d", "", /*multi_use=*/true);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(Check(issued.challenge).valid);
  RevokeRequest revoke;
  revoke.selector = RevokeRequest::Selector::kChallengeId;
  revoke.value = issued.challenge_id;
  EXPECT_THAT(authority_->Revoke(revoke), IsOkAndHolds(1));
  EXPECT_EQ(Check(issued.challenge).reason, Reason::kRevoked);
}

TEST_F(SignedAuthorityTest, ExpiryHonoursTheLeewayExactly) {
  IssueResult issued = MustIssue("d", "", /*multi_use=*/true, absl::Minutes(1));
  clock_.Advance(absl::Minutes(1) + absl::Minutes(2));
  EXPECT_TRUE(Check(issued.challenge).valid);  // At exp + leeway: accepted.
  clock_.Advance(absl::Seconds(1));
  Verdict late = Check(issued.challenge);
  EXPECT_FALSE(late.valid);
  EXPECT_EQ(late.reason, Reason::kExpired);
  ASSERT_TRUE(late.record.has_value());
  EXPECT_EQ(late.record->device_id, "d");
}

TEST_F(SignedAuthorityTest, TokenFromTheFutureIsRefused) {
  FakeClock future_clock(clock_.Now() + absl::Minutes(10));
  auto ahead =
      *ChallengeAuthority::Create(options_, &store_, &future_clock, &keys_);
  IssueRequest request;
  request.device_id = "d";
  request.kind = ChallengeKind::kSigned;
  absl::StatusOr<IssueResult> issued = ahead->Issue(request);
  ASSERT_THAT(issued, IsOk());
  Verdict v = Check(issued->challenge);
  EXPECT_FALSE(v.valid);
  EXPECT_EQ(v.reason, Reason::kMalformed);
  EXPECT_THAT(v.message, HasSubstr("future"));
}

TEST_F(SignedAuthorityTest, ForgedAndForeignTokensAreBadSignatures) {
  IssueResult issued = MustIssue("device-a", "alice");
  std::string forged = issued.challenge;
  forged[forged.size() / 2] = forged[forged.size() / 2] == 'A' ? 'B' : 'A';
  Verdict v = Check(forged);
  EXPECT_FALSE(v.valid);
  EXPECT_TRUE(v.reason == Reason::kBadSignature ||
              v.reason == Reason::kMalformed);
  EXPECT_EQ(store_.RecordCountForTesting(), 0u);  // No store access.

  KeyRingHolder other(RingWith(2, 'b'));
  auto foreign =
      *ChallengeAuthority::Create(options_, &store_, &clock_, &other);
  IssueRequest request;
  request.device_id = "device-a";
  request.kind = ChallengeKind::kSigned;
  absl::StatusOr<IssueResult> theirs = foreign->Issue(request);
  ASSERT_THAT(theirs, IsOk());
  EXPECT_EQ(Check(theirs->challenge).reason, Reason::kBadSignature);
}

TEST_F(SignedAuthorityTest, RotationKeepsOldTokensUntilTheKeyIsDisabled) {
  IssueResult old_token = MustIssue("d", "", /*multi_use=*/true);
  KeyRing rotated = *KeyRing::ParseForEditing(keys_.Get()->Serialize());
  const uint32_t next = *rotated.Generate();
  ASSERT_THAT(rotated.Promote(next), IsOk());
  keys_.Set(*KeyRing::Parse(rotated.Serialize()));
  IssueResult new_token = MustIssue("d", "", /*multi_use=*/true);
  EXPECT_TRUE(Check(old_token.challenge).valid);
  Verdict fresh = Check(new_token.challenge);
  EXPECT_TRUE(fresh.valid) << fresh.message;
  ASSERT_THAT(rotated.Disable(1), IsOk());
  keys_.Set(*KeyRing::Parse(rotated.Serialize()));
  EXPECT_EQ(Check(old_token.challenge).reason, Reason::kBadSignature);
  EXPECT_TRUE(Check(new_token.challenge).valid);
}

TEST_F(SignedAuthorityTest, RevokeByDeviceUserValueAndId) {
  IssueResult by_device = MustIssue("dev-1", "");
  IssueResult by_user = MustIssue("dev-2", "bob");
  IssueResult by_value = MustIssue("dev-3", "");
  IssueResult by_id = MustIssue("dev-4", "");
  clock_.Advance(absl::Seconds(1));
  RevokeRequest r;
  r.selector = RevokeRequest::Selector::kDevice;
  r.value = "dev-1";
  ASSERT_THAT(authority_->Revoke(r), IsOk());
  r.selector = RevokeRequest::Selector::kUser;
  r.value = "bob";
  ASSERT_THAT(authority_->Revoke(r), IsOk());
  r.selector = RevokeRequest::Selector::kChallenge;
  r.value = by_value.challenge;
  EXPECT_THAT(authority_->Revoke(r), IsOkAndHolds(1));
  r.selector = RevokeRequest::Selector::kChallengeId;
  r.value = by_id.challenge_id;
  EXPECT_THAT(authority_->Revoke(r), IsOkAndHolds(1));
  for (const IssueResult* t : {&by_device, &by_user, &by_value, &by_id}) {
    Verdict v = Check(t->challenge);
    EXPECT_FALSE(v.valid);
    EXPECT_EQ(v.reason, Reason::kRevoked);
  }
  // Tokens issued after the device's revocation are fine.
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(Check(MustIssue("dev-1", "").challenge).valid);
  // A revoked-by-value token reports what it was.
  EXPECT_THAT(authority_->Get(by_value.challenge_id),
              IsOkAndHolds(Field(&ChallengeRecord::device_id, "dev-3")));
}

TEST_F(SignedAuthorityTest, IssueRefusals) {
  IssueRequest request;
  request.device_id = std::string(100, 'd');
  request.user_id = std::string(100, 'u');
  request.kind = ChallengeKind::kSigned;
  EXPECT_THAT(authority_->Issue(request),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("255 characters")));
  IssueRequest one_time;
  one_time.device_id = "d";
  one_time.multi_use = true;
  EXPECT_THAT(
      authority_->Issue(one_time),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("multi_use")));
  auto keyless = *ChallengeAuthority::Create(options_, &store_, &clock_);
  request.device_id = "d";
  request.user_id = "";
  EXPECT_THAT(keyless->Issue(request),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  IssueResult issued = MustIssue("d", "");
  ValidateRequest validate;
  validate.challenge = issued.challenge;
  absl::StatusOr<Verdict> v = keyless->Validate(validate);
  ASSERT_THAT(v, IsOk());
  EXPECT_EQ(v->reason, Reason::kBadSignature);
}

TEST_F(SignedAuthorityTest, IdempotentSignedIssueReturnsTheSameToken) {
  IssueRequest request;
  request.device_id = "d";
  request.kind = ChallengeKind::kSigned;
  request.idempotency_key = "k-1";
  absl::StatusOr<IssueResult> first = authority_->Issue(request);
  absl::StatusOr<IssueResult> again = authority_->Issue(request);
  ASSERT_THAT(first, IsOk());
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(first->challenge, again->challenge);
  EXPECT_TRUE(again->idempotent_replay);
  EXPECT_EQ(again->kind, ChallengeKind::kSigned);
}

}  // namespace
}  // namespace scepca
