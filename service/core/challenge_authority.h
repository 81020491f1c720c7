// File: challenge_authority.h
// The authority's logic, independent of transport: issue, validate, revoke,
// inspect and list challenges on top of a ChallengeStore.
#ifndef SCEPCA_SERVICE_CORE_CHALLENGE_AUTHORITY_H_
#define SCEPCA_SERVICE_CORE_CHALLENGE_AUTHORITY_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "service/core/challenge_record.h"
#include "service/core/challenge_store.h"
#include "service/core/clock.h"
#include "service/core/csr.h"
#include "service/core/key_ring.h"
#include "service/core/signed_token.h"

namespace scepca {

struct AuthorityOptions {
  // Lifetime of a challenge issued without a ttl.
  absl::Duration default_ttl = absl::Minutes(60);
  // Longest lifetime a caller may ask for.
  absl::Duration max_ttl = absl::Hours(24 * 30);
  // How long a record is kept after it expires, so that Validate can answer
  // "expired" (and tombstones "already used"/"revoked") instead of
  // "not found".
  absl::Duration expired_retention = absl::Hours(1);
  // Tolerated clock difference when checking a signed token's times.
  absl::Duration clock_leeway = absl::Minutes(2);
  // Limits on the CSRs given to Validate.
  CsrPolicy csr_policy;
  // Most unused (pending, unexpired) one-time challenges a device may have;
  // the next IssueChallenge gets kResourceExhausted. 0: no limit.
  int max_outstanding_per_device = 0;
  // Most refused validations of a device's challenges within
  // failed_validation_window; further Validates of that device's challenges
  // get kResourceExhausted until the window ends. 0: no limit.
  int max_failed_validations_per_device = 0;
  absl::Duration failed_validation_window = absl::Minutes(15);

  // Returns kInvalidArgument if the options are inconsistent.
  absl::Status Check() const;
};

struct IssueRequest {
  std::string device_id;
  std::string user_id;
  ChallengeKind kind = ChallengeKind::kOneTime;
  absl::optional<absl::Duration> ttl;  // Unset: the default.
  IdentityBinding binding;
  std::map<std::string, std::string> labels;
  std::string idempotency_key;
  bool multi_use = false;  // Signed only.
};

struct IssueResult {
  std::string challenge;
  std::string challenge_id;
  ChallengeKind kind = ChallengeKind::kOneTime;
  absl::Time expires_at;
  bool idempotent_replay = false;
};

struct ValidateRequest {
  std::string challenge;
  std::string csr;  // DER or PEM PKCS#10; may be empty.
  std::string transaction_id;
  bool dry_run = false;
};

// Stable reasons, in step with scep.challenge.v1.Reason.
enum class Reason {
  kValid = 1,
  kNotFound = 2,
  kExpired = 3,
  kAlreadyUsed = 4,
  kRevoked = 5,
  kIdentityMismatch = 6,
  kBadSignature = 7,
  kMalformed = 8,
  kCsrInvalid = 9,
  kChallengeMismatch = 10,
  kCsrRequired = 11,
};

// Returns a stable lower_snake_case name ("already_used") for logs.
absl::string_view ReasonName(Reason reason);

struct Verdict {
  bool valid = false;
  Reason reason = Reason::kNotFound;
  std::string message;  // For humans; never contains the challenge.
  // The record, when the challenge was recognised.
  absl::optional<ChallengeRecord> record;
  // True when valid because this repeats the successful Validate (same
  // transaction id and CSR key): an idempotent SCEP retry.
  bool repeat = false;
  // The CSR as read, when one was given and parsed (its challenge cleared).
  absl::optional<ParsedCsr> csr;
};

struct RevokeRequest {
  enum class Selector { kChallengeId, kChallenge, kDevice, kUser };
  Selector selector = Selector::kChallengeId;
  std::string value;
  std::string reason;
};

// A SCEP server's report of what became of an enrollment.
struct OutcomeReport {
  std::string challenge_id;    // Exactly one of challenge_id and
  std::string transaction_id;  // transaction_id (the one it validated with).
  bool issued = false;         // A certificate was issued (else it failed).
  std::string certificate_serial;  // Lower-case hex, when issued.
  std::string certificate_sha256;  // Lower-case hex of the DER, when issued.
  std::string failure;             // Failure text, when not issued.
};

// Thread-safe; the store and clock must outlive it.
class ChallengeAuthority {
 public:
  // Returns kInvalidArgument for bad options. `keys` may be null (no signed
  // challenges); it is retained and may be updated (SIGHUP) while serving.
  static absl::StatusOr<std::unique_ptr<ChallengeAuthority>> Create(
      AuthorityOptions options, ChallengeStore* store, const Clock* clock,
      const KeyRingHolder* keys = nullptr);

  // Issues a challenge. Returns kInvalidArgument naming the field for a bad
  // request, kFailedPrecondition for a kind this server is not set up for,
  // kAborted if the device or user was revoked while issuing, and store
  // errors (kUnavailable, kResourceExhausted) as they are.
  absl::StatusOr<IssueResult> Issue(const IssueRequest& request);

  // Validates (and unless dry_run consumes) a challenge. A refusal is an OK
  // Verdict with valid=false. Returns kInvalidArgument for a malformed
  // request and kUnavailable when the store cannot decide.
  absl::StatusOr<Verdict> Validate(const ValidateRequest& request);

  // Revokes; returns how many pending challenges were revoked. Returns
  // kNotFound for an unknown challenge or challenge id.
  absl::StatusOr<int64_t> Revoke(const RevokeRequest& request);

  // Records the outcome of an enrollment against its challenge. Returns the
  // challenge id; kNotFound if no challenge matches (never validated with
  // that transaction id, or forgotten); kInvalidArgument for a bad report.
  absl::StatusOr<std::string> NotifyOutcome(const OutcomeReport& report);

  // Returns the record of `challenge_id` with its state as of now.
  absl::StatusOr<ChallengeRecord> Get(absl::string_view challenge_id);

  // Lists the challenges of exactly one of device_id and user_id.
  absl::StatusOr<ChallengePage> List(absl::string_view device_id,
                                     absl::string_view user_id, int page_size,
                                     absl::string_view page_token);

  // Returns OK while the store answers.
  absl::Status CheckHealth() { return store_->Ping(); }

  const AuthorityOptions& options() const { return options_; }
  ChallengeStore* store() const { return store_; }

 private:
  ChallengeAuthority(AuthorityOptions options, ChallengeStore* store,
                     const Clock* clock, const KeyRingHolder* keys)
      : options_(options), store_(store), clock_(clock), keys_(keys) {}

  // The clock's time truncated to microseconds, the precision of stores.
  absl::Time Now() const {
    return absl::FromUnixMicros(absl::ToUnixMicros(clock_->Now()));
  }
  absl::Status CheckIssueRequest(const IssueRequest& request) const;
  absl::StatusOr<IssueResult> IssueSigned(const IssueRequest& request,
                                          absl::Time now, absl::Duration ttl);
  // Stores an idempotency entry for `result`; if another call won, returns
  // its answer instead (or kInvalidArgument for a different request).
  absl::StatusOr<absl::optional<IssueResult>> ClaimIdempotency(
      const IssueRequest& request, const IssueResult& result, absl::Time now);
  // `csr` is null when the request had none.
  // Returns kResourceExhausted if `device_id` has reached the failed
  // validation cap.
  absl::Status CheckFailureCap(absl::string_view device_id, absl::Time now);
  absl::Status CheckOutstandingCap(absl::string_view device_id, absl::Time now);
  absl::StatusOr<Verdict> ValidateOneTime(absl::string_view challenge,
                                          bool dry_run, const ParsedCsr* csr,
                                          const UseInfo& use, absl::Time now);
  absl::StatusOr<Verdict> ValidateSigned(absl::string_view challenge,
                                         bool dry_run, const ParsedCsr* csr,
                                         const UseInfo& use, absl::Time now);
  // The verdict for a recognised record that has a consumable state:
  // CSR_REQUIRED or IDENTITY_MISMATCH, or nullopt if the identity is fine.
  absl::optional<Verdict> CheckIdentity(const ChallengeRecord& record,
                                        const ParsedCsr* csr) const;
  // The verdict for a record found used: valid (repeat) for the same
  // transaction and key, else already used.
  Verdict UsedVerdict(const ChallengeRecord& record, const ParsedCsr* csr,
                      const UseInfo& use, absl::Time now) const;
  // Remembers the transaction id of a successful Validate for
  // NotifyOutcome (best effort: a failure is logged, not returned).
  void IndexTransaction(const UseInfo& use, const ChallengeRecord& record,
                        absl::Time now);
  // The store record that stands for a signed token once used or revoked.
  ChallengeRecord TokenRecord(const SignedToken& token) const;
  // Returns the newest revocation marker of the device and the user.
  absl::StatusOr<absl::Time> RevokedBefore(absl::string_view device_id,
                                           absl::string_view user_id,
                                           absl::Time now);
  // Revokes `record` and returns kAborted if a revocation of its device or
  // user (the newest at `revoked_before`, read after the record was stored)
  // happened at or after its creation.
  absl::Status RevokeIfRevokedWhileIssuing(const ChallengeRecord& record,
                                           absl::Time revoked_before,
                                           absl::Time now);

  const AuthorityOptions options_;
  ChallengeStore* const store_;
  const Clock* const clock_;
  const KeyRingHolder* const keys_;
};

// Returns the state name ("pending", "used", ...).
absl::string_view StateName(ChallengeState state);

}  // namespace scepca

#endif  // SCEPCA_SERVICE_CORE_CHALLENGE_AUTHORITY_H_
