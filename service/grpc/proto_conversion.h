// File: proto_conversion.h
// Translations between scep.challenge.v1 messages and the core's types.
#ifndef SCEPCA_SERVICE_GRPC_PROTO_CONVERSION_H_
#define SCEPCA_SERVICE_GRPC_PROTO_CONVERSION_H_

#include "absl/status/statusor.h"
#include "scep/challenge/v1/challenge_authority.pb.h"
#include "service/core/challenge_authority.h"

namespace scepca {

namespace v1 = ::scep::challenge::v1;

// Returns kInvalidArgument naming the field for a value with no core meaning
// (an unknown kind, a malformed ttl, an unset revoke selector).
absl::StatusOr<IssueRequest> FromProto(const v1::IssueChallengeRequest& in);
ValidateRequest FromProto(const v1::ValidateRequest& in);
absl::StatusOr<RevokeRequest> FromProto(const v1::RevokeRequest& in);
absl::StatusOr<OutcomeReport> FromProto(const v1::NotifyOutcomeRequest& in);

void ToProto(const IssueResult& in, v1::IssueChallengeResponse* out);
void ToProto(const Verdict& in, v1::ValidateResponse* out);
void ToProto(const ParsedCsr& in, v1::CsrInfo* out);
void ToProto(const ChallengeRecord& in, v1::ChallengeInfo* out);

void ToProto(absl::Time in, google::protobuf::Timestamp* out);
v1::ChallengeKind ToProto(ChallengeKind kind);

}  // namespace scepca

#endif  // SCEPCA_SERVICE_GRPC_PROTO_CONVERSION_H_
