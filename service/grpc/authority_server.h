// File: authority_server.h
// Runs the gRPC server: the ChallengeAuthority service, grpc.health.v1 (kept
// in step with the store's health) and server reflection.
//
// Threading: the ChallengeAuthority calls are taken from completion queues
// (gRPC's async API) by a fixed set of `max_threads` serving threads, each of
// which runs the call to its end (the store's blocking Redis round trips
// included) on the ChallengeService, then takes the next. Calls that arrive
// while every thread is busy wait in the queue. gRPC's synchronous server,
// used before, created and destroyed a thread for almost every call under
// load and refused calls with RESOURCE_EXHAUSTED ("Server Threadpool
// Exhausted") once `max_threads` calls were in flight (tests/bench/README.md
// has the measurements).
#ifndef SCEPCA_SERVICE_GRPC_AUTHORITY_SERVER_H_
#define SCEPCA_SERVICE_GRPC_AUTHORITY_SERVER_H_

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "service/core/challenge_authority.h"
#include "service/grpc/challenge_service.h"

namespace scepca {

namespace internal {
class AsyncCallSlot;

// What the serving threads share with Shutdown(). Thread-safe.
struct ServingState {
  // Set when shutting down: finished calls no longer ask for new ones.
  std::atomic<bool> stopping{false};
  // Serving threads inside AsyncCallSlot::Proceed(); the queues are shut down
  // only once it is 0 with `stopping` set, so that no thread starts an
  // operation on a queue that is shut down.
  std::atomic<int> running{0};
};
}  // namespace internal

struct ServerOptions {
  std::string listen = "127.0.0.1:50051";
  // Largest request accepted; larger ones get RESOURCE_EXHAUSTED.
  int max_receive_message_bytes = 64 * 1024;
  int max_concurrent_streams = 100;
  // Threads serving ChallengeAuthority calls (each runs one call at a time,
  // blocking on the store), and the most threads gRPC may start for its own
  // synchronous services (reflection).
  int max_threads = 64;
  // Completion queues the serving threads share (0: one per 64 threads).
  int completion_queues = 0;
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

// Applies the transport and threading settings of `options` (message sizes,
// concurrent streams, keepalive, the thread quota) to `builder`. Start() uses
// it; so do the benchmarks' baseline servers (tests/bench), so that they are
// measured with the same settings.
void ApplyServerSettings(const ServerOptions& options,
                         grpc::ServerBuilder* builder);

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
  // Checks the store and publishes the status when it differs from
  // *last_serving (always when last_serving is null); returns it.
  bool PublishHealth(const bool* last_serving);
  void WatchHealth(bool serving);
  // Makes the call slots and starts `threads` serving threads.
  void StartServing(int threads);
  // Runs calls from `cq` until it is shut down and drained.
  static void Serve(grpc::ServerCompletionQueue* cq);

  const ServerOptions options_;
  ChallengeAuthority* const authority_;
  ChallengeService service_;
  // Declared before server_, so destroyed after it.
  ::scep::challenge::v1::ChallengeAuthority::AsyncService async_service_;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues_;
  std::vector<std::unique_ptr<internal::AsyncCallSlot>> slots_;
  std::vector<std::thread> serving_threads_;
  internal::ServingState serving_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  absl::Notification stop_;
  std::thread health_thread_;
  absl::Mutex shutdown_mu_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

}  // namespace scepca

#endif  // SCEPCA_SERVICE_GRPC_AUTHORITY_SERVER_H_
