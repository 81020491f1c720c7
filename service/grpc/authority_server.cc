#include "service/grpc/authority_server.h"

#include <fcntl.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "service/core/log.h"
#include "service/core/status_macros.h"

namespace scepca {

namespace internal {

// One ChallengeAuthority call at a time, taken from a completion queue: asks
// gRPC for a call of its method, runs it on the serving thread that took it,
// answers, and asks again. Its tag is itself.
class AsyncCallSlot {
 public:
  virtual ~AsyncCallSlot() = default;
  // Asks gRPC for the next call of this slot's method.
  virtual void Await() = 0;
  // Continues after this slot's tag came out of the queue with `ok`.
  virtual void Proceed(bool ok) = 0;
};

}  // namespace internal

namespace {

namespace v1 = ::scep::challenge::v1;

template <typename Request, typename Response>
class UnaryCallSlot final : public internal::AsyncCallSlot {
 public:
  using RequestMethod = void (v1::ChallengeAuthority::AsyncService::*)(
      grpc::ServerContext*, Request*,
      grpc::ServerAsyncResponseWriter<Response>*, grpc::CompletionQueue*,
      grpc::ServerCompletionQueue*, void*);
  using Handler = grpc::Status (ChallengeService::*)(grpc::ServerContext*,
                                                     const Request*, Response*);

  UnaryCallSlot(v1::ChallengeAuthority::AsyncService* async_service,
                ChallengeService* service, grpc::ServerCompletionQueue* queue,
                internal::ServingState* serving, RequestMethod request,
                Handler handler)
      : async_service_(async_service),
        service_(service),
        queue_(queue),
        serving_(serving),
        request_method_(request),
        handler_(handler) {}

  void Await() override {
    writer_.reset();
    context_.emplace();
    request_.Clear();
    response_.Clear();
    writer_.emplace(&*context_);
    answering_ = false;
    (async_service_->*request_method_)(&*context_, &request_, &*writer_, queue_,
                                       queue_, this);
  }

  void Proceed(bool ok) override {
    // Counted before `stopping` is read (both sequentially consistent), so
    // Shutdown() either sees this thread running or this thread sees
    // `stopping`.
    serving_->running.fetch_add(1);
    ProceedCounted(ok);
    serving_->running.fetch_sub(1);
  }

 private:
  void ProceedCounted(bool ok) {
    if (answering_) {
      // The answer went out (or the caller went away): take the next call.
      if (!serving_->stopping.load()) Await();
      return;
    }
    if (!ok) return;  // The server is shutting down.
    const grpc::Status status =
        (service_->*handler_)(&*context_, &request_, &response_);
    answering_ = true;
    if (status.ok()) {
      writer_->Finish(response_, status, this);
    } else {
      writer_->FinishWithError(status, this);
    }
  }

  v1::ChallengeAuthority::AsyncService* const async_service_;
  ChallengeService* const service_;
  grpc::ServerCompletionQueue* const queue_;
  internal::ServingState* const serving_;
  const RequestMethod request_method_;
  const Handler handler_;
  std::optional<grpc::ServerContext> context_;
  std::optional<grpc::ServerAsyncResponseWriter<Response>> writer_;
  Request request_;
  Response response_;
  bool answering_ = false;
};

template <typename Request, typename Response>
std::unique_ptr<internal::AsyncCallSlot> MakeSlot(
    v1::ChallengeAuthority::AsyncService* async_service,
    ChallengeService* service, grpc::ServerCompletionQueue* queue,
    internal::ServingState* serving,
    typename UnaryCallSlot<Request, Response>::RequestMethod request,
    typename UnaryCallSlot<Request, Response>::Handler handler) {
  return std::make_unique<UnaryCallSlot<Request, Response>>(
      async_service, service, queue, serving, request, handler);
}

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

void ApplyServerSettings(const ServerOptions& options,
                         grpc::ServerBuilder* builder) {
  builder->SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  builder->SetMaxSendMessageSize(4 * 1024 * 1024);
  builder->AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                              options.max_concurrent_streams);
  builder->AddChannelArgument("grpc.server_handshake_timeout_ms", 10'000);
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60'000);
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20'000);
  grpc::ResourceQuota quota("scepca");
  quota.SetMaxThreads(options.max_threads);
  builder->SetResourceQuota(quota);
}

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
  builder.RegisterService(&server->async_service_);
  ApplyServerSettings(options, &builder);
  const int threads = std::max(1, options.max_threads);
  const int queues = std::min(threads, options.completion_queues > 0
                                           ? options.completion_queues
                                           : (threads + 63) / 64);
  for (int i = 0; i < queues; ++i) {
    server->queues_.push_back(builder.AddCompletionQueue());
  }
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen));
  }
  server->StartServing(threads);
  // The first status is published before Start returns, so that a health
  // check never finds the service name unknown.
  const bool serving = server->PublishHealth(nullptr);
  server->health_thread_ =
      std::thread([s = server.get(), serving] { s->WatchHealth(serving); });
  return server;
}

void AuthorityServer::StartServing(int threads) {
  // Each queue holds, per method, as many waiting calls as it has threads, so
  // that all of them can be busy with one method. Every RPC of the service
  // needs its slots here: one without them is never answered
  // (ChallengeServiceTest.EveryMethodOfTheServiceIsServed checks).
  const int queues = static_cast<int>(queues_.size());
  for (int q = 0; q < queues; ++q) {
    grpc::ServerCompletionQueue* cq = queues_[q].get();
    const int per_queue = (threads + queues - 1 - q) / queues;
    for (int i = 0; i < per_queue; ++i) {
      using S = v1::ChallengeAuthority::AsyncService;
      using C = ChallengeService;
      slots_.push_back(
          MakeSlot<v1::IssueChallengeRequest, v1::IssueChallengeResponse>(
              &async_service_, &service_, cq, &serving_,
              &S::RequestIssueChallenge, &C::IssueChallenge));
      slots_.push_back(MakeSlot<v1::ValidateRequest, v1::ValidateResponse>(
          &async_service_, &service_, cq, &serving_, &S::RequestValidate,
          &C::Validate));
      slots_.push_back(MakeSlot<v1::RevokeRequest, v1::RevokeResponse>(
          &async_service_, &service_, cq, &serving_, &S::RequestRevoke,
          &C::Revoke));
      slots_.push_back(MakeSlot<v1::GetChallengeRequest, v1::ChallengeInfo>(
          &async_service_, &service_, cq, &serving_, &S::RequestGetChallenge,
          &C::GetChallenge));
      slots_.push_back(
          MakeSlot<v1::ListChallengesRequest, v1::ListChallengesResponse>(
              &async_service_, &service_, cq, &serving_,
              &S::RequestListChallenges, &C::ListChallenges));
      slots_.push_back(
          MakeSlot<v1::NotifyOutcomeRequest, v1::NotifyOutcomeResponse>(
              &async_service_, &service_, cq, &serving_,
              &S::RequestNotifyOutcome, &C::NotifyOutcome));
      slots_.push_back(MakeSlot<v1::GetStatsRequest, v1::Stats>(
          &async_service_, &service_, cq, &serving_, &S::RequestGetStats,
          &C::GetStats));
    }
  }
  for (auto& slot : slots_) slot->Await();
  for (int i = 0; i < threads; ++i) {
    serving_threads_.emplace_back(&AuthorityServer::Serve,
                                  queues_[i % queues].get());
  }
}

void AuthorityServer::Serve(grpc::ServerCompletionQueue* cq) {
  void* tag = nullptr;
  bool ok = false;
  while (cq->Next(&tag, &ok)) {
    static_cast<internal::AsyncCallSlot*>(tag)->Proceed(ok);
  }
}

bool AuthorityServer::PublishHealth(const bool* last_serving) {
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  const absl::Status status = authority_->CheckHealth();
  const bool serving = status.ok();
  if (last_serving == nullptr || serving != *last_serving) {
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
  return serving;
}

void AuthorityServer::WatchHealth(bool serving) {
  while (!stop_.WaitForNotificationWithTimeout(options_.health_interval)) {
    serving = PublishHealth(&serving);
  }
}

void AuthorityServer::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&shutdown_mu_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  stop_.Notify();
  if (health_thread_.joinable()) health_thread_.join();
  serving_.stopping.store(true);
  if (server_ != nullptr) {
    server_->GetHealthCheckService()->Shutdown();
    // Serving threads keep running calls in flight until they finish or the
    // grace period ends (then gRPC cancels them).
    server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  }
  // A call whose handler still runs (it may wait for the store up to its
  // timeouts) answers on its queue: shut the queues down only after it did,
  // as gRPC's synchronous server waited for its handlers.
  while (serving_.running.load() > 0) absl::SleepFor(absl::Milliseconds(1));
  for (auto& cq : queues_) cq->Shutdown();
  if (serving_threads_.empty()) {
    // Never served: drain the queues here.
    for (auto& cq : queues_) Serve(cq.get());
  }
  for (std::thread& t : serving_threads_) t.join();
  if (server_ != nullptr) server_->Wait();
}

AuthorityServer::~AuthorityServer() { Shutdown(absl::Seconds(5)); }

}  // namespace scepca
