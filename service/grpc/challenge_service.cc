#include "service/grpc/challenge_service.h"

#include "service/grpc/proto_conversion.h"
#include "service/grpc/status_conversion.h"

namespace scepca {

grpc::Status ChallengeService::IssueChallenge(
    grpc::ServerContext* /*context*/, const v1::IssueChallengeRequest* request,
    v1::IssueChallengeResponse* response) {
  absl::StatusOr<IssueRequest> issue = FromProto(*request);
  if (!issue.ok()) return ToGrpcStatus(issue.status());
  absl::StatusOr<IssueResult> result = authority_->Issue(*issue);
  if (!result.ok()) return ToGrpcStatus(result.status());
  ToProto(*result, response);
  return grpc::Status::OK;
}

grpc::Status ChallengeService::Validate(grpc::ServerContext* /*context*/,
                                        const v1::ValidateRequest* request,
                                        v1::ValidateResponse* response) {
  absl::StatusOr<Verdict> verdict = authority_->Validate(FromProto(*request));
  if (!verdict.ok()) return ToGrpcStatus(verdict.status());
  ToProto(*verdict, response);
  return grpc::Status::OK;
}

grpc::Status ChallengeService::Revoke(grpc::ServerContext* /*context*/,
                                      const v1::RevokeRequest* request,
                                      v1::RevokeResponse* response) {
  absl::StatusOr<RevokeRequest> revoke = FromProto(*request);
  if (!revoke.ok()) return ToGrpcStatus(revoke.status());
  absl::StatusOr<int64_t> count = authority_->Revoke(*revoke);
  if (!count.ok()) return ToGrpcStatus(count.status());
  response->set_revoked_count(*count);
  return grpc::Status::OK;
}

grpc::Status ChallengeService::GetChallenge(
    grpc::ServerContext* /*context*/, const v1::GetChallengeRequest* request,
    v1::ChallengeInfo* response) {
  absl::StatusOr<ChallengeRecord> record =
      authority_->Get(request->challenge_id());
  if (!record.ok()) return ToGrpcStatus(record.status());
  ToProto(*record, response);
  return grpc::Status::OK;
}

grpc::Status ChallengeService::NotifyOutcome(
    grpc::ServerContext* /*context*/, const v1::NotifyOutcomeRequest* request,
    v1::NotifyOutcomeResponse* response) {
  absl::StatusOr<OutcomeReport> report = FromProto(*request);
  if (!report.ok()) return ToGrpcStatus(report.status());
  absl::StatusOr<std::string> id = authority_->NotifyOutcome(*report);
  if (!id.ok()) return ToGrpcStatus(id.status());
  response->set_challenge_id(*id);
  return grpc::Status::OK;
}

grpc::Status ChallengeService::ListChallenges(
    grpc::ServerContext* /*context*/, const v1::ListChallengesRequest* request,
    v1::ListChallengesResponse* response) {
  absl::StatusOr<ChallengePage> page =
      authority_->List(request->device_id(), request->user_id(),
                       request->page_size(), request->page_token());
  if (!page.ok()) return ToGrpcStatus(page.status());
  for (const ChallengeRecord& record : page->records) {
    ToProto(record, response->add_challenges());
  }
  response->set_next_page_token(page->next_page_token);
  return grpc::Status::OK;
}

}  // namespace scepca
