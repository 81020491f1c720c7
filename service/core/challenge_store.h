// File: challenge_store.h
// The interface every challenge store implements (in-memory, Redis, ...).
//
// A store keeps ChallengeRecords keyed by challenge id, a per-device and a
// per-user index for List and bulk Revoke, per-device and per-user "revoked
// before" markers, and idempotency entries. Stores are clock-free: every call
// takes the caller's `now`, and a store forgets a record at its forget_at.
//
// Semantics every implementation must keep (tests/core/challenge_store_
// contract.h checks them against each store):
//   - Consume is atomic: of any number of concurrent Consumes of one pending,
//     unexpired record, from any number of processes, exactly one returns
//     kConsumed.
//   - A used or revoked record is kept (as a tombstone) until forget_at.
//   - RevokeSubject first records the marker, then revokes indexed records, and
//     Insert indexes a record before returning, so an Insert racing a
//     RevokeSubject is either revoked by it or sees its marker.
//
// Errors: kUnavailable when the backend cannot be reached or did not answer
// in time (the outcome of a write is then unknown and the caller must not treat
// it as success); kResourceExhausted when the backend refuses writes;
// kInvalidArgument for a bad page token.
#ifndef SCEPCA_SERVICE_CORE_CHALLENGE_STORE_H_
#define SCEPCA_SERVICE_CORE_CHALLENGE_STORE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "service/core/challenge_record.h"

namespace scepca {

class ChallengeStore {
 public:
  virtual ~ChallengeStore() = default;

  // Returns a short description for logs, e.g. "memory" or "redis://h:p/0".
  virtual std::string Describe() const = 0;

  // Stores a new pending `record` and indexes it under its device and (if
  // set) user. Returns kAlreadyExists if a record with that id exists.
  virtual absl::Status Insert(const ChallengeRecord& record,
                              absl::Time now) = 0;

  // Insert(), then reads the newest "revoked before" marker of the record's
  // device and user (as RevokedBeforeEither()) after the record is stored
  // and indexed, so that an Insert racing a RevokeSubject either is revoked
  // by it or sees its marker. A store may do all of it in one round trip;
  // by default it calls the two.
  virtual absl::StatusOr<absl::Time> InsertAndReadRevokedBefore(
      const ChallengeRecord& record, absl::Time now);

  // Returns the record with `id` in whatever state it is, or kNotFound.
  virtual absl::StatusOr<ChallengeRecord> Get(absl::string_view id,
                                              absl::Time now) = 0;

  // Atomically moves a pending, unexpired record to kUsed, recording `now`
  // and `use`. Any other record is left as it is.
  virtual absl::StatusOr<ConsumeResult> Consume(absl::string_view id,
                                                const UseInfo& use,
                                                absl::Time now) = 0;

  // Records the use of a signed token atomically. `token` (state kPending)
  // describes it; no record exists for a token before its first use.
  //   - no record: single-use -> store `token` as kUsed with `use` (kept
  //     until token.forget_at) and return kConsumed; multi-use -> write
  //     nothing, return kConsumed with `token`.
  //   - a revoked record -> kRevoked.
  //   - a used record -> kAlreadyUsed (single-use) or kConsumed (multi-use).
  virtual absl::StatusOr<ConsumeResult> ConsumeToken(
      const ChallengeRecord& token, bool multi_use, const UseInfo& use,
      absl::Time now) = 0;

  // Revokes a signed token: stores `token` as kRevoked if there is no record
  // (true), revokes a pending record (true), leaves a used or revoked one
  // (false).
  virtual absl::StatusOr<bool> RevokeToken(const ChallengeRecord& token,
                                           absl::string_view reason,
                                           absl::Time now) = 0;

  // Moves a pending record (expired or not) to kRevoked. Returns true if this
  // call revoked it, false if it was not pending, kNotFound if unknown.
  virtual absl::StatusOr<bool> Revoke(absl::string_view id,
                                      absl::string_view reason,
                                      absl::Time now) = 0;

  // Records that every challenge of the subject created at or before `now` is
  // revoked (the marker is kept until `marker_forget_at`), then revokes every
  // pending indexed record of the subject. Returns how many it revoked.
  virtual absl::StatusOr<int64_t> RevokeSubject(
      SubjectType type, absl::string_view subject, absl::string_view reason,
      absl::Time now, absl::Time marker_forget_at) = 0;

  // Returns the newest "revoked before" marker of the subject, or
  // absl::InfinitePast() if none.
  virtual absl::StatusOr<absl::Time> RevokedBefore(SubjectType type,
                                                   absl::string_view subject,
                                                   absl::Time now) = 0;

  // The newer of RevokedBefore(kDevice, device_id) and, unless `user_id` is
  // empty, RevokedBefore(kUser, user_id). A store may read both in one round
  // trip; by default this calls RevokedBefore() for each.
  virtual absl::StatusOr<absl::Time> RevokedBeforeEither(
      absl::string_view device_id, absl::string_view user_id, absl::Time now);

  // Lists the subject's known records ordered by forget_at, then id.
  // `page_token` is empty or a token from an earlier page; 1 <= page_size.
  virtual absl::StatusOr<ChallengePage> List(SubjectType type,
                                             absl::string_view subject,
                                             int page_size,
                                             absl::string_view page_token,
                                             absl::Time now) = 0;

  // Stores `entry` under `key` unless the key exists. Returns absl::nullopt
  // if stored, else the existing entry (which is left unchanged).
  virtual absl::StatusOr<absl::optional<IdempotencyEntry>>
  PutIdempotencyIfAbsent(absl::string_view key, const IdempotencyEntry& entry,
                         absl::Time now) = 0;

  // Remembers that `transaction_id` was used with the record `id`, until
  // `forget_at` (a later call for the same transaction id replaces it).
  virtual absl::Status IndexTransaction(absl::string_view transaction_id,
                                        absl::string_view id,
                                        absl::Time forget_at,
                                        absl::Time now) = 0;

  // Returns the id IndexTransaction() recorded for `transaction_id`, or
  // kNotFound.
  virtual absl::StatusOr<std::string> FindByTransaction(
      absl::string_view transaction_id, absl::Time now) = 0;

  // Appends `event` to the record's outcomes (dropping the oldest beyond
  // kMaxOutcomes), in whatever state the record is. Returns kNotFound if
  // there is no record.
  virtual absl::Status AppendOutcome(absl::string_view id,
                                     const OutcomeEvent& event,
                                     absl::Time now) = 0;

  // Counts one failed validation of `device_id` in a fixed window that
  // starts with the first failure and lasts `window`. Returns the count in
  // the current window (including this one).
  virtual absl::StatusOr<int64_t> CountFailure(absl::string_view device_id,
                                               absl::Duration window,
                                               absl::Time now) = 0;

  // Returns the failures counted for `device_id` in its current window (0
  // if none).
  virtual absl::StatusOr<int64_t> FailureCount(absl::string_view device_id,
                                               absl::Time now) = 0;

  // Deletes the record `id` if it exists (used to undo an Insert that lost an
  // idempotency race). Index entries without a record are skipped by List.
  virtual absl::Status Delete(absl::string_view id) = 0;

  // Returns OK if the store can serve requests now.
  virtual absl::Status Ping() = 0;
};

}  // namespace scepca

#endif  // SCEPCA_SERVICE_CORE_CHALLENGE_STORE_H_
