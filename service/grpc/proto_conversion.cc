#include "service/grpc/proto_conversion.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace scepca {
namespace {

constexpr int64_t kMaxDurationSeconds = 315'576'000'000;  // protobuf's bound.

IdentityBinding FromProto(const v1::IdentityBinding& in) {
  IdentityBinding out;
  out.common_name = in.common_name();
  out.dns_names.assign(in.dns_names().begin(), in.dns_names().end());
  out.email_addresses.assign(in.email_addresses().begin(),
                             in.email_addresses().end());
  out.uris.assign(in.uris().begin(), in.uris().end());
  return out;
}

void ToProto(const IdentityBinding& in, v1::IdentityBinding* out) {
  out->set_common_name(in.common_name);
  for (const std::string& v : in.dns_names) out->add_dns_names(v);
  for (const std::string& v : in.email_addresses) out->add_email_addresses(v);
  for (const std::string& v : in.uris) out->add_uris(v);
}

v1::ChallengeState ToProto(ChallengeState state) {
  switch (state) {
    case ChallengeState::kPending:
      return v1::CHALLENGE_STATE_PENDING;
    case ChallengeState::kUsed:
      return v1::CHALLENGE_STATE_USED;
    case ChallengeState::kRevoked:
      return v1::CHALLENGE_STATE_REVOKED;
    case ChallengeState::kExpired:
      return v1::CHALLENGE_STATE_EXPIRED;
  }
  return v1::CHALLENGE_STATE_UNSPECIFIED;
}

}  // namespace

void ToProto(absl::Time in, google::protobuf::Timestamp* out) {
  const int64_t micros = absl::ToUnixMicros(in);
  int64_t seconds = micros / 1'000'000;
  int64_t rem = micros % 1'000'000;
  if (rem < 0) {
    rem += 1'000'000;
    --seconds;
  }
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(rem * 1000));
}

v1::ChallengeKind ToProto(ChallengeKind kind) {
  return kind == ChallengeKind::kSigned ? v1::CHALLENGE_KIND_SIGNED
                                        : v1::CHALLENGE_KIND_ONE_TIME;
}

absl::StatusOr<IssueRequest> FromProto(const v1::IssueChallengeRequest& in) {
  IssueRequest out;
  out.device_id = in.device_id();
  out.user_id = in.user_id();
  switch (in.kind()) {
    case v1::CHALLENGE_KIND_UNSPECIFIED:
    case v1::CHALLENGE_KIND_ONE_TIME:
      out.kind = ChallengeKind::kOneTime;
      break;
    case v1::CHALLENGE_KIND_SIGNED:
      out.kind = ChallengeKind::kSigned;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("kind ", in.kind(), " is not a known ChallengeKind"));
  }
  if (in.has_ttl()) {
    const auto& ttl = in.ttl();
    if (ttl.seconds() < -kMaxDurationSeconds ||
        ttl.seconds() > kMaxDurationSeconds || ttl.nanos() <= -1'000'000'000 ||
        ttl.nanos() >= 1'000'000'000 ||
        (ttl.seconds() > 0 && ttl.nanos() < 0) ||
        (ttl.seconds() < 0 && ttl.nanos() > 0)) {
      return absl::InvalidArgumentError("ttl is not a valid Duration");
    }
    out.ttl = absl::Seconds(ttl.seconds()) + absl::Nanoseconds(ttl.nanos());
  }
  out.binding = FromProto(in.binding());
  out.labels.insert(in.labels().begin(), in.labels().end());
  out.idempotency_key = in.idempotency_key();
  out.multi_use = in.multi_use();
  return out;
}

ValidateRequest FromProto(const v1::ValidateRequest& in) {
  ValidateRequest out;
  out.challenge = in.challenge();
  out.csr = in.csr();
  out.transaction_id = in.transaction_id();
  out.dry_run = in.dry_run();
  return out;
}

absl::StatusOr<RevokeRequest> FromProto(const v1::RevokeRequest& in) {
  RevokeRequest out;
  out.reason = in.reason();
  switch (in.selector_case()) {
    case v1::RevokeRequest::kChallengeId:
      out.selector = RevokeRequest::Selector::kChallengeId;
      out.value = in.challenge_id();
      break;
    case v1::RevokeRequest::kChallenge:
      out.selector = RevokeRequest::Selector::kChallenge;
      out.value = in.challenge();
      break;
    case v1::RevokeRequest::kDeviceId:
      out.selector = RevokeRequest::Selector::kDevice;
      out.value = in.device_id();
      break;
    case v1::RevokeRequest::kUserId:
      out.selector = RevokeRequest::Selector::kUser;
      out.value = in.user_id();
      break;
    default:
      return absl::InvalidArgumentError(
          "one of challenge_id, challenge, device_id, user_id is required");
  }
  return out;
}

absl::StatusOr<OutcomeReport> FromProto(const v1::NotifyOutcomeRequest& in) {
  OutcomeReport out;
  out.challenge_id = in.challenge_id();
  out.transaction_id = in.transaction_id();
  switch (in.outcome()) {
    case v1::OUTCOME_ISSUED:
      out.issued = true;
      break;
    case v1::OUTCOME_FAILED:
      out.issued = false;
      break;
    default:
      return absl::InvalidArgumentError(
          "outcome must be OUTCOME_ISSUED or OUTCOME_FAILED");
  }
  out.certificate_serial = in.certificate_serial();
  out.certificate_sha256 = in.certificate_sha256();
  out.failure = in.failure();
  return out;
}

void ToProto(const IssueResult& in, v1::IssueChallengeResponse* out) {
  out->set_challenge(in.challenge);
  out->set_challenge_id(in.challenge_id);
  out->set_kind(ToProto(in.kind));
  ToProto(in.expires_at, out->mutable_expires_at());
  out->set_idempotent_replay(in.idempotent_replay);
}

void ToProto(const ParsedCsr& in, v1::CsrInfo* out) {
  out->set_subject(in.subject);
  out->set_common_name(in.common_name);
  for (const auto& v : in.dns_names) out->add_dns_names(v);
  for (const auto& v : in.email_addresses) out->add_email_addresses(v);
  for (const auto& v : in.uris) out->add_uris(v);
  for (const auto& v : in.ip_addresses) out->add_ip_addresses(v);
  out->set_key_type(in.key_type);
  out->set_key_bits(in.key_bits);
  out->set_key_curve(in.key_curve);
  out->set_public_key_sha256(in.public_key_sha256);
  out->set_challenge_type(
      std::string(ChallengeStringTypeName(in.challenge_type)));
}

void ToProto(const Verdict& in, v1::ValidateResponse* out) {
  out->set_valid(in.valid);
  out->set_reason(static_cast<v1::Reason>(static_cast<int>(in.reason)));
  out->set_message(in.message);
  out->set_repeat(in.repeat);
  if (in.csr.has_value()) ToProto(*in.csr, out->mutable_csr());
  if (!in.record.has_value()) return;
  const ChallengeRecord& r = *in.record;
  out->set_challenge_id(r.id);
  out->set_device_id(r.device_id);
  out->set_user_id(r.user_id);
  out->mutable_labels()->insert(r.labels.begin(), r.labels.end());
  ToProto(r.expires_at, out->mutable_expires_at());
  out->set_kind(ToProto(r.kind));
}

void ToProto(const ChallengeRecord& in, v1::ChallengeInfo* out) {
  out->set_challenge_id(in.id);
  out->set_device_id(in.device_id);
  out->set_user_id(in.user_id);
  out->set_kind(ToProto(in.kind));
  out->set_state(ToProto(in.state));
  ToProto(in.created_at, out->mutable_created_at());
  ToProto(in.expires_at, out->mutable_expires_at());
  if (in.state == ChallengeState::kUsed) {
    ToProto(in.used_at, out->mutable_used_at());
    out->set_used_transaction_id(in.used_transaction_id);
  }
  if (in.state == ChallengeState::kRevoked) {
    ToProto(in.revoked_at, out->mutable_revoked_at());
    out->set_revoke_reason(in.revoke_reason);
  }
  out->mutable_labels()->insert(in.labels.begin(), in.labels.end());
  ToProto(in.binding, out->mutable_binding());
  // The history: what the record says, in time order.
  auto add = [out](v1::ChallengeEvent::Type type, absl::Time at) {
    v1::ChallengeEvent* e = out->add_history();
    e->set_type(type);
    ToProto(at, e->mutable_at());
    return e;
  };
  add(v1::ChallengeEvent::TYPE_ISSUED, in.created_at);
  if (in.used_at != absl::InfinitePast()) {
    add(v1::ChallengeEvent::TYPE_VALIDATED, in.used_at)
        ->set_transaction_id(in.used_transaction_id);
  }
  if (in.state == ChallengeState::kRevoked) {
    add(v1::ChallengeEvent::TYPE_REVOKED, in.revoked_at)
        ->set_detail(in.revoke_reason);
  }
  for (const OutcomeEvent& o : in.outcomes) {
    v1::ChallengeEvent* e =
        add(o.issued ? v1::ChallengeEvent::TYPE_CERTIFICATE_ISSUED
                     : v1::ChallengeEvent::TYPE_ISSUANCE_FAILED,
            o.at);
    e->set_transaction_id(o.transaction_id);
    e->set_certificate_serial(o.certificate_serial);
    e->set_certificate_sha256(o.certificate_sha256);
    e->set_detail(o.failure);
  }
}

}  // namespace scepca
