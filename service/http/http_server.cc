#include "service/http/http_server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <chrono>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "service/core/log.h"
#include "service/core/status_macros.h"
#include "service/http/jamf_webhook.h"
#include "service/http/ndes_page.h"
#include "service/http/stepca_webhook.h"

namespace scepca {
namespace {

struct HostPort {
  std::string host;  // Without brackets.
  int port = 0;
};

absl::StatusOr<HostPort> ParseListen(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  HostPort out;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &out.port) || out.port < 0 ||
      out.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http-listen: '", listen,
                     "' is not HOST:PORT (e.g. 127.0.0.1:8080)"));
  }
  out.host = listen.substr(0, colon);
  if (out.host.size() >= 2 && out.host.front() == '[' &&
      out.host.back() == ']') {
    out.host = out.host.substr(1, out.host.size() - 2);
  }
  return out;
}

bool IsLoopback(const std::string& host) {
  if (host == "localhost") return true;
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6;
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    return IN6_IS_ADDR_LOOPBACK(&v6);
  }
  return false;
}

std::chrono::microseconds ToChrono(absl::Duration d) {
  return std::chrono::microseconds(absl::ToInt64Microseconds(d));
}

absl::Status CheckOptions(const HttpServerOptions& options) {
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "--http-tls-cert and --http-tls-key go together");
  }
  if (!options.ndes_ca_cert_file.empty() && options.users_file.empty()) {
    return absl::InvalidArgumentError(
        "--ndes-ca-cert is for the NDES page, which needs --http-users-file");
  }
  if (options.threads < 1 || options.threads > 256) {
    return absl::InvalidArgumentError(
        "--http-threads must be between 1 and 256");
  }
  if (options.stepca_max_skew <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--stepca-max-skew must be positive");
  }
  return absl::OkStatus();
}

}  // namespace

void HttpServerOptions::AddFlags(FlagSet* flags) {
  flags->String("http-listen", &listen,
                "HOST:PORT for the HTTP webhooks (step-ca, NDES page, Jamf); "
                "off if empty. Plain HTTP only on loopback");
  flags->String("http-tls-cert", &tls_cert_file,
                "PEM certificate chain: serve the webhooks over HTTPS");
  flags->String("http-tls-key", &tls_key_file,
                "PEM private key of --http-tls-cert");
  flags->String("http-users-file", &users_file,
                "accounts of the NDES page and Jamf webhook (mode 0600; "
                "reloaded on SIGHUP; see 'challengectl http-user')");
  flags->String("stepca-webhook-secret-file", &stepca_secret_file,
                "file (mode 0600) with the secrets of step-ca's SCEPCHALLENGE "
                "and NOTIFYING webhooks, one a line, base64 as step-ca "
                "printed them");
  flags->Duration("stepca-max-skew", &stepca_max_skew,
                  "how far a step-ca webhook's timestamp may be from now");
  flags->String("ndes-ca-cert", &ndes_ca_cert_file,
                "CA certificate (PEM or DER) whose thumbprint the NDES page "
                "shows");
  flags->Int("http-threads", &threads, "threads serving HTTP connections");
}

HttpServer::HttpServer() = default;

HttpServer::~HttpServer() { Stop(); }

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    const HttpServerOptions& options, ChallengeAuthority* authority) {
  SCEPCA_RETURN_IF_ERROR(CheckOptions(options));
  SCEPCA_ASSIGN_OR_RETURN(HostPort address, ParseListen(options.listen));
  const bool tls = !options.tls_cert_file.empty();
  if (!tls && !IsLoopback(address.host)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--http-listen ", options.listen,
        ": plain HTTP carries passwords and challenges, so it is only served "
        "on loopback; give --http-tls-cert and --http-tls-key, or listen on "
        "127.0.0.1 behind a TLS proxy"));
  }
  const Clock* clock =
      options.clock != nullptr ? options.clock : RealClock::Get();
  std::unique_ptr<HttpServer> http(new HttpServer());
  if (!options.users_file.empty()) {
    SCEPCA_ASSIGN_OR_RETURN(
        http->users_,
        HttpUsersHolder::Load(options.users_file, options.users_file_options,
                              options.users_options, clock));
    std::string thumbprint;
    if (!options.ndes_ca_cert_file.empty()) {
      absl::StatusOr<std::string> t =
          NdesThumbprintOfCertFile(options.ndes_ca_cert_file);
      if (!t.ok()) {
        return absl::Status(
            t.status().code(),
            absl::StrCat("--ndes-ca-cert: ", t.status().message()));
      }
      thumbprint = *std::move(t);
    }
    http->ndes_ = std::make_unique<NdesPage>(authority, clock,
                                             http->users_.get(), thumbprint);
    http->jamf_ = std::make_unique<JamfWebhook>(authority, http->users_.get());
  }
  if (!options.stepca_secret_file.empty()) {
    SCEPCA_ASSIGN_OR_RETURN(std::vector<SecretBytes> keys,
                            LoadStepCaSecretFile(options.stepca_secret_file));
    http->stepca_ = std::make_unique<StepCaWebhook>(
        authority, clock, std::move(keys), http->users_.get(),
        StepCaWebhookOptions{options.stepca_max_skew});
  }

  if (tls) {
    auto server = std::make_unique<httplib::SSLServer>(
        options.tls_cert_file.c_str(), options.tls_key_file.c_str());
    if (!server->is_valid()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--http-tls-cert ", options.tls_cert_file, " / --http-tls-key ",
          options.tls_key_file,
          ": cannot load the certificate and key (PEM, matching)"));
    }
    SSL_CTX_set_min_proto_version(server->ssl_context(), TLS1_2_VERSION);
    http->server_ = std::move(server);
  } else {
    http->server_ = std::make_unique<httplib::Server>();
  }
  httplib::Server& server = *http->server_;
  const size_t threads = static_cast<size_t>(options.threads);
  server.new_task_queue = [threads] {
    return new httplib::ThreadPool(threads);
  };
  server.set_payload_max_length(options.max_body_bytes);
  server.set_read_timeout(ToChrono(options.read_timeout));
  server.set_write_timeout(ToChrono(options.write_timeout));
  server.set_keep_alive_timeout(5);
  server.set_keep_alive_max_count(100);
  server.set_tcp_nodelay(true);
  // httplib's default also sets SO_REUSEPORT, which would let a second
  // instance share the port silently; keep only SO_REUSEADDR.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });

  std::vector<std::string> endpoints;
  if (http->stepca_ != nullptr) {
    StepCaWebhook* stepca = http->stepca_.get();
    server.Post("/step-ca/scepchallenge",
                [stepca](const httplib::Request& req, httplib::Response& res) {
                  stepca->HandleChallenge(req, res);
                });
    server.Post("/step-ca/notify",
                [stepca](const httplib::Request& req, httplib::Response& res) {
                  stepca->HandleNotify(req, res);
                });
    endpoints.push_back("POST /step-ca/scepchallenge");
    endpoints.push_back("POST /step-ca/notify");
  }
  if (http->ndes_ != nullptr) {
    NdesPage* ndes = http->ndes_.get();
    // IIS matches paths case-insensitively; so does this.
    server.Get(
        "/[Cc][Ee][Rr][Tt][Ss][Rr][Vv]/[Mm][Ss][Cc][Ee][Pp]_[Aa][Dd][Mm][Ii]"
        "[Nn]/?",
        [ndes](const httplib::Request& req, httplib::Response& res) {
          ndes->Handle(req, res);
        });
    JamfWebhook* jamf = http->jamf_.get();
    server.Post("/jamf/scepchallenge",
                [jamf](const httplib::Request& req, httplib::Response& res) {
                  jamf->Handle(req, res);
                });
    endpoints.push_back("GET /certsrv/mscep_admin/");
    endpoints.push_back("POST /jamf/scepchallenge");
  }

  // Operations: liveness, readiness (the store answers), metrics.
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  server.Get("/readyz",
             [authority](const httplib::Request&, httplib::Response& res) {
               const absl::Status health = authority->CheckHealth();
               res.status = health.ok() ? 200 : 503;
               res.set_content(health.ok() ? "ready\n" : "store unavailable\n",
                               "text/plain");
             });
  endpoints.push_back("GET /healthz");
  endpoints.push_back("GET /readyz");
  if (options.metrics) {
    server.Get("/metrics", [metrics = options.metrics](const httplib::Request&,
                                                       httplib::Response& res) {
      res.set_content(metrics(), "text/plain; version=0.0.4");
    });
    endpoints.push_back("GET /metrics");
  }

  if (address.port == 0) {
    http->port_ = server.bind_to_any_port(address.host);
  } else {
    http->port_ =
        server.bind_to_port(address.host, address.port) ? address.port : -1;
  }
  if (http->port_ <= 0) {
    return absl::UnavailableError(absl::StrCat("--http-listen ", options.listen,
                                               ": cannot bind (in use?)"));
  }
  const bool v6 = address.host.find(':') != std::string::npos;
  http->base_url_ = absl::StrCat(tls ? "https://" : "http://", v6 ? "[" : "",
                                 address.host, v6 ? "]" : "", ":", http->port_);
  httplib::Server* raw = http->server_.get();
  http->thread_ = std::thread([raw] { raw->listen_after_bind(); });
  // stop() only works once the loop runs; wait for it.
  for (int i = 0; i < 5000 && !raw->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!raw->is_running()) {
    http->Stop();
    return absl::UnavailableError("the HTTP listener did not start");
  }
  LogInfo(absl::StrCat(
      "HTTP webhooks at ", http->base_url_, ": ",
      absl::StrJoin(endpoints, ", "),
      http->users_ != nullptr
          ? absl::StrCat("; ", http->users_->Get()->accounts().size(),
                         " accounts from ", options.users_file)
          : ""));
  return http;
}

void HttpServer::ReloadUsers() {
  if (users_ == nullptr) return;
  if (absl::Status st = users_->Reload(); !st.ok()) {
    LogError(absl::StrCat("SIGHUP: keeping the current HTTP accounts: ",
                          st.message()));
    return;
  }
  LogInfo(absl::StrCat("SIGHUP: reloaded ", users_->Get()->accounts().size(),
                       " HTTP accounts from ", users_->path()));
}

void HttpServer::Stop() {
  if (server_ != nullptr) server_->stop();
  if (thread_.joinable()) thread_.join();
}

absl::StatusOr<std::unique_ptr<HttpServer>> StartHttpServerIfConfigured(
    const HttpServerOptions& options, ChallengeAuthority* authority) {
  if (options.listen.empty()) {
    if (!options.users_file.empty() || !options.stepca_secret_file.empty() ||
        !options.tls_cert_file.empty() || !options.ndes_ca_cert_file.empty()) {
      return absl::InvalidArgumentError(
          "HTTP flags (--http-users-file, --stepca-webhook-secret-file, "
          "--http-tls-cert, --ndes-ca-cert) need --http-listen");
    }
    return std::unique_ptr<HttpServer>();
  }
  return HttpServer::Start(options, authority);
}

}  // namespace scepca
