// File: challenge_record.h
// What the authority stores about a challenge: never the challenge itself,
// only its id (a one-way hash of it) and the identity it was issued for.
#ifndef SCEPCA_SERVICE_CORE_CHALLENGE_RECORD_H_
#define SCEPCA_SERVICE_CORE_CHALLENGE_RECORD_H_

#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace scepca {

enum class ChallengeKind { kOneTime = 1, kSigned = 2 };

// The life of a stored challenge. kExpired is never stored: it is derived from
// expires_at when a record is read.
enum class ChallengeState {
  kPending = 1,
  kUsed = 2,
  kRevoked = 3,
  kExpired = 4
};

// The identity a CSR must ask for.
struct IdentityBinding {
  std::string common_name;
  std::vector<std::string> dns_names;
  std::vector<std::string> email_addresses;
  std::vector<std::string> uris;

  bool empty() const {
    return common_name.empty() && dns_names.empty() &&
           email_addresses.empty() && uris.empty();
  }
  friend bool operator==(const IdentityBinding&,
                         const IdentityBinding&) = default;
};

// A SCEP server's report of what became of an enrollment (NotifyOutcome).
struct OutcomeEvent {
  absl::Time at = absl::InfinitePast();
  bool issued = false;  // A certificate was issued (else failed).
  std::string transaction_id;
  std::string certificate_serial;  // Lower-case hex, when issued.
  std::string certificate_sha256;  // Lower-case hex, when issued.
  std::string failure;             // When not issued.
  friend bool operator==(const OutcomeEvent&, const OutcomeEvent&) = default;
};

// Most outcome reports kept per challenge (the oldest are dropped).
inline constexpr size_t kMaxOutcomes = 16;

// One challenge as stored. Copyable value type.
struct ChallengeRecord {
  std::string id;  // 32 lower-case hex chars; see ChallengeIdOf().
  std::string device_id;
  std::string user_id;
  ChallengeKind kind = ChallengeKind::kOneTime;
  IdentityBinding binding;
  std::map<std::string, std::string> labels;
  absl::Time created_at = absl::InfinitePast();
  absl::Time expires_at = absl::InfinitePast();
  // The store forgets the record (including its tombstone) at this time. At
  // least expires_at, so refusals can say "expired" for a while.
  absl::Time forget_at = absl::InfinitePast();

  // Mutable part, changed only by the store.
  ChallengeState state = ChallengeState::kPending;
  absl::Time used_at = absl::InfinitePast();
  std::string used_transaction_id;
  // SHA-256 of the public key of the CSR presented with the use (raw 32
  // bytes; empty if the use had no CSR).
  std::string used_public_key_sha256;
  absl::Time revoked_at = absl::InfinitePast();
  std::string revoke_reason;
  // Outcome reports, oldest first, at most kMaxOutcomes.
  std::vector<OutcomeEvent> outcomes;

  // Returns the state as seen at `now` (kExpired for a pending record past its
  // expiry).
  ChallengeState StateAt(absl::Time now) const {
    if (state == ChallengeState::kPending && now >= expires_at) {
      return ChallengeState::kExpired;
    }
    return state;
  }
};

// What a use records (and what a SCEP retry is compared with).
struct UseInfo {
  std::string transaction_id;
  std::string public_key_sha256;  // Raw 32 bytes, or empty.
  // Consume only a record without an identity binding: a pending, unexpired
  // record with one is left as it is (kBound). A request without the CSR
  // that proves the identity must not use up a bound challenge, and this
  // decides it in the same atomic step as the consume.
  bool unbound_only = false;
};

// The outcome of ChallengeStore::Consume.
struct ConsumeResult {
  enum class Outcome {
    kConsumed,     // This call moved the record from pending to used.
    kNotFound,     // No record with that id.
    kExpired,      // Pending but past expires_at; left untouched.
    kAlreadyUsed,  // Used earlier.
    kRevoked,      // Revoked earlier.
    kBound,        // Pending and bound while UseInfo::unbound_only; untouched.
  };
  Outcome outcome = Outcome::kNotFound;
  // The record after the call (state kUsed when kConsumed). Unset fields when
  // kNotFound.
  ChallengeRecord record;
};

// Whose challenges a bulk operation selects.
enum class SubjectType { kDevice = 1, kUser = 2 };

// A page of ChallengeStore::List.
struct ChallengePage {
  std::vector<ChallengeRecord> records;
  std::string next_page_token;  // Empty at the end.
};

// What the store keeps for an idempotency key: the id of the challenge it
// produced, a fingerprint of the request, and the challenge sealed under a key
// derived from the idempotency key (see idempotency.h).
struct IdempotencyEntry {
  std::string request_fingerprint;
  std::string challenge_id;
  std::string sealed_challenge;
  absl::Time expires_at = absl::InfinitePast();
};

}  // namespace scepca

#endif  // SCEPCA_SERVICE_CORE_CHALLENGE_RECORD_H_
