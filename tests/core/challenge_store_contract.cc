#include "tests/core/challenge_store_contract.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "tests/testing/status_matchers.h"

namespace scepca::testing {

using ::testing::AnyOf;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::SizeIs;

absl::Time ChallengeStoreContractTest::Now() const {
  return absl::FromUnixMicros(absl::ToUnixMicros(absl::Now() + offset_));
}

void ChallengeStoreContractTest::Advance(absl::Duration d) {
  if (GetParam().real_time) {
    absl::SleepFor(d);
  } else {
    offset_ += d;
  }
}

bool ChallengeStoreContractTest::StillLive(absl::Time written_after,
                                           absl::Duration ttl) const {
  // The margin covers Now()'s truncation and millisecond TTLs.
  return !GetParam().real_time ||
         absl::Now() - written_after < ttl - absl::Milliseconds(10);
}

ChallengeRecord ChallengeStoreContractTest::MakeRecord(
    const std::string& id, const std::string& device, const std::string& user,
    absl::Duration ttl, absl::Duration retention) {
  ChallengeRecord r;
  r.id = id;
  r.device_id = device;
  r.user_id = user;
  r.kind = ChallengeKind::kOneTime;
  r.created_at = Now();
  r.expires_at = r.created_at + ttl;
  r.forget_at = r.expires_at + retention;
  return r;
}

std::string ChallengeStoreContractTest::IdFor(int n) {
  return absl::StrFormat("%032x", n);
}

namespace {

UseInfo Use(const std::string& transaction_id,
            const std::string& key_sha256 = "") {
  UseInfo use;
  use.transaction_id = transaction_id;
  use.public_key_sha256 = key_sha256;
  return use;
}

TEST_P(ChallengeStoreContractTest, InsertThenGetRoundTripsEveryField) {
  ChallengeRecord r = MakeRecord(IdFor(1), "dev-1", "user-1", absl::Hours(1));
  r.binding.common_name = "device.example.org";
  r.binding.dns_names = {"a.example.org", "b.example.org"};
  r.binding.email_addresses = {"u@example.org"};
  r.binding.uris = {"urn:uuid:1234"};
  r.labels = {{"template", "wifi"}, {"tenant", "t\x01\xff"}};
  ASSERT_THAT(store_->Insert(r, Now()), IsOk());

  absl::StatusOr<ChallengeRecord> got = store_->Get(IdFor(1), Now());
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->id, r.id);
  EXPECT_EQ(got->device_id, "dev-1");
  EXPECT_EQ(got->user_id, "user-1");
  EXPECT_EQ(got->kind, ChallengeKind::kOneTime);
  EXPECT_EQ(got->binding, r.binding);
  EXPECT_EQ(got->labels, r.labels);
  EXPECT_EQ(got->created_at, r.created_at);
  EXPECT_EQ(got->expires_at, r.expires_at);
  EXPECT_EQ(got->forget_at, r.forget_at);
  EXPECT_EQ(got->state, ChallengeState::kPending);
}

TEST_P(ChallengeStoreContractTest, InsertOfExistingIdFailsAlreadyExists) {
  ChallengeRecord r = MakeRecord(IdFor(2), "dev", "", absl::Hours(1));
  ASSERT_THAT(store_->Insert(r, Now()), IsOk());
  r.device_id = "other";
  EXPECT_THAT(store_->Insert(r, Now()),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(store_->Get(IdFor(2), Now()),
              IsOkAndHolds(Field(&ChallengeRecord::device_id, "dev")));
}

TEST_P(ChallengeStoreContractTest, RevokedBeforeEitherIsTheNewerMarker) {
  EXPECT_THAT(store_->RevokedBeforeEither("dev-e", "user-e", Now()),
              IsOkAndHolds(absl::InfinitePast()));
  EXPECT_THAT(store_->RevokedBeforeEither("dev-e", "", Now()),
              IsOkAndHolds(absl::InfinitePast()));
  const absl::Time first = Now();
  ASSERT_THAT(store_->RevokeSubject(SubjectType::kUser, "user-e", "lost", first,
                                    first + absl::Hours(1)),
              IsOk());
  EXPECT_THAT(store_->RevokedBeforeEither("dev-e", "user-e", Now()),
              IsOkAndHolds(first));
  // Without a user only the device's marker counts.
  EXPECT_THAT(store_->RevokedBeforeEither("dev-e", "", Now()),
              IsOkAndHolds(absl::InfinitePast()));
  const absl::Time second = first + absl::Milliseconds(5);
  ASSERT_THAT(store_->RevokeSubject(SubjectType::kDevice, "dev-e", "stolen",
                                    second, second + absl::Hours(1)),
              IsOk());
  EXPECT_THAT(store_->RevokedBeforeEither("dev-e", "user-e", Now()),
              IsOkAndHolds(second));
  EXPECT_THAT(store_->RevokedBeforeEither("dev-e", "", Now()),
              IsOkAndHolds(second));
  // A user's marker does not apply to a device of the same name.
  EXPECT_THAT(store_->RevokedBeforeEither("user-e", "dev-other", Now()),
              IsOkAndHolds(absl::InfinitePast()));
}

TEST_P(ChallengeStoreContractTest, InsertAndReadRevokedBeforeStoresAndReads) {
  ChallengeRecord first =
      MakeRecord(IdFor(60), "dev-i", "user-i", absl::Hours(1));
  EXPECT_THAT(store_->InsertAndReadRevokedBefore(first, Now()),
              IsOkAndHolds(absl::InfinitePast()));
  // Stored and indexed like Insert().
  EXPECT_THAT(store_->Get(IdFor(60), Now()), IsOk());
  absl::StatusOr<ChallengePage> page =
      store_->List(SubjectType::kUser, "user-i", 10, "", Now());
  ASSERT_THAT(page, IsOk());
  EXPECT_THAT(page->records, SizeIs(1));
  EXPECT_THAT(store_->InsertAndReadRevokedBefore(first, Now()),
              StatusIs(absl::StatusCode::kAlreadyExists));
  // A marker of either subject comes back (the newest).
  const absl::Time revoked = Now();
  ASSERT_THAT(store_->RevokeSubject(SubjectType::kUser, "user-i", "lost",
                                    revoked, revoked + absl::Hours(1)),
              IsOk());
  ChallengeRecord second =
      MakeRecord(IdFor(61), "dev-i", "user-i", absl::Hours(1));
  EXPECT_THAT(store_->InsertAndReadRevokedBefore(second, Now()),
              IsOkAndHolds(revoked));
  ChallengeRecord no_user = MakeRecord(IdFor(62), "dev-i", "", absl::Hours(1));
  EXPECT_THAT(store_->InsertAndReadRevokedBefore(no_user, Now()),
              IsOkAndHolds(absl::InfinitePast()));
  EXPECT_THAT(store_->Get(IdFor(62), Now()), IsOk());
}

TEST_P(ChallengeStoreContractTest, GetOfUnknownIdFailsNotFound) {
  EXPECT_THAT(store_->Get(IdFor(3), Now()),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(ChallengeStoreContractTest, ConsumeSucceedsOnceThenSaysAlreadyUsed) {
  ASSERT_THAT(
      store_->Insert(MakeRecord(IdFor(4), "dev", "", absl::Hours(1)), Now()),
      IsOk());
  const absl::Time used_at = Now();
  absl::StatusOr<ConsumeResult> first =
      store_->Consume(IdFor(4), Use("tx-1", std::string(32, '\xab')), used_at);
  ASSERT_THAT(first, IsOk());
  EXPECT_EQ(first->outcome, ConsumeResult::Outcome::kConsumed);
  EXPECT_EQ(first->record.state, ChallengeState::kUsed);
  EXPECT_EQ(first->record.device_id, "dev");

  absl::StatusOr<ConsumeResult> second =
      store_->Consume(IdFor(4), Use("tx-2"), Now());
  ASSERT_THAT(second, IsOk());
  EXPECT_EQ(second->outcome, ConsumeResult::Outcome::kAlreadyUsed);
  EXPECT_EQ(second->record.used_at, used_at);
  EXPECT_EQ(second->record.used_transaction_id, "tx-1");
  EXPECT_EQ(second->record.used_public_key_sha256, std::string(32, '\xab'));

  absl::StatusOr<ChallengeRecord> got = store_->Get(IdFor(4), Now());
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->state, ChallengeState::kUsed);
  EXPECT_EQ(got->used_transaction_id, "tx-1");
}

TEST_P(ChallengeStoreContractTest, UnboundOnlyConsumeLeavesABoundRecord) {
  // Each part of a binding alone makes a record bound.
  std::vector<IdentityBinding> bindings(4);
  bindings[0].common_name = "device.example.org";
  bindings[1].dns_names = {"a.example.org"};
  bindings[2].email_addresses = {"u@example.org"};
  bindings[3].uris = {"urn:uuid:1"};
  UseInfo unbound_only = Use("tx-1");
  unbound_only.unbound_only = true;
  for (int i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    ChallengeRecord r = MakeRecord(IdFor(40 + i), "dev", "", absl::Hours(1));
    r.binding = bindings[i];
    ASSERT_THAT(store_->Insert(r, Now()), IsOk());
    absl::StatusOr<ConsumeResult> refused =
        store_->Consume(r.id, unbound_only, Now());
    ASSERT_THAT(refused, IsOk());
    EXPECT_EQ(refused->outcome, ConsumeResult::Outcome::kBound);
    EXPECT_EQ(refused->record.binding, bindings[i]);
    EXPECT_EQ(refused->record.state, ChallengeState::kPending);
    absl::StatusOr<ChallengeRecord> got = store_->Get(r.id, Now());
    ASSERT_THAT(got, IsOk());
    EXPECT_EQ(got->state, ChallengeState::kPending);
    // The same record is consumed by a request that does not ask for that.
    absl::StatusOr<ConsumeResult> consumed =
        store_->Consume(r.id, Use("tx-2"), Now());
    ASSERT_THAT(consumed, IsOk());
    EXPECT_EQ(consumed->outcome, ConsumeResult::Outcome::kConsumed);
    // A used record is reported as used, bound or not.
    absl::StatusOr<ConsumeResult> again =
        store_->Consume(r.id, unbound_only, Now());
    ASSERT_THAT(again, IsOk());
    EXPECT_EQ(again->outcome, ConsumeResult::Outcome::kAlreadyUsed);
  }
  // An unbound record is consumed as usual.
  ASSERT_THAT(
      store_->Insert(MakeRecord(IdFor(44), "dev", "", absl::Hours(1)), Now()),
      IsOk());
  absl::StatusOr<ConsumeResult> plain =
      store_->Consume(IdFor(44), unbound_only, Now());
  ASSERT_THAT(plain, IsOk());
  EXPECT_EQ(plain->outcome, ConsumeResult::Outcome::kConsumed);
  EXPECT_EQ(plain->record.used_transaction_id, "tx-1");
  // An expired bound record says expired.
  ChallengeRecord expiring =
      MakeRecord(IdFor(45), "dev", "", absl::Milliseconds(200));
  expiring.binding.common_name = "x";
  ASSERT_THAT(store_->Insert(expiring, Now()), IsOk());
  Advance(absl::Milliseconds(300));
  absl::StatusOr<ConsumeResult> expired =
      store_->Consume(IdFor(45), unbound_only, Now());
  ASSERT_THAT(expired, IsOk());
  EXPECT_EQ(expired->outcome, ConsumeResult::Outcome::kExpired);
}

TEST_P(ChallengeStoreContractTest, ConsumeOfUnknownIdSaysNotFound) {
  absl::StatusOr<ConsumeResult> r = store_->Consume(IdFor(5), Use(""), Now());
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->outcome, ConsumeResult::Outcome::kNotFound);
}

TEST_P(ChallengeStoreContractTest, ConsumeAfterExpirySaysExpiredAndKeepsIt) {
  ASSERT_THAT(
      store_->Insert(MakeRecord(IdFor(6), "dev", "", absl::Milliseconds(200)),
                     Now()),
      IsOk());
  Advance(absl::Milliseconds(300));
  absl::StatusOr<ConsumeResult> r = store_->Consume(IdFor(6), Use(""), Now());
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->outcome, ConsumeResult::Outcome::kExpired);
  absl::StatusOr<ChallengeRecord> got = store_->Get(IdFor(6), Now());
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->state, ChallengeState::kPending);
  EXPECT_EQ(got->StateAt(Now()), ChallengeState::kExpired);
}

TEST_P(ChallengeStoreContractTest, RecordIsForgottenAtForgetAt) {
  ASSERT_THAT(
      store_->Insert(MakeRecord(IdFor(7), "dev", "u", absl::Milliseconds(100),
                                absl::Milliseconds(100)),
                     Now()),
      IsOk());
  ASSERT_THAT(store_->Consume(IdFor(7), Use(""), Now()), IsOk());
  Advance(absl::Milliseconds(400));
  EXPECT_THAT(store_->Get(IdFor(7), Now()),
              StatusIs(absl::StatusCode::kNotFound));
  absl::StatusOr<ConsumeResult> r = store_->Consume(IdFor(7), Use(""), Now());
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->outcome, ConsumeResult::Outcome::kNotFound);
  absl::StatusOr<ChallengePage> page =
      store_->List(SubjectType::kDevice, "dev", 10, "", Now());
  ASSERT_THAT(page, IsOk());
  EXPECT_THAT(page->records, SizeIs(0));
}

TEST_P(ChallengeStoreContractTest, ExactlyOneOfManyConcurrentConsumesWins) {
  constexpr int kRecords = 10;
  constexpr int kThreads = 8;
  for (int i = 0; i < kRecords; ++i) {
    ASSERT_THAT(
        store_->Insert(MakeRecord(IdFor(100 + i), "dev", "", absl::Hours(1)),
                       Now()),
        IsOk());
  }
  std::vector<std::atomic<int>> wins(kRecords);
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRecords; ++i) {
        absl::StatusOr<ConsumeResult> r = store_->Consume(
            IdFor(100 + i), Use(absl::StrFormat("tx-%d", t)), Now());
        if (!r.ok()) {
          ++errors;
        } else if (r->outcome == ConsumeResult::Outcome::kConsumed) {
          ++wins[i];
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  for (int i = 0; i < kRecords; ++i) EXPECT_EQ(wins[i].load(), 1) << i;
}

TEST_P(ChallengeStoreContractTest, RevokeOfPendingMakesConsumeSayRevoked) {
  ASSERT_THAT(
      store_->Insert(MakeRecord(IdFor(8), "dev", "", absl::Hours(1)), Now()),
      IsOk());
  EXPECT_THAT(store_->Revoke(IdFor(8), "lost phone", Now()),
              IsOkAndHolds(true));
  EXPECT_THAT(store_->Revoke(IdFor(8), "again", Now()), IsOkAndHolds(false));
  absl::StatusOr<ConsumeResult> r = store_->Consume(IdFor(8), Use(""), Now());
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->outcome, ConsumeResult::Outcome::kRevoked);
  EXPECT_EQ(r->record.revoke_reason, "lost phone");
  EXPECT_EQ(r->record.state, ChallengeState::kRevoked);
}

TEST_P(ChallengeStoreContractTest, RevokeOfUsedChangesNothing) {
  ASSERT_THAT(
      store_->Insert(MakeRecord(IdFor(9), "dev", "", absl::Hours(1)), Now()),
      IsOk());
  ASSERT_THAT(store_->Consume(IdFor(9), Use("tx"), Now()), IsOk());
  EXPECT_THAT(store_->Revoke(IdFor(9), "late", Now()), IsOkAndHolds(false));
  EXPECT_THAT(
      store_->Get(IdFor(9), Now()),
      IsOkAndHolds(Field(&ChallengeRecord::state, ChallengeState::kUsed)));
}

TEST_P(ChallengeStoreContractTest, RevokeOfUnknownIdFailsNotFound) {
  EXPECT_THAT(store_->Revoke(IdFor(10), "", Now()),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(ChallengeStoreContractTest, RevokeSubjectRevokesPendingOfThatSubject) {
  ASSERT_THAT(
      store_->Insert(MakeRecord(IdFor(11), "dev-a", "user-a", absl::Hours(1)),
                     Now()),
      IsOk());
  ASSERT_THAT(
      store_->Insert(MakeRecord(IdFor(12), "dev-a", "", absl::Hours(1)), Now()),
      IsOk());
  ASSERT_THAT(
      store_->Insert(MakeRecord(IdFor(13), "dev-a", "", absl::Hours(1)), Now()),
      IsOk());
  ASSERT_THAT(store_->Consume(IdFor(13), Use(""), Now()), IsOk());
  ASSERT_THAT(
      store_->Insert(MakeRecord(IdFor(14), "dev-b", "user-a", absl::Hours(1)),
                     Now()),
      IsOk());
  EXPECT_THAT(store_->RevokedBefore(SubjectType::kDevice, "dev-a", Now()),
              IsOkAndHolds(absl::InfinitePast()));

  const absl::Time revoked_at = Now();
  EXPECT_THAT(store_->RevokeSubject(SubjectType::kDevice, "dev-a", "stolen",
                                    revoked_at, revoked_at + absl::Hours(2)),
              IsOkAndHolds(2));
  EXPECT_THAT(store_->RevokedBefore(SubjectType::kDevice, "dev-a", Now()),
              IsOkAndHolds(revoked_at));
  EXPECT_THAT(store_->RevokedBefore(SubjectType::kDevice, "dev-b", Now()),
              IsOkAndHolds(absl::InfinitePast()));
  for (int id : {11, 12}) {
    absl::StatusOr<ChallengeRecord> got = store_->Get(IdFor(id), Now());
    ASSERT_THAT(got, IsOk());
    EXPECT_EQ(got->state, ChallengeState::kRevoked);
    EXPECT_EQ(got->revoke_reason, "stolen");
  }
  EXPECT_THAT(
      store_->Get(IdFor(13), Now()),
      IsOkAndHolds(Field(&ChallengeRecord::state, ChallengeState::kUsed)));
  EXPECT_THAT(
      store_->Get(IdFor(14), Now()),
      IsOkAndHolds(Field(&ChallengeRecord::state, ChallengeState::kPending)));

  EXPECT_THAT(store_->RevokeSubject(SubjectType::kUser, "user-a", "left", Now(),
                                    Now() + absl::Hours(2)),
              IsOkAndHolds(1));
  EXPECT_THAT(
      store_->Get(IdFor(14), Now()),
      IsOkAndHolds(Field(&ChallengeRecord::state, ChallengeState::kRevoked)));
}

TEST_P(ChallengeStoreContractTest, RevokedBeforeMarkerIsForgotten) {
  const absl::Duration ttl = absl::Milliseconds(150);
  const absl::Time written_after = absl::Now();
  const absl::Time now = Now();
  ASSERT_THAT(
      store_->RevokeSubject(SubjectType::kUser, "u", "", now, now + ttl),
      IsOk());
  absl::StatusOr<absl::Time> marker =
      store_->RevokedBefore(SubjectType::kUser, "u", Now());
  ASSERT_THAT(marker, IsOk());
  if (StillLive(written_after, ttl)) {
    EXPECT_EQ(*marker, now);
  } else {
    EXPECT_THAT(*marker, AnyOf(now, absl::InfinitePast()));
  }
  Advance(absl::Milliseconds(400));
  EXPECT_THAT(store_->RevokedBefore(SubjectType::kUser, "u", Now()),
              IsOkAndHolds(absl::InfinitePast()));
}

TEST_P(ChallengeStoreContractTest, ListPagesThroughOneSubjectOnly) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_THAT(store_->Insert(MakeRecord(IdFor(20 + i), "dev-l", "",
                                          absl::Minutes(10 + i)),
                               Now()),
                IsOk());
  }
  ASSERT_THAT(
      store_->Insert(MakeRecord(IdFor(30), "dev-other", "", absl::Minutes(10)),
                     Now()),
      IsOk());
  std::vector<std::string> ids;
  std::string token;
  int pages = 0;
  do {
    absl::StatusOr<ChallengePage> page =
        store_->List(SubjectType::kDevice, "dev-l", 2, token, Now());
    ASSERT_THAT(page, IsOk());
    EXPECT_LE(page->records.size(), 2u);
    for (const ChallengeRecord& r : page->records) ids.push_back(r.id);
    token = page->next_page_token;
    ASSERT_LT(++pages, 10);
  } while (!token.empty());
  EXPECT_THAT(
      ids, ElementsAre(IdFor(20), IdFor(21), IdFor(22), IdFor(23), IdFor(24)));
  EXPECT_THAT(store_->List(SubjectType::kDevice, "dev-l", 2, "bogus!", Now()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  absl::StatusOr<ChallengePage> none =
      store_->List(SubjectType::kUser, "nobody", 2, "", Now());
  ASSERT_THAT(none, IsOk());
  EXPECT_THAT(none->records, SizeIs(0));
  EXPECT_EQ(none->next_page_token, "");
}

TEST_P(ChallengeStoreContractTest, IdempotencyPutKeepsTheFirstEntry) {
  IdempotencyEntry first;
  first.request_fingerprint = "fp-1";
  first.challenge_id = IdFor(40);
  first.sealed_challenge = std::string("\x00\x01sealed", 8);
  first.expires_at = Now() + absl::Hours(1);
  absl::StatusOr<absl::optional<IdempotencyEntry>> put =
      store_->PutIdempotencyIfAbsent("key-1", first, Now());
  ASSERT_THAT(put, IsOk());
  EXPECT_FALSE(put->has_value());

  IdempotencyEntry second = first;
  second.request_fingerprint = "fp-2";
  put = store_->PutIdempotencyIfAbsent("key-1", second, Now());
  ASSERT_THAT(put, IsOk());
  ASSERT_TRUE(put->has_value());
  EXPECT_EQ((*put)->request_fingerprint, "fp-1");
  EXPECT_EQ((*put)->challenge_id, IdFor(40));
  EXPECT_EQ((*put)->sealed_challenge, first.sealed_challenge);
  EXPECT_EQ((*put)->expires_at, first.expires_at);
}

TEST_P(ChallengeStoreContractTest, IdempotencyEntryExpires) {
  IdempotencyEntry e;
  e.request_fingerprint = "fp";
  e.challenge_id = IdFor(41);
  e.sealed_challenge = "s";
  e.expires_at = Now() + absl::Milliseconds(150);
  ASSERT_THAT(store_->PutIdempotencyIfAbsent("key-2", e, Now()), IsOk());
  Advance(absl::Milliseconds(400));
  e.request_fingerprint = "fp-new";
  e.expires_at = Now() + absl::Hours(1);
  absl::StatusOr<absl::optional<IdempotencyEntry>> put =
      store_->PutIdempotencyIfAbsent("key-2", e, Now());
  ASSERT_THAT(put, IsOk());
  EXPECT_FALSE(put->has_value());
}

TEST_P(ChallengeStoreContractTest, DeleteRemovesTheRecord) {
  ASSERT_THAT(store_->Insert(
                  MakeRecord(IdFor(50), "dev-del", "", absl::Hours(1)), Now()),
              IsOk());
  ASSERT_THAT(store_->Delete(IdFor(50)), IsOk());
  EXPECT_THAT(store_->Get(IdFor(50), Now()),
              StatusIs(absl::StatusCode::kNotFound));
  absl::StatusOr<ChallengePage> page =
      store_->List(SubjectType::kDevice, "dev-del", 10, "", Now());
  ASSERT_THAT(page, IsOk());
  EXPECT_THAT(page->records, SizeIs(0));
  EXPECT_THAT(store_->Delete(IdFor(51)), IsOk());
}

ChallengeRecord TokenFor(ChallengeStoreContractTest* t, int n, absl::Time now) {
  ChallengeRecord r;
  r.id = absl::StrFormat("s%032x", n);
  r.kind = ChallengeKind::kSigned;
  r.device_id = "dev-token";
  r.user_id = "user-token";
  r.labels = {{"k", "v"}};
  r.created_at = now;
  r.expires_at = now + absl::Hours(1);
  r.forget_at = r.expires_at + absl::Minutes(5);
  (void)t;
  return r;
}

TEST_P(ChallengeStoreContractTest, SingleUseTokenIsConsumedOnce) {
  const ChallengeRecord token = TokenFor(this, 1, Now());
  EXPECT_THAT(store_->Get(token.id, Now()),
              StatusIs(absl::StatusCode::kNotFound));
  absl::StatusOr<ConsumeResult> first =
      store_->ConsumeToken(token, false, Use("tx-a", "k"), Now());
  ASSERT_THAT(first, IsOk());
  EXPECT_EQ(first->outcome, ConsumeResult::Outcome::kConsumed);
  absl::StatusOr<ConsumeResult> again =
      store_->ConsumeToken(token, false, Use("tx-b"), Now());
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->outcome, ConsumeResult::Outcome::kAlreadyUsed);
  EXPECT_EQ(again->record.used_transaction_id, "tx-a");
  EXPECT_EQ(again->record.used_public_key_sha256, "k");
  absl::StatusOr<ChallengeRecord> got = store_->Get(token.id, Now());
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->state, ChallengeState::kUsed);
  EXPECT_EQ(got->kind, ChallengeKind::kSigned);
  EXPECT_EQ(got->device_id, "dev-token");
  EXPECT_EQ(got->labels, token.labels);
  EXPECT_EQ(got->forget_at, token.forget_at);
}

TEST_P(ChallengeStoreContractTest, ConcurrentTokenConsumesHaveOneWinner) {
  const ChallengeRecord token = TokenFor(this, 2, Now());
  std::atomic<int> wins{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      absl::StatusOr<ConsumeResult> r =
          store_->ConsumeToken(token, false, Use("tx"), Now());
      if (r.ok() && r->outcome == ConsumeResult::Outcome::kConsumed) ++wins;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wins.load(), 1);
}

TEST_P(ChallengeStoreContractTest, MultiUseTokenIsNeverUsedUp) {
  const ChallengeRecord token = TokenFor(this, 3, Now());
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<ConsumeResult> r =
        store_->ConsumeToken(token, true, Use("tx"), Now());
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->outcome, ConsumeResult::Outcome::kConsumed);
  }
  EXPECT_THAT(store_->RevokeToken(token, "renewals stopped", Now()),
              IsOkAndHolds(true));
  absl::StatusOr<ConsumeResult> r =
      store_->ConsumeToken(token, true, Use("tx"), Now());
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->outcome, ConsumeResult::Outcome::kRevoked);
  EXPECT_EQ(r->record.revoke_reason, "renewals stopped");
}

TEST_P(ChallengeStoreContractTest, RevokeTokenBeforeAndAfterUse) {
  const ChallengeRecord unused = TokenFor(this, 4, Now());
  EXPECT_THAT(store_->RevokeToken(unused, "r", Now()), IsOkAndHolds(true));
  EXPECT_THAT(store_->RevokeToken(unused, "r", Now()), IsOkAndHolds(false));
  absl::StatusOr<ConsumeResult> r =
      store_->ConsumeToken(unused, false, Use("tx"), Now());
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->outcome, ConsumeResult::Outcome::kRevoked);

  const ChallengeRecord used = TokenFor(this, 5, Now());
  ASSERT_THAT(store_->ConsumeToken(used, false, Use("tx"), Now()), IsOk());
  EXPECT_THAT(store_->RevokeToken(used, "late", Now()), IsOkAndHolds(false));
  EXPECT_THAT(
      store_->Get(used.id, Now()),
      IsOkAndHolds(Field(&ChallengeRecord::state, ChallengeState::kUsed)));
}

TEST_P(ChallengeStoreContractTest,
       TransactionIndexFindsTheRecordUntilForgotten) {
  EXPECT_THAT(store_->FindByTransaction("tx-none", Now()),
              StatusIs(absl::StatusCode::kNotFound));
  const absl::Duration ttl = absl::Milliseconds(200);
  // The index names `id` unless the test was too slow to tell (then it may
  // also be forgotten already).
  auto expect_found = [&](absl::Time written_after, const std::string& id) {
    absl::StatusOr<std::string> found =
        store_->FindByTransaction("tx-9", Now());
    if (StillLive(written_after, ttl)) {
      EXPECT_THAT(found, IsOkAndHolds(id));
    } else if (!found.ok()) {
      EXPECT_THAT(found, StatusIs(absl::StatusCode::kNotFound));
    } else {
      EXPECT_EQ(*found, id);
    }
  };
  absl::Time written_after = absl::Now();
  ASSERT_THAT(store_->IndexTransaction("tx-9", IdFor(60), Now() + ttl, Now()),
              IsOk());
  expect_found(written_after, IdFor(60));
  written_after = absl::Now();
  ASSERT_THAT(store_->IndexTransaction("tx-9", IdFor(61), Now() + ttl, Now()),
              IsOk());
  expect_found(written_after, IdFor(61));
  Advance(absl::Milliseconds(400));
  EXPECT_THAT(store_->FindByTransaction("tx-9", Now()),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(ChallengeStoreContractTest, AppendOutcomeKeepsTheNewestEvents) {
  EXPECT_THAT(store_->AppendOutcome(IdFor(62), OutcomeEvent(), Now()),
              StatusIs(absl::StatusCode::kNotFound));
  ASSERT_THAT(
      store_->Insert(MakeRecord(IdFor(62), "dev-o", "", absl::Hours(1)), Now()),
      IsOk());
  ASSERT_THAT(store_->Consume(IdFor(62), Use("tx-o"), Now()), IsOk());
  for (int i = 0; i < static_cast<int>(kMaxOutcomes) + 2; ++i) {
    OutcomeEvent e;
    e.at = Now();
    e.issued = i % 2 == 0;
    e.transaction_id = "tx-o";
    e.certificate_serial = absl::StrFormat("%02x", i);
    e.certificate_sha256 = std::string(64, 'a');
    e.failure = i % 2 == 0 ? "" : "CA said no: \"quota\"\n";
    ASSERT_THAT(store_->AppendOutcome(IdFor(62), e, Now()), IsOk());
  }
  absl::StatusOr<ChallengeRecord> got = store_->Get(IdFor(62), Now());
  ASSERT_THAT(got, IsOk());
  ASSERT_EQ(got->outcomes.size(), kMaxOutcomes);
  EXPECT_EQ(got->outcomes.front().certificate_serial, "02");
  EXPECT_EQ(got->outcomes.back().certificate_serial,
            absl::StrFormat("%02x", kMaxOutcomes + 1));
  EXPECT_EQ(got->outcomes.back().failure, "CA said no: \"quota\"\n");
  EXPECT_FALSE(got->outcomes.back().issued);
  EXPECT_EQ(got->state, ChallengeState::kUsed);
  EXPECT_EQ(got->used_transaction_id, "tx-o");
}

TEST_P(ChallengeStoreContractTest, FailuresAreCountedPerDeviceInAWindow) {
  const absl::Duration window = absl::Milliseconds(300);
  EXPECT_THAT(store_->FailureCount("dev-f", Now()), IsOkAndHolds(0));
  const absl::Time written_after = absl::Now();
  EXPECT_THAT(store_->CountFailure("dev-f", window, Now()), IsOkAndHolds(1));
  absl::StatusOr<int64_t> second = store_->CountFailure("dev-f", window, Now());
  EXPECT_THAT(store_->CountFailure("dev-g", window, Now()), IsOkAndHolds(1));
  absl::StatusOr<int64_t> counted = store_->FailureCount("dev-f", Now());
  ASSERT_THAT(second, IsOk());
  ASSERT_THAT(counted, IsOk());
  if (StillLive(written_after, window)) {
    EXPECT_EQ(*second, 2);
    EXPECT_EQ(*counted, 2);
  } else {
    // Too slow to tell: the window may have ended between the calls.
    EXPECT_THAT(*second, AnyOf(1, 2));
    EXPECT_THAT(*counted, AnyOf(0, 1, 2));
  }
  Advance(absl::Milliseconds(500));
  EXPECT_THAT(store_->FailureCount("dev-f", Now()), IsOkAndHolds(0));
  EXPECT_THAT(store_->CountFailure("dev-f", window, Now()), IsOkAndHolds(1));
}

TEST_P(ChallengeStoreContractTest, PingSucceeds) {
  EXPECT_THAT(store_->Ping(), IsOk());
}

}  // namespace
}  // namespace scepca::testing
