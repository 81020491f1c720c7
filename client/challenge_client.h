// File: challenge_client.h
// A client for scep.challenge.v1.ChallengeAuthority with a deadline on every
// call and gRPC statuses turned into absl::Status.
//
// Example:
//   auto client = ChallengeClient::Create({.target = "127.0.0.1:50051"});
//   scep::challenge::v1::IssueChallengeRequest req;
//   req.set_device_id("device-123");
//   absl::StatusOr<scep::challenge::v1::IssueChallengeResponse> r =
//       (*client)->IssueChallenge(req);
#ifndef SCEPCA_CLIENT_CHALLENGE_CLIENT_H_
#define SCEPCA_CLIENT_CHALLENGE_CLIENT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "scep/challenge/v1/challenge_authority.grpc.pb.h"

namespace scepca {

struct ClientOptions {
  std::string target = "127.0.0.1:50051";
  // Deadline of each call.
  absl::Duration deadline = absl::Seconds(5);
  // TLS when tls_ca_pem is set (PEM of the CAs to trust for the server);
  // a client certificate and key for mutual TLS.
  std::string tls_ca_pem;
  std::string tls_cert_pem;
  std::string tls_key_pem;
  // Overrides the name checked in the server's certificate.
  std::string tls_server_name;
  // Sent as "authorization: Bearer <token>" when set.
  std::string bearer_token;
};

// The client flags shared by challengectl and challenge-verify, as given.
struct ClientFlagValues {
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_server_name;
  std::string token_file;
};

// Reads the files the flags name into `options`. Returns kInvalidArgument
// naming the flag for an unreadable file, a key or token file accessible to
// group or others, or a certificate without its key.
absl::Status ApplyClientFlags(const ClientFlagValues& flags,
                              ClientOptions* options);

// Thread-safe.
class ChallengeClient {
 public:
  // Returns kInvalidArgument for an empty target. Connects lazily.
  static absl::StatusOr<std::unique_ptr<ChallengeClient>> Create(
      const ClientOptions& options);

  absl::StatusOr<scep::challenge::v1::IssueChallengeResponse> IssueChallenge(
      const scep::challenge::v1::IssueChallengeRequest& request);
  absl::StatusOr<scep::challenge::v1::ValidateResponse> Validate(
      const scep::challenge::v1::ValidateRequest& request);
  absl::StatusOr<scep::challenge::v1::RevokeResponse> Revoke(
      const scep::challenge::v1::RevokeRequest& request);
  absl::StatusOr<scep::challenge::v1::ChallengeInfo> GetChallenge(
      const scep::challenge::v1::GetChallengeRequest& request);
  absl::StatusOr<scep::challenge::v1::ListChallengesResponse> ListChallenges(
      const scep::challenge::v1::ListChallengesRequest& request);
  absl::StatusOr<scep::challenge::v1::NotifyOutcomeResponse> NotifyOutcome(
      const scep::challenge::v1::NotifyOutcomeRequest& request);
  absl::StatusOr<scep::challenge::v1::Stats> GetStats(
      const scep::challenge::v1::GetStatsRequest& request);
  // Returns grpc.health.v1 status of the service: true if SERVING.
  absl::StatusOr<bool> CheckHealth();

 private:
  ChallengeClient(const ClientOptions& options,
                  std::shared_ptr<grpc::Channel> channel);
  void PrepareContext(grpc::ClientContext* context) const;

  const ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<scep::challenge::v1::ChallengeAuthority::Stub> stub_;
};

// Returns the absl::Status equivalent of a grpc::Status.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace scepca

#endif  // SCEPCA_CLIENT_CHALLENGE_CLIENT_H_
