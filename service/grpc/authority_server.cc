#include "service/grpc/authority_server.h"

#include <fcntl.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "service/core/log.h"
#include "service/core/status_macros.h"

namespace scepca {

namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path,
                                    absl::string_view flag, bool secret) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": cannot read ", path, ": ", std::strerror(errno)));
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || (secret && (st.st_mode & 077) != 0)) {
    close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": ", path,
                     " must not be accessible to group or others (chmod 600)"));
  }
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) text.append(buf, n);
  close(fd);
  if (text.find("-----BEGIN") == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": ", path, " is not PEM"));
  }
  return text;
}

}  // namespace

bool IsLoopbackAddress(absl::string_view listen) {
  if (absl::StartsWith(listen, "unix:")) return true;
  absl::string_view host = listen.substr(0, listen.rfind(':'));
  if (absl::ConsumePrefix(&host, "[")) absl::ConsumeSuffix(&host, "]");
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

AuthorityServer::AuthorityServer(const ServerOptions& options,
                                 ChallengeAuthority* authority)
    : options_(options),
      authority_(authority),
      service_(authority, options.hooks) {}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>>
AuthorityServer::Credentials(const ServerOptions& options) {
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  if (options.tls_cert.empty()) {
    if (!options.client_ca.empty()) {
      return absl::InvalidArgumentError("--client-ca needs --tls-cert");
    }
    if (!IsLoopbackAddress(options.listen) && !options.allow_insecure_listen) {
      return absl::InvalidArgumentError(absl::StrCat(
          "refusing to serve plaintext gRPC on ", options.listen,
          ", which is not a loopback address: give --tls-cert and --tls-key "
          "(and --client-ca for mutual TLS), or --allow-insecure-listen"));
    }
    if (!IsLoopbackAddress(options.listen)) {
      LogWarning(absl::StrCat("serving PLAINTEXT gRPC on ", options.listen,
                              " (--allow-insecure-listen): challenges cross "
                              "the network unencrypted"));
    }
    return grpc::InsecureServerCredentials();
  }
  grpc::SslServerCredentialsOptions ssl(
      options.client_ca.empty()
          ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
          : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  SCEPCA_ASSIGN_OR_RETURN(pair.cert_chain,
                          ReadPem(options.tls_cert, "--tls-cert", false));
  SCEPCA_ASSIGN_OR_RETURN(pair.private_key,
                          ReadPem(options.tls_key, "--tls-key", true));
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!options.client_ca.empty()) {
    SCEPCA_ASSIGN_OR_RETURN(ssl.pem_root_certs,
                            ReadPem(options.client_ca, "--client-ca", false));
  }
  return grpc::SslServerCredentials(ssl);
}

absl::StatusOr<std::unique_ptr<AuthorityServer>> AuthorityServer::Start(
    const ServerOptions& options, ChallengeAuthority* authority) {
  SCEPCA_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> creds,
                          Credentials(options));
  std::unique_ptr<AuthorityServer> server(
      new AuthorityServer(options, authority));
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, creds, &server->port_);
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
