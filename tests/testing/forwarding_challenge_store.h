// File: forwarding_challenge_store.h
// A ChallengeStore that forwards every call to another store; tests derive
// from it and override the calls they want to intercept.
#ifndef SCEPCA_TESTS_TESTING_FORWARDING_CHALLENGE_STORE_H_
#define SCEPCA_TESTS_TESTING_FORWARDING_CHALLENGE_STORE_H_

#include <string>

#include "service/core/challenge_store.h"

namespace scepca::testing {

class ForwardingChallengeStore : public ChallengeStore {
 public:
  explicit ForwardingChallengeStore(ChallengeStore* inner) : inner_(inner) {}

  std::string Describe() const override { return inner_->Describe(); }
  absl::Status Insert(const ChallengeRecord& record, absl::Time now) override {
    return inner_->Insert(record, now);
  }
  // InsertAndReadRevokedBefore() is not forwarded: the default composes this
  // store's Insert() and RevokedBeforeEither(), so that a subclass that
  // overrides Insert() sees every insert.
  absl::StatusOr<ChallengeRecord> Get(absl::string_view id,
                                      absl::Time now) override {
    return inner_->Get(id, now);
  }
  absl::StatusOr<ConsumeResult> Consume(absl::string_view id,
                                        const UseInfo& use,
                                        absl::Time now) override {
    return inner_->Consume(id, use, now);
  }
  absl::StatusOr<ConsumeResult> ConsumeToken(const ChallengeRecord& token,
                                             bool multi_use, const UseInfo& use,
                                             absl::Time now) override {
    return inner_->ConsumeToken(token, multi_use, use, now);
  }
  absl::StatusOr<bool> RevokeToken(const ChallengeRecord& token,
                                   absl::string_view reason,
                                   absl::Time now) override {
    return inner_->RevokeToken(token, reason, now);
  }
  absl::StatusOr<bool> Revoke(absl::string_view id, absl::string_view reason,
                              absl::Time now) override {
    return inner_->Revoke(id, reason, now);
  }
  absl::StatusOr<int64_t> RevokeSubject(SubjectType type,
                                        absl::string_view subject,
                                        absl::string_view reason,
                                        absl::Time now,
                                        absl::Time forget) override {
    return inner_->RevokeSubject(type, subject, reason, now, forget);
  }
  absl::StatusOr<absl::Time> RevokedBefore(SubjectType type,
                                           absl::string_view subject,
                                           absl::Time now) override {
    return inner_->RevokedBefore(type, subject, now);
  }
  absl::StatusOr<absl::Time> RevokedBeforeEither(absl::string_view device_id,
                                                 absl::string_view user_id,
                                                 absl::Time now) override {
    return inner_->RevokedBeforeEither(device_id, user_id, now);
  }
  absl::StatusOr<ChallengePage> List(SubjectType type,
                                     absl::string_view subject, int size,
                                     absl::string_view token,
                                     absl::Time now) override {
    return inner_->List(type, subject, size, token, now);
  }
  absl::StatusOr<absl::optional<IdempotencyEntry>> PutIdempotencyIfAbsent(
      absl::string_view key, const IdempotencyEntry& entry,
      absl::Time now) override {
    return inner_->PutIdempotencyIfAbsent(key, entry, now);
  }
  absl::Status IndexTransaction(absl::string_view transaction_id,
                                absl::string_view id, absl::Time forget_at,
                                absl::Time now) override {
    return inner_->IndexTransaction(transaction_id, id, forget_at, now);
  }
  absl::StatusOr<std::string> FindByTransaction(
      absl::string_view transaction_id, absl::Time now) override {
    return inner_->FindByTransaction(transaction_id, now);
  }
  absl::Status AppendOutcome(absl::string_view id, const OutcomeEvent& event,
                             absl::Time now) override {
    return inner_->AppendOutcome(id, event, now);
  }
  absl::StatusOr<int64_t> CountFailure(absl::string_view device_id,
                                       absl::Duration window,
                                       absl::Time now) override {
    return inner_->CountFailure(device_id, window, now);
  }
  absl::StatusOr<int64_t> FailureCount(absl::string_view device_id,
                                       absl::Time now) override {
    return inner_->FailureCount(device_id, now);
  }
  absl::Status Delete(absl::string_view id) override {
    return inner_->Delete(id);
  }
  absl::Status Ping() override { return inner_->Ping(); }

 private:
  ChallengeStore* const inner_;
};

}  // namespace scepca::testing

#endif  // SCEPCA_TESTS_TESTING_FORWARDING_CHALLENGE_STORE_H_
