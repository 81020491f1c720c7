#include "service/grpc/authority_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/str_cat.h"
#include "service/core/log.h"

namespace scepca {

AuthorityServer::AuthorityServer(const ServerOptions& options,
                                 ChallengeAuthority* authority)
    : options_(options), authority_(authority), service_(authority) {}

absl::StatusOr<std::unique_ptr<AuthorityServer>> AuthorityServer::Start(
    const ServerOptions& options, ChallengeAuthority* authority) {
  std::unique_ptr<AuthorityServer> server(
      new AuthorityServer(options, authority));
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(),
                           &server->port_);
  builder.RegisterService(&server->service_);
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  builder.SetMaxSendMessageSize(4 * 1024 * 1024);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             options.max_concurrent_streams);
  builder.AddChannelArgument("grpc.server_handshake_timeout_ms", 10'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20'000);
  grpc::ResourceQuota quota("scepca");
  quota.SetMaxThreads(options.max_threads);
  builder.SetResourceQuota(quota);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen));
  }
  server->health_thread_ =
      std::thread([s = server.get()] { s->WatchHealth(); });
  return server;
}

void AuthorityServer::WatchHealth() {
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  bool last_serving = false;
  bool first = true;
  do {
    const absl::Status status = authority_->CheckHealth();
    const bool serving = status.ok();
    if (first || serving != last_serving) {
      health->SetServingStatus(serving);
      health->SetServingStatus(kHealthServiceName, serving);
      if (serving) {
        LogInfo(absl::StrCat("store ", authority_->store()->Describe(),
                             " is reachable: SERVING"));
      } else {
        LogWarning(absl::StrCat("store ", authority_->store()->Describe(),
                                " is not reachable (", status.message(),
                                "): NOT_SERVING"));
      }
    }
    first = false;
    last_serving = serving;
  } while (!stop_.WaitForNotificationWithTimeout(options_.health_interval));
}

void AuthorityServer::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&shutdown_mu_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  stop_.Notify();
  if (health_thread_.joinable()) health_thread_.join();
  server_->GetHealthCheckService()->Shutdown();
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  server_->Wait();
}

AuthorityServer::~AuthorityServer() { Shutdown(absl::Seconds(5)); }

}  // namespace scepca
