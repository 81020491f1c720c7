#include "service/core/challenge_authority.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "service/core/hashing.h"
#include "service/core/idempotency.h"
#include "service/core/one_time_challenge.h"
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
    return absl::InvalidArgumentError(absl::StrCat(
        field, " is ", value.size(), " bytes; at most ", max_length,
        " are allowed"));
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
    SCEPCA_RETURN_IF_ERROR(CheckText(values[i], absl::StrCat(field, "[", i, "]"),
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
  add(request.ttl.has_value() ? absl::StrCat(absl::ToInt64Milliseconds(
                                    *request.ttl))
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
      return Refuse(Reason::kExpired,
                    absl::StrCat("challenge expired at ",
                                 TimeText(record.expires_at)),
                    record);
    case ChallengeState::kUsed:
      return Refuse(Reason::kAlreadyUsed,
                    absl::StrCat("challenge was already used at ",
                                 TimeText(record.used_at)),
                    record);
    case ChallengeState::kRevoked:
      return Refuse(Reason::kRevoked,
                    absl::StrCat("challenge was revoked at ",
                                 TimeText(record.revoked_at),
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
  if (expired_retention < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("expired_retention must not be negative");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ChallengeAuthority>> ChallengeAuthority::Create(
    AuthorityOptions options, ChallengeStore* store, const Clock* clock) {
  SCEPCA_RETURN_IF_ERROR(options.Check());
  if (store == nullptr || clock == nullptr) {
    return absl::InvalidArgumentError("store and clock are required");
  }
  return std::unique_ptr<ChallengeAuthority>(
      new ChallengeAuthority(options, store, clock));
}

absl::Status ChallengeAuthority::CheckIssueRequest(
    const IssueRequest& request) const {
  SCEPCA_RETURN_IF_ERROR(
      CheckText(request.device_id, "device_id", kMaxIdLength, true));
  SCEPCA_RETURN_IF_ERROR(
      CheckText(request.user_id, "user_id", kMaxIdLength, false));
  if (request.ttl.has_value() &&
      (*request.ttl < absl::Seconds(1) || *request.ttl > options_.max_ttl)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ttl is ", absl::FormatDuration(*request.ttl),
        "; it must be between 1s and ", absl::FormatDuration(options_.max_ttl)));
  }
  SCEPCA_RETURN_IF_ERROR(CheckText(request.binding.common_name,
                                   "binding.common_name",
                                   kMaxCommonNameLength, false));
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
    return absl::FailedPreconditionError(
        "kind SIGNED needs a key ring; this server has none (--hmac-keys)");
  }
  return absl::OkStatus();
}

absl::Status ChallengeAuthority::CheckNotRevokedWhileIssuing(
    const ChallengeRecord& record, absl::Time now) {
  absl::Time revoked_before = absl::InfinitePast();
  for (auto [type, subject] :
       {std::make_pair(SubjectType::kDevice, &record.device_id),
        std::make_pair(SubjectType::kUser, &record.user_id)}) {
    if (subject->empty()) continue;
    SCEPCA_ASSIGN_OR_RETURN(absl::Time t,
                            store_->RevokedBefore(type, *subject, now));
    revoked_before = std::max(revoked_before, t);
  }
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

absl::StatusOr<IssueResult> ChallengeAuthority::Issue(
    const IssueRequest& request) {
  SCEPCA_RETURN_IF_ERROR(CheckIssueRequest(request));
  const absl::Time now = Now();
  const absl::Duration ttl = request.ttl.value_or(options_.default_ttl);

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
  absl::Status inserted = absl::UnknownError("not attempted");
  for (int attempt = 0; attempt < kIssueAttempts; ++attempt) {
    SCEPCA_ASSIGN_OR_RETURN(challenge, GenerateOneTimeChallenge());
    record.id = ChallengeIdOf(challenge);
    inserted = store_->Insert(record, now);
    if (!absl::IsAlreadyExists(inserted)) break;
  }
  SCEPCA_RETURN_IF_ERROR(inserted);

  IssueResult result;
  result.kind = ChallengeKind::kOneTime;
  if (!request.idempotency_key.empty()) {
    IdempotencyEntry entry;
    entry.request_fingerprint = RequestFingerprint(request);
    entry.challenge_id = record.id;
    SCEPCA_ASSIGN_OR_RETURN(
        entry.sealed_challenge,
        SealChallenge(request.device_id, request.idempotency_key, challenge));
    entry.expires_at = record.expires_at;
    SCEPCA_ASSIGN_OR_RETURN(
        absl::optional<IdempotencyEntry> existing,
        store_->PutIdempotencyIfAbsent(
            IdempotencyStoreKey(request.device_id, request.idempotency_key),
            entry, now));
    if (existing.has_value()) {
      // Another call with this key won: drop our record and answer with its.
      SCEPCA_RETURN_IF_ERROR(store_->Delete(record.id));
      if (!ConstantTimeEquals(existing->request_fingerprint,
                              entry.request_fingerprint)) {
        return absl::InvalidArgumentError(
            "idempotency_key was already used with a different request");
      }
      absl::StatusOr<std::string> opened = OpenChallenge(
          request.device_id, request.idempotency_key,
          existing->sealed_challenge);
      if (!opened.ok()) {
        return absl::InternalError(
            "stored idempotent answer does not authenticate");
      }
      result.challenge = *std::move(opened);
      result.challenge_id = existing->challenge_id;
      result.expires_at = existing->expires_at;
      result.idempotent_replay = true;
      return result;
    }
  }
  SCEPCA_RETURN_IF_ERROR(CheckNotRevokedWhileIssuing(record, now));
  result.challenge = std::move(challenge);
  result.challenge_id = record.id;
  result.expires_at = record.expires_at;
  return result;
}

absl::StatusOr<Verdict> ChallengeAuthority::Validate(
    const ValidateRequest& request) {
  SCEPCA_RETURN_IF_ERROR(CheckPresentedChallenge(request.challenge,
                                                 "challenge"));
  SCEPCA_RETURN_IF_ERROR(CheckText(request.transaction_id, "transaction_id",
                                   kMaxTransactionIdLength, false));
  if (!IsOneTimeChallengeFormat(request.challenge)) {
    return Refuse(Reason::kMalformed,
                  "not a challenge issued by this authority (expected 26 "
                  "characters A-Z2-7)",
                  absl::nullopt);
  }
  const std::string id = ChallengeIdOf(request.challenge);
  const absl::Time now = Now();
  if (request.dry_run) {
    absl::StatusOr<ChallengeRecord> record = store_->Get(id, now);
    if (absl::IsNotFound(record.status())) {
      return Refuse(Reason::kNotFound, "challenge is not known",
                    absl::nullopt);
    }
    SCEPCA_RETURN_IF_ERROR(record.status());
    return VerdictForState(*record, now);
  }
  SCEPCA_ASSIGN_OR_RETURN(ConsumeResult consumed,
                          store_->Consume(id, request.transaction_id, now));
  switch (consumed.outcome) {
    case ConsumeResult::Outcome::kConsumed: {
      Verdict v;
      v.valid = true;
      v.reason = Reason::kValid;
      v.message = "challenge is valid and has been consumed";
      v.record = std::move(consumed.record);
      return v;
    }
    case ConsumeResult::Outcome::kNotFound:
      return Refuse(Reason::kNotFound, "challenge is not known",
                    absl::nullopt);
    case ConsumeResult::Outcome::kExpired:
    case ConsumeResult::Outcome::kAlreadyUsed:
    case ConsumeResult::Outcome::kRevoked:
      return VerdictForState(consumed.record, now);
  }
  return absl::InternalError("unexpected consume outcome");
}

absl::StatusOr<int64_t> ChallengeAuthority::Revoke(
    const RevokeRequest& request) {
  SCEPCA_RETURN_IF_ERROR(
      CheckText(request.reason, "reason", kMaxReasonLength, false));
  const absl::Time now = Now();
  std::string id;
  switch (request.selector) {
    case RevokeRequest::Selector::kChallengeId:
      if (!IsChallengeIdFormat(request.value)) {
        return absl::InvalidArgumentError(
            "challenge_id must be 32 lower-case hex characters");
      }
      id = request.value;
      break;
    case RevokeRequest::Selector::kChallenge:
      SCEPCA_RETURN_IF_ERROR(CheckPresentedChallenge(request.value,
                                                     "challenge"));
      id = ChallengeIdOf(request.value);
      break;
    case RevokeRequest::Selector::kDevice:
    case RevokeRequest::Selector::kUser: {
      const bool device = request.selector == RevokeRequest::Selector::kDevice;
      SCEPCA_RETURN_IF_ERROR(CheckText(request.value,
                                       device ? "device_id" : "user_id",
                                       kMaxIdLength, true));
      // Everything issued up to now expires by now + max_ttl at the latest.
      return store_->RevokeSubject(
          device ? SubjectType::kDevice : SubjectType::kUser, request.value,
          request.reason, now, now + options_.max_ttl);
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
  if (!IsChallengeIdFormat(challenge_id)) {
    return absl::InvalidArgumentError(
        "challenge_id must be 32 lower-case hex characters");
  }
  const absl::Time now = Now();
  absl::StatusOr<ChallengeRecord> record = store_->Get(challenge_id, now);
  if (absl::IsNotFound(record.status())) {
    return absl::NotFoundError("no such challenge");
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
