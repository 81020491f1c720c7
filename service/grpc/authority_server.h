// File: authority_server.h
// Runs the gRPC server: the ChallengeAuthority service, grpc.health.v1 (kept
// in step with the store's health) and server reflection.
#ifndef SCEPCA_SERVICE_GRPC_AUTHORITY_SERVER_H_
#define SCEPCA_SERVICE_GRPC_AUTHORITY_SERVER_H_

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "service/core/challenge_authority.h"
#include "service/grpc/challenge_service.h"

namespace scepca {

struct ServerOptions {
  std::string listen = "127.0.0.1:50051";
  // Largest request accepted; larger ones get RESOURCE_EXHAUSTED.
  int max_receive_message_bytes = 64 * 1024;
  int max_concurrent_streams = 100;
  int max_threads = 64;
  // How often the store's health is checked for grpc.health.v1.
  absl::Duration health_interval = absl::Seconds(1);
  // TLS: PEM files of the server's certificate chain and key (both or
  // neither), and of the CAs that sign client certificates (mutual TLS:
  // client certificates are then requested and verified when presented).
  std::string tls_cert;
  std::string tls_key;
  std::string client_ca;
  // Without TLS the server listens only on loopback addresses, unless this
  // is set.
  bool allow_insecure_listen = false;
  ServiceHooks hooks;
};

// Returns true if `listen` (HOST:PORT, [v6]:PORT or unix:PATH) names only
// this machine.
bool IsLoopbackAddress(absl::string_view listen);

// The health service name of the authority (also "" for the whole server).
inline constexpr char kHealthServiceName[] =
    "scep.challenge.v1.ChallengeAuthority";

class AuthorityServer {
 public:
  // Starts serving. Returns kUnavailable if the address cannot be bound,
  // kInvalidArgument for bad TLS files or a plaintext non-loopback address
  // without allow_insecure_listen.
  // `authority` must outlive the server.
  static absl::StatusOr<std::unique_ptr<AuthorityServer>> Start(
      const ServerOptions& options, ChallengeAuthority* authority);
  ~AuthorityServer();

  // The port actually bound (useful with port 0).
  int port() const { return port_; }
  // Stops accepting calls and waits up to `grace` for in-flight ones.
  void Shutdown(absl::Duration grace);

 private:
  AuthorityServer(const ServerOptions& options, ChallengeAuthority* authority);
  static absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(
      const ServerOptions& options);
  void WatchHealth();

  const ServerOptions options_;
  ChallengeAuthority* const authority_;
  ChallengeService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  absl::Notification stop_;
  std::thread health_thread_;
  absl::Mutex shutdown_mu_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

}  // namespace scepca

#endif  // SCEPCA_SERVICE_GRPC_AUTHORITY_SERVER_H_
