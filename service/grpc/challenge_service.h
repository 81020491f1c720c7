// File: challenge_service.h
// The scep.challenge.v1.ChallengeAuthority gRPC service: checks the caller's
// role, translates requests to the core ChallengeAuthority and its results
// back, and records each decision in the audit log and the metrics.
#ifndef SCEPCA_SERVICE_GRPC_CHALLENGE_SERVICE_H_
#define SCEPCA_SERVICE_GRPC_CHALLENGE_SERVICE_H_

#include "scep/challenge/v1/challenge_authority.grpc.pb.h"
#include "service/core/audit_log.h"
#include "service/core/challenge_authority.h"
#include "service/grpc/authorizer.h"
#include "service/grpc/rate_limiter.h"
#include "service/grpc/service_metrics.h"

namespace scepca {

// What the service needs besides the authority; every pointer may be null.
struct ServiceHooks {
  const Authorizer* authorizer = nullptr;  // Null: every caller may call all.
  AuditSink* audit = nullptr;
  ServiceMetrics* metrics = nullptr;
  RateLimiter* rate_limiter = nullptr;  // Null: no per-caller limit.
};

// Thread-safe; `authority` and the hooks must outlive it.
class ChallengeService final
    : public ::scep::challenge::v1::ChallengeAuthority::Service {
 public:
  explicit ChallengeService(ChallengeAuthority* authority,
                            ServiceHooks hooks = {})
      : authority_(authority), hooks_(hooks) {}

  // ChallengeAuthority::Service:
  grpc::Status IssueChallenge(
      grpc::ServerContext* context,
      const ::scep::challenge::v1::IssueChallengeRequest* request,
      ::scep::challenge::v1::IssueChallengeResponse* response) override;
  grpc::Status Validate(
      grpc::ServerContext* context,
      const ::scep::challenge::v1::ValidateRequest* request,
      ::scep::challenge::v1::ValidateResponse* response) override;
  grpc::Status Revoke(grpc::ServerContext* context,
                      const ::scep::challenge::v1::RevokeRequest* request,
                      ::scep::challenge::v1::RevokeResponse* response) override;
  grpc::Status GetChallenge(
      grpc::ServerContext* context,
      const ::scep::challenge::v1::GetChallengeRequest* request,
      ::scep::challenge::v1::ChallengeInfo* response) override;
  grpc::Status NotifyOutcome(
      grpc::ServerContext* context,
      const ::scep::challenge::v1::NotifyOutcomeRequest* request,
      ::scep::challenge::v1::NotifyOutcomeResponse* response) override;
  grpc::Status GetStats(grpc::ServerContext* context,
                        const ::scep::challenge::v1::GetStatsRequest* request,
                        ::scep::challenge::v1::Stats* response) override;
  grpc::Status ListChallenges(
      grpc::ServerContext* context,
      const ::scep::challenge::v1::ListChallengesRequest* request,
      ::scep::challenge::v1::ListChallengesResponse* response) override;

 private:
  class Call;

  ChallengeAuthority* const authority_;
  const ServiceHooks hooks_;
  const absl::Time started_at_ = absl::Now();
};

}  // namespace scepca

#endif  // SCEPCA_SERVICE_GRPC_CHALLENGE_SERVICE_H_
