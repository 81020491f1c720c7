#include "service/grpc/challenge_service.h"

#include <map>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "service/grpc/proto_conversion.h"
#include "service/grpc/status_conversion.h"

namespace scepca {

namespace {

std::string CodeName(grpc::StatusCode code) {
  std::string name =
      absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  return name.empty() ? "UNKNOWN" : name;
}

}  // namespace

// One RPC: authorizes it, and on Finish() records its audit entry and
// metrics.
class ChallengeService::Call {
 public:
  Call(const ChallengeService& service, grpc::ServerContext* context,
       Method method)
      : service_(service), method_(method), start_(absl::Now()) {
    entry_.time = start_;
    entry_.method = std::string(MethodName(method));
    // The peer (a string built per call) only for those who use it.
    if (service.hooks_.audit != nullptr ||
        service.hooks_.rate_limiter != nullptr) {
      entry_.peer = context->peer();
    }
    if (service.hooks_.authorizer != nullptr) {
      authorized_ =
          service.hooks_.authorizer->Authorize(*context, method, &caller_);
      entry_.caller = caller_.name;
    }
    if (authorized_.ok() && service.hooks_.rate_limiter != nullptr) {
      const std::string key = entry_.caller.empty()
                                  ? PeerHost(entry_.peer)
                                  : absl::StrCat("principal:", entry_.caller);
      if (!service.hooks_.rate_limiter->Allow(key, start_)) {
        authorized_ = grpc::Status(
            grpc::StatusCode::RESOURCE_EXHAUSTED,
            absl::StrCat("rate limit of ", service.hooks_.rate_limiter->rate(),
                         " calls/s for this caller exceeded "
                         "(--rate-limit-per-caller)"));
      }
    }
  }

  const grpc::Status& authorized() const { return authorized_; }
  // The caller's tenant scope (empty without an authz file or a scope).
  const std::map<std::string, std::string>& scope() const {
    return caller_.scope;
  }
  AuditEntry& entry() { return entry_; }

  // Records the call and returns `status`.
  grpc::Status Finish(const grpc::Status& status) {
    entry_.latency = absl::Now() - start_;
    if (!status.ok()) {
      entry_.outcome = CodeName(status.error_code());
      if (entry_.reason.empty()) entry_.reason = status.error_message();
    } else if (entry_.outcome.empty()) {
      entry_.outcome = "ok";
    }
    if (service_.hooks_.audit != nullptr) service_.hooks_.audit->Record(entry_);
    if (ServiceMetrics* m = service_.hooks_.metrics) {
      m->RecordCall(method_, status.error_code(), entry_.latency);
      if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
          status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
        m->RecordStoreError(method_);
      }
    }
    return status;
  }

 private:
  const ChallengeService& service_;
  const Method method_;
  const absl::Time start_;
  AuditEntry entry_;
  Authorizer::Caller caller_;
  grpc::Status authorized_ = grpc::Status::OK;
};

grpc::Status ChallengeService::IssueChallenge(
    grpc::ServerContext* context, const v1::IssueChallengeRequest* request,
    v1::IssueChallengeResponse* response) {
  Call call(*this, context, Method::kIssueChallenge);
  call.entry().device_id = request->device_id();
  call.entry().user_id = request->user_id();
  if (!call.authorized().ok()) return call.Finish(call.authorized());
  absl::StatusOr<IssueRequest> issue = FromProto(*request);
  if (!issue.ok()) return call.Finish(ToGrpcStatus(issue.status()));
  for (const auto& [key, value] : call.scope()) {
    auto [it, added] = issue->labels.emplace(key, value);
    if (!added && it->second != value) {
      return call.Finish(grpc::Status(
          grpc::StatusCode::PERMISSION_DENIED,
          absl::StrCat("labels[", key, "] is fixed to '", value,
                       "' for principal '", call.entry().caller, "'")));
    }
  }
  absl::StatusOr<IssueResult> result = authority_->Issue(*issue);
  if (!result.ok()) return call.Finish(ToGrpcStatus(result.status()));
  ToProto(*result, response);
  call.entry().challenge_id = result->challenge_id;
  return call.Finish(grpc::Status::OK);
}

grpc::Status ChallengeService::Validate(grpc::ServerContext* context,
                                        const v1::ValidateRequest* request,
                                        v1::ValidateResponse* response) {
  Call call(*this, context, Method::kValidate);
  call.entry().transaction_id = request->transaction_id();
  if (!call.authorized().ok()) return call.Finish(call.authorized());
  absl::StatusOr<Verdict> verdict = authority_->Validate(FromProto(*request));
  if (!verdict.ok()) return call.Finish(ToGrpcStatus(verdict.status()));
  ToProto(*verdict, response);
  AuditEntry& e = call.entry();
  e.outcome =
      verdict->valid ? (verdict->repeat ? "valid_repeat" : "valid") : "denied";
  e.reason = std::string(ReasonName(verdict->reason));
  if (verdict->record.has_value()) {
    e.challenge_id = verdict->record->id;
    e.device_id = verdict->record->device_id;
    e.user_id = verdict->record->user_id;
  }
  if (hooks_.metrics != nullptr)
    hooks_.metrics->RecordValidation(verdict->reason);
  return call.Finish(grpc::Status::OK);
}

grpc::Status ChallengeService::Revoke(grpc::ServerContext* context,
                                      const v1::RevokeRequest* request,
                                      v1::RevokeResponse* response) {
  Call call(*this, context, Method::kRevoke);
  call.entry().challenge_id = request->challenge_id();
  call.entry().device_id = request->device_id();
  call.entry().user_id = request->user_id();
  if (!call.authorized().ok()) return call.Finish(call.authorized());
  absl::StatusOr<RevokeRequest> revoke = FromProto(*request);
  if (!revoke.ok()) return call.Finish(ToGrpcStatus(revoke.status()));
  absl::StatusOr<int64_t> count = authority_->Revoke(*revoke);
  if (!count.ok()) return call.Finish(ToGrpcStatus(count.status()));
  response->set_revoked_count(*count);
  call.entry().count = *count;
  call.entry().reason = request->reason();
  return call.Finish(grpc::Status::OK);
}

grpc::Status ChallengeService::GetChallenge(
    grpc::ServerContext* context, const v1::GetChallengeRequest* request,
    v1::ChallengeInfo* response) {
  Call call(*this, context, Method::kGetChallenge);
  call.entry().challenge_id = request->challenge_id();
  if (!call.authorized().ok()) return call.Finish(call.authorized());
  absl::StatusOr<ChallengeRecord> record =
      authority_->Get(request->challenge_id());
  if (!record.ok()) return call.Finish(ToGrpcStatus(record.status()));
  if (!InScope(record->labels, call.scope())) {
    // Another tenant's challenge: as if it did not exist.
    return call.Finish(
        grpc::Status(grpc::StatusCode::NOT_FOUND, "no such challenge"));
  }
  ToProto(*record, response);
  return call.Finish(grpc::Status::OK);
}

grpc::Status ChallengeService::NotifyOutcome(
    grpc::ServerContext* context, const v1::NotifyOutcomeRequest* request,
    v1::NotifyOutcomeResponse* response) {
  Call call(*this, context, Method::kNotifyOutcome);
  call.entry().challenge_id = request->challenge_id();
  call.entry().transaction_id = request->transaction_id();
  if (!call.authorized().ok()) return call.Finish(call.authorized());
  absl::StatusOr<OutcomeReport> report = FromProto(*request);
  if (!report.ok()) return call.Finish(ToGrpcStatus(report.status()));
  absl::StatusOr<std::string> id = authority_->NotifyOutcome(*report);
  if (!id.ok()) return call.Finish(ToGrpcStatus(id.status()));
  response->set_challenge_id(*id);
  call.entry().challenge_id = *id;
  call.entry().outcome = report->issued ? "issued" : "failed";
  return call.Finish(grpc::Status::OK);
}

grpc::Status ChallengeService::GetStats(grpc::ServerContext* context,
                                        const v1::GetStatsRequest* /*request*/,
                                        v1::Stats* response) {
  Call call(*this, context, Method::kGetStats);
  if (!call.authorized().ok()) return call.Finish(call.authorized());
  response->set_store(authority_->store()->Describe());
  ToProto(started_at_, response->mutable_started_at());
  response->set_outstanding_challenges(-1);
  if (const ServiceMetrics* m = hooks_.metrics) {
    for (const auto& [key, n] : m->CallCounts()) {
      (*response->mutable_calls())[key] = static_cast<int64_t>(n);
    }
    for (const auto& [reason, n] : m->ValidationCounts()) {
      (*response->mutable_validations())[reason] = static_cast<int64_t>(n);
    }
    response->set_outstanding_challenges(
        static_cast<int64_t>(m->GaugeValue("scepca_outstanding_challenges")));
  }
  return call.Finish(grpc::Status::OK);
}

grpc::Status ChallengeService::ListChallenges(
    grpc::ServerContext* context, const v1::ListChallengesRequest* request,
    v1::ListChallengesResponse* response) {
  Call call(*this, context, Method::kListChallenges);
  call.entry().device_id = request->device_id();
  call.entry().user_id = request->user_id();
  if (!call.authorized().ok()) return call.Finish(call.authorized());
  absl::StatusOr<ChallengePage> page =
      authority_->List(request->device_id(), request->user_id(),
                       request->page_size(), request->page_token());
  if (!page.ok()) return call.Finish(ToGrpcStatus(page.status()));
  for (const ChallengeRecord& record : page->records) {
    // Another tenant's challenges are left out (a page may come out short;
    // the page token still continues after them).
    if (!InScope(record.labels, call.scope())) continue;
    ToProto(record, response->add_challenges());
  }
  response->set_next_page_token(page->next_page_token);
  call.entry().count = response->challenges_size();
  return call.Finish(grpc::Status::OK);
}

}  // namespace scepca
