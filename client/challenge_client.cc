#include "client/challenge_client.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "grpc/health/v1/health.grpc.pb.h"

namespace scepca {

namespace v1 = ::scep::challenge::v1;

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

absl::StatusOr<std::unique_ptr<ChallengeClient>> ChallengeClient::Create(
    const ClientOptions& options) {
  if (options.target.empty()) {
    return absl::InvalidArgumentError("server address is empty");
  }
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
      options.target, grpc::InsecureChannelCredentials(), args);
  return std::unique_ptr<ChallengeClient>(
      new ChallengeClient(options, std::move(channel)));
}

ChallengeClient::ChallengeClient(const ClientOptions& options,
                                 std::shared_ptr<grpc::Channel> channel)
    : options_(options),
      channel_(std::move(channel)),
      stub_(v1::ChallengeAuthority::NewStub(channel_)) {}

void ChallengeClient::PrepareContext(grpc::ClientContext* context) const {
  context->set_deadline(absl::ToChronoTime(absl::Now() + options_.deadline));
}

#define SCEPCA_CLIENT_CALL(Method, Request, Response)                        \
  absl::StatusOr<Response> ChallengeClient::Method(const Request& request) { \
    grpc::ClientContext context;                                             \
    PrepareContext(&context);                                                \
    Response response;                                                       \
    grpc::Status status = stub_->Method(&context, request, &response);       \
    if (!status.ok()) return FromGrpcStatus(status);                         \
    return response;                                                         \
  }

SCEPCA_CLIENT_CALL(IssueChallenge, v1::IssueChallengeRequest,
                   v1::IssueChallengeResponse)
SCEPCA_CLIENT_CALL(Validate, v1::ValidateRequest, v1::ValidateResponse)
SCEPCA_CLIENT_CALL(Revoke, v1::RevokeRequest, v1::RevokeResponse)
SCEPCA_CLIENT_CALL(GetChallenge, v1::GetChallengeRequest, v1::ChallengeInfo)
SCEPCA_CLIENT_CALL(ListChallenges, v1::ListChallengesRequest,
                   v1::ListChallengesResponse)

SCEPCA_CLIENT_CALL(NotifyOutcome, v1::NotifyOutcomeRequest,
                   v1::NotifyOutcomeResponse)

#undef SCEPCA_CLIENT_CALL

absl::StatusOr<bool> ChallengeClient::CheckHealth() {
  auto stub = grpc::health::v1::Health::NewStub(channel_);
  grpc::ClientContext context;
  PrepareContext(&context);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service("scep.challenge.v1.ChallengeAuthority");
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
}

}  // namespace scepca
