// File: challenge_service.h
// The scep.challenge.v1.ChallengeAuthority gRPC service: translates requests
// to the core ChallengeAuthority and its results back, nothing more.
#ifndef SCEPCA_SERVICE_GRPC_CHALLENGE_SERVICE_H_
#define SCEPCA_SERVICE_GRPC_CHALLENGE_SERVICE_H_

#include "scep/challenge/v1/challenge_authority.grpc.pb.h"
#include "service/core/challenge_authority.h"

namespace scepca {

// Thread-safe; `authority` must outlive it.
class ChallengeService final
    : public ::scep::challenge::v1::ChallengeAuthority::Service {
 public:
  explicit ChallengeService(ChallengeAuthority* authority)
      : authority_(authority) {}

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
  grpc::Status ListChallenges(
      grpc::ServerContext* context,
      const ::scep::challenge::v1::ListChallengesRequest* request,
      ::scep::challenge::v1::ListChallengesResponse* response) override;

 private:
  ChallengeAuthority* const authority_;
};

}  // namespace scepca

#endif  // SCEPCA_SERVICE_GRPC_CHALLENGE_SERVICE_H_
