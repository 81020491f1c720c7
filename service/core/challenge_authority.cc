#include "service/core/challenge_authority.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "service/core/hashing.h"
#include "service/core/idempotency.h"
#include "service/core/identity_binding.h"
#include "service/core/log.h"
#include "service/core/one_time_challenge.h"
#include "service/core/random.h"
#include "service/core/status_macros.h"

namespace scepca {
namespace {

constexpr size_t kMaxIdLength = 128;
constexpr size_t kMaxCommonNameLength = 64;
constexpr size_t kMaxSanLength = 255;
constexpr size_t kMaxSans = 32;
constexpr size_t kMaxLabels = 32;
constexpr size_t kMaxLabelKeyLength = 63;
constexpr size_t kMaxLabelValueLength = 256;
constexpr size_t kMaxReasonLength = 256;
constexpr size_t kMaxTransactionIdLength = 256;
constexpr size_t kMaxFailureLength = 1024;
constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;
// A fresh 128-bit challenge colliding with a live one is astronomically
// unlikely; a few attempts make an id collision a non-event.
constexpr int kIssueAttempts = 3;

absl::Status CheckText(absl::string_view value, absl::string_view field,
                       size_t max_length, bool required) {
  if (value.empty()) {
    if (required) {
      return absl::InvalidArgumentError(absl::StrCat(field, " is required"));
    }
    return absl::OkStatus();
  }
  if (value.size() > max_length) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is ", value.size(),
                                                   " bytes; at most ",
                                                   max_length, " are allowed"));
  }
  for (unsigned char c : value) {
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, " contains a control character"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckList(const std::vector<std::string>& values,
                       absl::string_view field) {
  for (size_t i = 0; i < values.size(); ++i) {
    SCEPCA_RETURN_IF_ERROR(CheckText(values[i],
                                     absl::StrCat(field, "[", i, "]"),
                                     kMaxSanLength, /*required=*/true));
  }
  return absl::OkStatus();
}

// A canonical, unambiguous digest of everything that defines an issue
// request except the idempotency key itself.
std::string RequestFingerprint(const IssueRequest& request) {
  std::string canonical;
  auto add = [&canonical](absl::string_view part) {
    absl::StrAppend(&canonical, part.size(), ":", part, ";");
  };
  add(request.device_id);
  add(request.user_id);
  add(absl::StrCat(static_cast<int>(request.kind)));
  add(request.ttl.has_value()
          ? absl::StrCat(absl::ToInt64Milliseconds(*request.ttl))
          : "default");
  add(request.binding.common_name);
  for (const auto* list :
       {&request.binding.dns_names, &request.binding.email_addresses,
        &request.binding.uris}) {
    add(absl::StrCat(list->size()));
    for (const std::string& v : *list) add(v);
  }
  add(absl::StrCat(request.labels.size()));
  for (const auto& [k, v] : request.labels) {
    add(k);
    add(v);
  }
  return Sha256(canonical);
}

Verdict Refuse(Reason reason, std::string message,
               absl::optional<ChallengeRecord> record) {
  Verdict v;
  v.valid = false;
  v.reason = reason;
  v.message = std::move(message);
  v.record = std::move(record);
  return v;
}

std::string TimeText(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

// Maps a record seen at `now` to a verdict, without changing it.
Verdict VerdictForState(const ChallengeRecord& record, absl::Time now) {
  switch (record.StateAt(now)) {
    case ChallengeState::kPending: {
      Verdict v;
      v.valid = true;
      v.reason = Reason::kValid;
      v.message = "challenge is valid";
      v.record = record;
      return v;
    }
    case ChallengeState::kExpired:
      return Refuse(
          Reason::kExpired,
          absl::StrCat("challenge expired at ", TimeText(record.expires_at)),
          record);
    case ChallengeState::kUsed:
      return Refuse(Reason::kAlreadyUsed,
                    absl::StrCat("challenge was already used at ",
                                 TimeText(record.used_at)),
                    record);
    case ChallengeState::kRevoked:
      return Refuse(
          Reason::kRevoked,
          absl::StrCat("challenge was revoked at ", TimeText(record.revoked_at),
                       record.revoke_reason.empty()
                           ? ""
                           : absl::StrCat(": ", record.revoke_reason)),
          record);
  }
  return Refuse(Reason::kNotFound, "challenge is in an unknown state", record);
}

}  // namespace

absl::string_view ReasonName(Reason reason) {
  switch (reason) {
    case Reason::kValid:
      return "valid";
    case Reason::kNotFound:
      return "not_found";
    case Reason::kExpired:
      return "expired";
    case Reason::kAlreadyUsed:
      return "already_used";
    case Reason::kRevoked:
      return "revoked";
    case Reason::kIdentityMismatch:
      return "identity_mismatch";
    case Reason::kBadSignature:
      return "bad_signature";
    case Reason::kMalformed:
      return "malformed";
    case Reason::kCsrInvalid:
      return "csr_invalid";
    case Reason::kChallengeMismatch:
      return "challenge_mismatch";
    case Reason::kCsrRequired:
      return "csr_required";
  }
  return "unknown";
}

absl::string_view StateName(ChallengeState state) {
  switch (state) {
    case ChallengeState::kPending:
      return "pending";
    case ChallengeState::kUsed:
      return "used";
    case ChallengeState::kRevoked:
      return "revoked";
    case ChallengeState::kExpired:
      return "expired";
  }
  return "unknown";
}

absl::Status AuthorityOptions::Check() const {
  if (max_ttl < absl::Seconds(1)) {
    return absl::InvalidArgumentError("max_ttl must be at least 1s");
  }
  if (default_ttl < absl::Seconds(1) || default_ttl > max_ttl) {
    return absl::InvalidArgumentError(
        "default_ttl must be between 1s and max_ttl");
  }
  if (clock_leeway < absl::ZeroDuration() || clock_leeway > absl::Hours(1)) {
    return absl::InvalidArgumentError("clock_leeway must be between 0 and 1h");
  }
  if (max_outstanding_per_device < 0 || max_failed_validations_per_device < 0) {
    return absl::InvalidArgumentError("limits must not be negative");
  }
  if (failed_validation_window < absl::Seconds(1)) {
    return absl::InvalidArgumentError(
        "failed_validation_window must be at least 1s");
  }
  if (expired_retention < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("expired_retention must not be negative");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ChallengeAuthority>> ChallengeAuthority::Create(
    AuthorityOptions options, ChallengeStore* store, const Clock* clock,
    const KeyRingHolder* keys) {
  SCEPCA_RETURN_IF_ERROR(options.Check());
  if (store == nullptr || clock == nullptr) {
    return absl::InvalidArgumentError("store and clock are required");
  }
  return std::unique_ptr<ChallengeAuthority>(
      new ChallengeAuthority(options, store, clock, keys));
}

absl::Status ChallengeAuthority::CheckIssueRequest(
    const IssueRequest& request) const {
  SCEPCA_RETURN_IF_ERROR(
      CheckText(request.device_id, "device_id", kMaxIdLength, true));
  SCEPCA_RETURN_IF_ERROR(
      CheckText(request.user_id, "user_id", kMaxIdLength, false));
  if (request.ttl.has_value() &&
      (*request.ttl < absl::Seconds(1) || *request.ttl > options_.max_ttl)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ttl is ", absl::FormatDuration(*request.ttl),
                     "; it must be between 1s and ",
                     absl::FormatDuration(options_.max_ttl)));
  }
  SCEPCA_RETURN_IF_ERROR(CheckText(request.binding.common_name,
                                   "binding.common_name", kMaxCommonNameLength,
                                   false));
  SCEPCA_RETURN_IF_ERROR(
      CheckList(request.binding.dns_names, "binding.dns_names"));
  SCEPCA_RETURN_IF_ERROR(
      CheckList(request.binding.email_addresses, "binding.email_addresses"));
  SCEPCA_RETURN_IF_ERROR(CheckList(request.binding.uris, "binding.uris"));
  const size_t sans = request.binding.dns_names.size() +
                      request.binding.email_addresses.size() +
                      request.binding.uris.size();
  if (sans > kMaxSans) {
    return absl::InvalidArgumentError(absl::StrCat(
        "binding has ", sans, " SANs; at most ", kMaxSans, " are allowed"));
  }
  if (request.labels.size() > kMaxLabels) {
    return absl::InvalidArgumentError(
        absl::StrCat("labels has ", request.labels.size(), " entries; at most ",
                     kMaxLabels, " are allowed"));
  }
  for (const auto& [key, value] : request.labels) {
    SCEPCA_RETURN_IF_ERROR(
        CheckText(key, "labels key", kMaxLabelKeyLength, true));
    SCEPCA_RETURN_IF_ERROR(CheckText(value, absl::StrCat("labels[", key, "]"),
                                     kMaxLabelValueLength, false));
  }
  SCEPCA_RETURN_IF_ERROR(CheckText(request.idempotency_key, "idempotency_key",
                                   kMaxIdLength, false));
  if (request.kind == ChallengeKind::kSigned) {
    if (keys_ == nullptr) {
      return absl::FailedPreconditionError(
          "kind SIGNED needs a key ring; this server has none (--hmac-keys)");
    }
  } else if (request.multi_use) {
    return absl::InvalidArgumentError(
        "multi_use is only for signed challenges (kind SIGNED)");
  }
  return absl::OkStatus();
}

absl::Status ChallengeAuthority::RevokeIfRevokedWhileIssuing(
    const ChallengeRecord& record, absl::Time revoked_before, absl::Time now) {
  if (revoked_before < record.created_at) return absl::OkStatus();
  // The revocation may have missed this record (it raced the index write):
  // revoke it here so no pending record predates its subject's revocation.
  absl::StatusOr<bool> revoked =
      store_->Revoke(record.id, "device or user revoked while issuing", now);
  if (!revoked.ok() && !absl::IsNotFound(revoked.status())) {
    return revoked.status();
  }
  return absl::AbortedError(
      "the device or user was revoked while this challenge was being issued; "
      "retry to get a new challenge");
}

absl::StatusOr<absl::Time> ChallengeAuthority::RevokedBefore(
    absl::string_view device_id, absl::string_view user_id, absl::Time now) {
  return store_->RevokedBeforeEither(device_id, user_id, now);
}

absl::StatusOr<absl::optional<IssueResult>>
ChallengeAuthority::ClaimIdempotency(const IssueRequest& request,
                                     const IssueResult& result,
                                     absl::Time now) {
  IdempotencyEntry entry;
  entry.request_fingerprint = RequestFingerprint(request);
  entry.challenge_id = result.challenge_id;
  SCEPCA_ASSIGN_OR_RETURN(
      entry.sealed_challenge,
      SealChallenge(request.device_id, request.idempotency_key,
                    result.challenge));
  entry.expires_at = result.expires_at;
  SCEPCA_ASSIGN_OR_RETURN(
      absl::optional<IdempotencyEntry> existing,
      store_->PutIdempotencyIfAbsent(
          IdempotencyStoreKey(request.device_id, request.idempotency_key),
          entry, now));
  if (!existing.has_value()) return absl::optional<IssueResult>();
  if (!ConstantTimeEquals(existing->request_fingerprint,
                          entry.request_fingerprint)) {
    return absl::InvalidArgumentError(
        "idempotency_key was already used with a different request");
  }
  absl::StatusOr<std::string> opened = OpenChallenge(
      request.device_id, request.idempotency_key, existing->sealed_challenge);
  if (!opened.ok()) {
    return absl::InternalError(
        "stored idempotent answer does not authenticate");
  }
  IssueResult replay;
  replay.challenge = *std::move(opened);
  replay.challenge_id = existing->challenge_id;
  replay.kind = request.kind;
  replay.expires_at = existing->expires_at;
  replay.idempotent_replay = true;
  return absl::optional<IssueResult>(std::move(replay));
}

absl::StatusOr<IssueResult> ChallengeAuthority::IssueSigned(
    const IssueRequest& request, absl::Time now, absl::Duration ttl) {
  std::shared_ptr<const KeyRing> ring = keys_->Get();
  const KeyRing::Key* key = ring->primary();
  if (key == nullptr) {
    return absl::FailedPreconditionError("the key ring has no primary key");
  }
  SignedToken token;
  token.key_id = key->id;
  SCEPCA_ASSIGN_OR_RETURN(token.token_id, SecureRandomBytes(kTokenIdBytes));
  token.issued_at = absl::FromUnixSeconds(absl::ToUnixSeconds(now));
  token.expires_at = absl::FromUnixSeconds(absl::ToUnixSeconds(now + ttl));
  token.multi_use = request.multi_use;
  token.device_id = request.device_id;
  token.user_id = request.user_id;
  token.binding = request.binding;
  token.labels = request.labels;
  IssueResult result;
  SCEPCA_ASSIGN_OR_RETURN(result.challenge, EncodeSignedToken(token, *key));
  result.challenge_id = SignedChallengeId(token.token_id);
  result.kind = ChallengeKind::kSigned;
  result.expires_at = token.expires_at;
  if (!request.idempotency_key.empty()) {
    SCEPCA_ASSIGN_OR_RETURN(absl::optional<IssueResult> replay,
                            ClaimIdempotency(request, result, now));
    if (replay.has_value()) return *std::move(replay);
  }
  return result;
}

absl::Status ChallengeAuthority::CheckOutstandingCap(
    absl::string_view device_id, absl::Time now) {
  const int cap = options_.max_outstanding_per_device;
  if (cap <= 0) return absl::OkStatus();
  int outstanding = 0;
  std::string token;
  do {
    SCEPCA_ASSIGN_OR_RETURN(ChallengePage page,
                            store_->List(SubjectType::kDevice, device_id,
                                         kMaxPageSize, token, now));
    for (const ChallengeRecord& r : page.records) {
      if (r.StateAt(now) == ChallengeState::kPending) ++outstanding;
    }
    token = page.next_page_token;
  } while (!token.empty() && outstanding < cap);
  if (outstanding < cap) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "device_id ", device_id, " has ", outstanding,
      " unused challenges, the most allowed (--max-outstanding-per-device); "
      "use, revoke or let one expire first"));
}

absl::Status ChallengeAuthority::CheckFailureCap(absl::string_view device_id,
                                                 absl::Time now) {
  const int cap = options_.max_failed_validations_per_device;
  if (cap <= 0 || device_id.empty()) return absl::OkStatus();
  SCEPCA_ASSIGN_OR_RETURN(int64_t failures,
                          store_->FailureCount(device_id, now));
  if (failures < cap) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrCat("device_id ", device_id, " had ", failures,
                   " refused validations within ",
                   absl::FormatDuration(options_.failed_validation_window),
                   " (--max-failed-validations-per-device); try again later"));
}

absl::StatusOr<IssueResult> ChallengeAuthority::Issue(
    const IssueRequest& request) {
  SCEPCA_RETURN_IF_ERROR(CheckIssueRequest(request));
  const absl::Time now = Now();
  const absl::Duration ttl = request.ttl.value_or(options_.default_ttl);
  if (request.kind == ChallengeKind::kSigned) {
    return IssueSigned(request, now, ttl);
  }
  SCEPCA_RETURN_IF_ERROR(CheckOutstandingCap(request.device_id, now));

  ChallengeRecord record;
  record.device_id = request.device_id;
  record.user_id = request.user_id;
  record.kind = ChallengeKind::kOneTime;
  record.binding = request.binding;
  record.labels = request.labels;
  record.created_at = now;
  record.expires_at = now + ttl;
  record.forget_at = record.expires_at + options_.expired_retention;

  std::string challenge;
  absl::StatusOr<absl::Time> inserted = absl::UnknownError("not attempted");
  for (int attempt = 0; attempt < kIssueAttempts; ++attempt) {
    SCEPCA_ASSIGN_OR_RETURN(challenge, GenerateOneTimeChallenge());
    record.id = ChallengeIdOf(challenge);
    inserted = store_->InsertAndReadRevokedBefore(record, now);
    if (!absl::IsAlreadyExists(inserted.status())) break;
  }
  SCEPCA_RETURN_IF_ERROR(inserted.status());

  IssueResult result;
  result.challenge = std::move(challenge);
  result.challenge_id = record.id;
  result.kind = ChallengeKind::kOneTime;
  result.expires_at = record.expires_at;
  if (!request.idempotency_key.empty()) {
    absl::StatusOr<absl::optional<IssueResult>> replay =
        ClaimIdempotency(request, result, now);
    if (!replay.ok() || replay->has_value()) {
      // Another call with this key won (or the claim failed): drop ours.
      SCEPCA_RETURN_IF_ERROR(store_->Delete(record.id));
      if (!replay.ok()) return replay.status();
      return **std::move(replay);
    }
  }
  SCEPCA_RETURN_IF_ERROR(RevokeIfRevokedWhileIssuing(record, *inserted, now));
  return result;
}

absl::StatusOr<Verdict> ChallengeAuthority::Validate(
    const ValidateRequest& request) {
  SCEPCA_RETURN_IF_ERROR(CheckText(request.transaction_id, "transaction_id",
                                   kMaxTransactionIdLength, false));
  absl::optional<ParsedCsr> csr;
  if (!request.csr.empty()) {
    absl::StatusOr<ParsedCsr> parsed =
        ParseCsr(request.csr, options_.csr_policy);
    if (!parsed.ok()) {
      // Refused before anything is looked up or consumed.
      return Refuse(Reason::kCsrInvalid, std::string(parsed.status().message()),
                    absl::nullopt);
    }
    csr = *std::move(parsed);
  }
  std::string challenge = request.challenge;
  if (challenge.empty()) {
    if (!csr.has_value()) {
      return absl::InvalidArgumentError(
          "challenge is required (or a csr with a challengePassword)");
    }
    if (!csr->has_challenge) {
      return Refuse(Reason::kCsrInvalid,
                    "the CSR has no challengePassword and no challenge was "
                    "given",
                    absl::nullopt);
    }
    challenge = csr->challenge;
    if (absl::Status st =
            CheckPresentedChallenge(challenge, "the CSR's challengePassword");
        !st.ok()) {
      return Refuse(Reason::kCsrInvalid, std::string(st.message()),
                    absl::nullopt);
    }
  } else {
    SCEPCA_RETURN_IF_ERROR(CheckPresentedChallenge(challenge, "challenge"));
    if (csr.has_value() && csr->has_challenge &&
        !ConstantTimeEquals(csr->challenge, challenge)) {
      return Refuse(Reason::kChallengeMismatch,
                    "challenge differs from the CSR's challengePassword (the "
                    "CSR's is what the device sent)",
                    absl::nullopt);
    }
  }
  UseInfo use;
  use.transaction_id = request.transaction_id;
  if (csr.has_value()) use.public_key_sha256 = csr->public_key_sha256;
  // Without a CSR, a bound one-time challenge is refused (kCsrRequired) and
  // not used up; the store decides that in the consume itself.
  use.unbound_only = !csr.has_value();
  const ParsedCsr* csr_ptr = csr.has_value() ? &*csr : nullptr;
  const absl::Time now = Now();
  absl::StatusOr<Verdict> verdict;
  if (IsOneTimeChallengeFormat(challenge)) {
    verdict = ValidateOneTime(challenge, request.dry_run, csr_ptr, use, now);
  } else if (LooksLikeSignedToken(challenge)) {
    verdict = ValidateSigned(challenge, request.dry_run, csr_ptr, use, now);
  } else {
    verdict = Refuse(Reason::kMalformed,
                     "not a challenge issued by this authority (a one-time "
                     "challenge is 26 characters A-Z2-7; a signed one is "
                     "base64 of a version 1 token)",
                     absl::nullopt);
  }
  if (verdict.ok() && !verdict->valid && verdict->record.has_value() &&
      options_.max_failed_validations_per_device > 0) {
    absl::StatusOr<int64_t> counted = store_->CountFailure(
        verdict->record->device_id, options_.failed_validation_window, now);
    if (!counted.ok()) {
      LogWarning(absl::StrCat("cannot count a failed validation: ",
                              counted.status().message()));
    }
  }
  if (verdict.ok() && csr.has_value()) {
    csr->challenge.clear();
    verdict->csr = *std::move(csr);
  }
  return verdict;
}

absl::optional<Verdict> ChallengeAuthority::CheckIdentity(
    const ChallengeRecord& record, const ParsedCsr* csr) const {
  if (record.binding.empty()) return absl::nullopt;
  if (csr == nullptr) {
    return Refuse(Reason::kCsrRequired,
                  "this challenge is bound to an identity; validate it with "
                  "the CSR",
                  record);
  }
  absl::Status match = CheckBinding(record.binding, *csr);
  if (match.ok()) return absl::nullopt;
  return Refuse(Reason::kIdentityMismatch,
                absl::StrCat("identity mismatch: ", match.message()), record);
}

Verdict ChallengeAuthority::UsedVerdict(const ChallengeRecord& record,
                                        const ParsedCsr* csr,
                                        const UseInfo& use,
                                        absl::Time now) const {
  const bool same_use =
      record.state == ChallengeState::kUsed && !use.transaction_id.empty() &&
      !use.public_key_sha256.empty() &&
      record.used_transaction_id == use.transaction_id &&
      ConstantTimeEquals(record.used_public_key_sha256, use.public_key_sha256);
  const absl::Time end = record.kind == ChallengeKind::kSigned
                             ? record.expires_at + options_.clock_leeway
                             : record.expires_at;
  if (same_use && now < end) {
    if (absl::optional<Verdict> refused = CheckIdentity(record, csr)) {
      return *std::move(refused);
    }
    Verdict v;
    v.valid = true;
    v.reason = Reason::kValid;
    v.repeat = true;
    v.message =
        "challenge is valid: a repeat of the successful request (same "
        "transaction id and key)";
    v.record = record;
    return v;
  }
  return VerdictForState(record, now);
}

void ChallengeAuthority::IndexTransaction(const UseInfo& use,
                                          const ChallengeRecord& record,
                                          absl::Time now) {
  if (use.transaction_id.empty()) return;
  absl::Status indexed = store_->IndexTransaction(use.transaction_id, record.id,
                                                  record.forget_at, now);
  if (!indexed.ok()) {
    LogWarning(absl::StrCat("challenge ", record.id,
                            ": cannot index its transaction id for outcome "
                            "reports: ",
                            indexed.message()));
  }
}

absl::StatusOr<std::string> ChallengeAuthority::NotifyOutcome(
    const OutcomeReport& report) {
  if (report.challenge_id.empty() == report.transaction_id.empty()) {
    return absl::InvalidArgumentError(
        "exactly one of challenge_id and transaction_id is required");
  }
  SCEPCA_RETURN_IF_ERROR(CheckText(report.transaction_id, "transaction_id",
                                   kMaxTransactionIdLength, false));
  for (auto [value, field, max] :
       {std::make_tuple(&report.certificate_serial, "certificate_serial", 128),
        std::make_tuple(&report.certificate_sha256, "certificate_sha256",
                        64)}) {
    if (value->size() > static_cast<size_t>(max)) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, " is longer than ", max, " hex characters"));
    }
    for (char c : *value) {
      if (!absl::ascii_isxdigit(c)) {
        return absl::InvalidArgumentError(absl::StrCat(field, " must be hex"));
      }
    }
  }
  if (report.issued && !report.failure.empty()) {
    return absl::InvalidArgumentError(
        "failure is only for outcomes that are not issued");
  }
  const absl::Time now = Now();
  std::string id = report.challenge_id;
  if (id.empty()) {
    absl::StatusOr<std::string> found =
        store_->FindByTransaction(report.transaction_id, now);
    if (absl::IsNotFound(found.status())) {
      return absl::NotFoundError(
          "no challenge was validated with that transaction_id");
    }
    SCEPCA_RETURN_IF_ERROR(found.status());
    id = *std::move(found);
  } else if (!IsChallengeIdFormat(id) && !IsSignedChallengeId(id)) {
    return absl::InvalidArgumentError(
        "challenge_id must be 32 lower-case hex characters, or 's' and 32 "
        "for a signed challenge");
  }
  OutcomeEvent event;
  event.at = now;
  event.issued = report.issued;
  event.transaction_id = report.transaction_id;
  event.certificate_serial = absl::AsciiStrToLower(report.certificate_serial);
  event.certificate_sha256 = absl::AsciiStrToLower(report.certificate_sha256);
  // Failure texts come from CAs: keep them, but printable and bounded.
  event.failure = report.failure.substr(0, kMaxFailureLength);
  for (char& c : event.failure) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  absl::Status appended = store_->AppendOutcome(id, event, now);
  if (absl::IsNotFound(appended)) {
    return absl::NotFoundError("no such challenge");
  }
  SCEPCA_RETURN_IF_ERROR(appended);
  return id;
}

absl::StatusOr<Verdict> ChallengeAuthority::ValidateOneTime(
    absl::string_view challenge, bool dry_run, const ParsedCsr* csr,
    const UseInfo& use, absl::Time now) {
  const std::string id = ChallengeIdOf(challenge);
  if (dry_run || options_.max_failed_validations_per_device > 0) {
    // Look before consuming: a dry run only looks, and a device over its
    // failure cap must not use up a challenge.
    absl::StatusOr<ChallengeRecord> record = store_->Get(id, now);
    if (absl::IsNotFound(record.status())) {
      return Refuse(Reason::kNotFound, "challenge is not known", absl::nullopt);
    }
    SCEPCA_RETURN_IF_ERROR(record.status());
    SCEPCA_RETURN_IF_ERROR(CheckFailureCap(record->device_id, now));
    if (record->StateAt(now) == ChallengeState::kPending) {
      if (absl::optional<Verdict> refused = CheckIdentity(*record, csr)) {
        return *std::move(refused);
      }
    }
    if (dry_run) {
      if (record->state == ChallengeState::kUsed) {
        return UsedVerdict(*record, csr, use, now);
      }
      return VerdictForState(*record, now);
    }
  }
  SCEPCA_ASSIGN_OR_RETURN(ConsumeResult consumed,
                          store_->Consume(id, use, now));
  switch (consumed.outcome) {
    case ConsumeResult::Outcome::kConsumed: {
      // A CSR that does not match burns the challenge: whoever holds it is
      // not enrolling the identity it was issued for.
      if (absl::optional<Verdict> refused =
              CheckIdentity(consumed.record, csr)) {
        refused->message += "; the challenge is now used up";
        return *std::move(refused);
      }
      IndexTransaction(use, consumed.record, now);
      Verdict v;
      v.valid = true;
      v.reason = Reason::kValid;
      v.message = "challenge is valid and has been consumed";
      v.record = std::move(consumed.record);
      return v;
    }
    case ConsumeResult::Outcome::kBound:
      // Only without a CSR (use.unbound_only): CheckIdentity refuses it.
      if (absl::optional<Verdict> refused =
              CheckIdentity(consumed.record, csr)) {
        return *std::move(refused);
      }
      return absl::InternalError("the store refused an unbound challenge");
    case ConsumeResult::Outcome::kNotFound:
      return Refuse(Reason::kNotFound, "challenge is not known", absl::nullopt);
    case ConsumeResult::Outcome::kAlreadyUsed:
      return UsedVerdict(consumed.record, csr, use, now);
    case ConsumeResult::Outcome::kExpired:
    case ConsumeResult::Outcome::kRevoked:
      return VerdictForState(consumed.record, now);
  }
  return absl::InternalError("unexpected consume outcome");
}

ChallengeRecord ChallengeAuthority::TokenRecord(
    const SignedToken& token) const {
  ChallengeRecord record;
  record.id = SignedChallengeId(token.token_id);
  record.kind = ChallengeKind::kSigned;
  record.device_id = token.device_id;
  record.user_id = token.user_id;
  record.binding = token.binding;
  record.labels = token.labels;
  record.created_at = token.issued_at;
  record.expires_at = token.expires_at;
  // A replay must be remembered for as long as the token could be accepted.
  record.forget_at =
      token.expires_at + options_.clock_leeway + options_.expired_retention;
  return record;
}

absl::StatusOr<Verdict> ChallengeAuthority::ValidateSigned(
    absl::string_view challenge, bool dry_run, const ParsedCsr* csr,
    const UseInfo& use, absl::Time now) {
  if (keys_ == nullptr) {
    return Refuse(Reason::kBadSignature,
                  "signed challenges are not enabled on this server "
                  "(--hmac-keys)",
                  absl::nullopt);
  }
  std::shared_ptr<const KeyRing> ring = keys_->Get();
  absl::StatusOr<SignedToken> token = DecodeSignedToken(challenge, *ring);
  if (absl::IsUnauthenticated(token.status())) {
    return Refuse(Reason::kBadSignature, std::string(token.status().message()),
                  absl::nullopt);
  }
  if (!token.ok()) {
    return Refuse(Reason::kMalformed, std::string(token.status().message()),
                  absl::nullopt);
  }
  ChallengeRecord record = TokenRecord(*token);
  if (now > token->expires_at + options_.clock_leeway) {
    return Refuse(Reason::kExpired,
                  absl::StrCat("signed challenge expired at ",
                               TimeText(token->expires_at)),
                  record);
  }
  if (token->issued_at > now + options_.clock_leeway) {
    return Refuse(
        Reason::kMalformed,
        absl::StrCat("signed challenge is issued in the future (",
                     TimeText(token->issued_at), "); check the clocks"),
        record);
  }
  SCEPCA_RETURN_IF_ERROR(CheckFailureCap(token->device_id, now));
  SCEPCA_ASSIGN_OR_RETURN(absl::Time revoked_before,
                          RevokedBefore(token->device_id, token->user_id, now));
  if (revoked_before >= token->issued_at) {
    record.state = ChallengeState::kRevoked;
    record.revoked_at = revoked_before;
    return Refuse(Reason::kRevoked,
                  absl::StrCat("the device or user was revoked at ",
                               TimeText(revoked_before)),
                  record);
  }
  absl::optional<Verdict> identity = CheckIdentity(record, csr);
  if (identity.has_value() && identity->reason == Reason::kCsrRequired) {
    return *std::move(identity);
  }
  if (dry_run) {
    if (identity.has_value()) return *std::move(identity);
    absl::StatusOr<ChallengeRecord> stored = store_->Get(record.id, now);
    if (absl::IsNotFound(stored.status())) {
      Verdict v;
      v.valid = true;
      v.reason = Reason::kValid;
      v.message = "signed challenge is valid";
      v.record = std::move(record);
      return v;
    }
    SCEPCA_RETURN_IF_ERROR(stored.status());
    if (stored->state == ChallengeState::kUsed) {
      if (!token->multi_use) return UsedVerdict(*stored, csr, use, now);
      stored->state = ChallengeState::kPending;
    }
    return VerdictForState(*stored, now);
  }
  SCEPCA_ASSIGN_OR_RETURN(
      ConsumeResult consumed,
      store_->ConsumeToken(record, token->multi_use, use, now));
  switch (consumed.outcome) {
    case ConsumeResult::Outcome::kConsumed: {
      if (identity.has_value()) {
        // As for one-time challenges, a mismatch uses the token up.
        if (!token->multi_use)
          identity->message += "; the token is now used up";
        return *std::move(identity);
      }
      IndexTransaction(use, consumed.record, now);
      Verdict v;
      v.valid = true;
      v.reason = Reason::kValid;
      v.message = token->multi_use ? "signed challenge is valid (multi-use)"
                                   : "signed challenge is valid and has "
                                     "been consumed";
      v.record = std::move(consumed.record);
      return v;
    }
    case ConsumeResult::Outcome::kAlreadyUsed:
      return UsedVerdict(consumed.record, csr, use, now);
    case ConsumeResult::Outcome::kRevoked:
    case ConsumeResult::Outcome::kExpired:
      return VerdictForState(consumed.record, now);
    case ConsumeResult::Outcome::kNotFound:
    case ConsumeResult::Outcome::kBound:
      break;
  }
  return absl::InternalError("unexpected token consume outcome");
}

absl::StatusOr<int64_t> ChallengeAuthority::Revoke(
    const RevokeRequest& request) {
  SCEPCA_RETURN_IF_ERROR(
      CheckText(request.reason, "reason", kMaxReasonLength, false));
  const absl::Time now = Now();
  // Everything issued up to now expires by now + max_ttl at the latest.
  const absl::Time horizon = now + options_.max_ttl + options_.clock_leeway;
  std::string id;
  switch (request.selector) {
    case RevokeRequest::Selector::kChallengeId:
      if (IsSignedChallengeId(request.value)) {
        // A signed token is in the store only once used or revoked: record
        // the revocation for as long as any token could still be accepted.
        ChallengeRecord placeholder;
        placeholder.id = request.value;
        placeholder.kind = ChallengeKind::kSigned;
        placeholder.created_at = now;
        placeholder.expires_at = horizon;
        placeholder.forget_at = horizon;
        SCEPCA_ASSIGN_OR_RETURN(
            bool revoked,
            store_->RevokeToken(placeholder, request.reason, now));
        return revoked ? 1 : 0;
      }
      if (!IsChallengeIdFormat(request.value)) {
        return absl::InvalidArgumentError(
            "challenge_id must be 32 lower-case hex characters, or 's' and "
            "32 for a signed challenge");
      }
      id = request.value;
      break;
    case RevokeRequest::Selector::kChallenge:
      SCEPCA_RETURN_IF_ERROR(
          CheckPresentedChallenge(request.value, "challenge"));
      if (LooksLikeSignedToken(request.value) && keys_ != nullptr) {
        absl::StatusOr<SignedToken> token =
            DecodeSignedToken(request.value, *keys_->Get());
        if (!token.ok()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "challenge is not a signed challenge of this authority: ",
              token.status().message()));
        }
        SCEPCA_ASSIGN_OR_RETURN(
            bool revoked,
            store_->RevokeToken(TokenRecord(*token), request.reason, now));
        return revoked ? 1 : 0;
      }
      id = ChallengeIdOf(request.value);
      break;
    case RevokeRequest::Selector::kDevice:
    case RevokeRequest::Selector::kUser: {
      const bool device = request.selector == RevokeRequest::Selector::kDevice;
      SCEPCA_RETURN_IF_ERROR(CheckText(
          request.value, device ? "device_id" : "user_id", kMaxIdLength, true));
      return store_->RevokeSubject(
          device ? SubjectType::kDevice : SubjectType::kUser, request.value,
          request.reason, now, horizon);
    }
  }
  absl::StatusOr<bool> revoked = store_->Revoke(id, request.reason, now);
  if (absl::IsNotFound(revoked.status())) {
    return absl::NotFoundError("no such challenge");
  }
  SCEPCA_RETURN_IF_ERROR(revoked.status());
  return *revoked ? 1 : 0;
}

absl::StatusOr<ChallengeRecord> ChallengeAuthority::Get(
    absl::string_view challenge_id) {
  const bool is_signed = IsSignedChallengeId(challenge_id);
  if (!is_signed && !IsChallengeIdFormat(challenge_id)) {
    return absl::InvalidArgumentError(
        "challenge_id must be 32 lower-case hex characters, or 's' and 32 "
        "for a signed challenge");
  }
  const absl::Time now = Now();
  absl::StatusOr<ChallengeRecord> record = store_->Get(challenge_id, now);
  if (absl::IsNotFound(record.status())) {
    return absl::NotFoundError(
        is_signed ? "no such challenge (a signed challenge is known only "
                    "once it has been used or revoked)"
                  : "no such challenge");
  }
  SCEPCA_RETURN_IF_ERROR(record.status());
  record->state = record->StateAt(now);
  return record;
}

absl::StatusOr<ChallengePage> ChallengeAuthority::List(
    absl::string_view device_id, absl::string_view user_id, int page_size,
    absl::string_view page_token) {
  if (device_id.empty() == user_id.empty()) {
    return absl::InvalidArgumentError(
        "exactly one of device_id and user_id is required");
  }
  if (page_size < 0 || page_size > kMaxPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size must be between 0 and ", kMaxPageSize));
  }
  if (page_size == 0) page_size = kDefaultPageSize;
  const bool device = !device_id.empty();
  SCEPCA_RETURN_IF_ERROR(CheckText(device ? device_id : user_id,
                                   device ? "device_id" : "user_id",
                                   kMaxIdLength, true));
  const absl::Time now = Now();
  SCEPCA_ASSIGN_OR_RETURN(
      ChallengePage page,
      store_->List(device ? SubjectType::kDevice : SubjectType::kUser,
                   device ? device_id : user_id, page_size, page_token, now));
  for (ChallengeRecord& record : page.records) {
    record.state = record.StateAt(now);
  }
  return page;
}

}  // namespace scepca
