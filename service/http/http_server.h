// File: http_server.h
// The HTTP listener for MDM and CA webhooks (off unless --http-listen is
// given), on cpp-httplib:
//
//   POST /step-ca/scepchallenge   step-ca SCEPCHALLENGE webhook
//   POST /step-ca/notify          step-ca NOTIFYING webhook
//        (both need --stepca-webhook-secret-file; see stepca_webhook.h)
//   GET  /certsrv/mscep_admin/    NDES-compatible challenge page
//   POST /jamf/scepchallenge      Jamf-style challenge URL
//        (both need --http-users-file; see ndes_page.h, jamf_webhook.h)
//
// Plain HTTP is only served on a loopback address (put a TLS proxy in front,
// or give --http-tls-cert and --http-tls-key). Bodies are capped (64 KiB),
// reads and writes time out (5 s), and a fixed pool of threads serves the
// connections.
//
// Example:
//   HttpServerOptions options;
//   options.AddFlags(&flags);
//   ...
//   absl::StatusOr<std::unique_ptr<HttpServer>> http =
//       StartHttpServerIfConfigured(options, authority.get());
#ifndef SCEPCA_SERVICE_HTTP_HTTP_SERVER_H_
#define SCEPCA_SERVICE_HTTP_HTTP_SERVER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/core/challenge_authority.h"
#include "service/core/clock.h"
#include "service/flags/flag_set.h"
#include "service/http/http_users.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace scepca {

class JamfWebhook;
class NdesPage;
class StepCaWebhook;

struct HttpServerOptions {
  // HOST:PORT ("[::1]:8443" for IPv6; port 0 picks a free port). Empty: no
  // HTTP listener.
  std::string listen;
  // PEM certificate chain and key for HTTPS; both or neither.
  std::string tls_cert_file;
  std::string tls_key_file;
  // The users file of the NDES page and the Jamf webhook (see http_users.h).
  std::string users_file;
  // step-ca's webhook secrets (one a line, base64 as step-ca printed them).
  std::string stepca_secret_file;
  absl::Duration stepca_max_skew = absl::Minutes(5);
  // CA certificate whose thumbprint the NDES page shows; none if empty.
  std::string ndes_ca_cert_file;

  int threads = 8;
  size_t max_body_bytes = 64 * 1024;
  absl::Duration read_timeout = absl::Seconds(5);
  absl::Duration write_timeout = absl::Seconds(5);

  // Not flags: the Prometheus text for GET /metrics (no /metrics if unset).
  std::function<std::string()> metrics;

  // Not flags: tests lower the accepted hash cost and inject a clock.
  UsersFileOptions users_file_options;
  HttpUsers::Options users_options;
  const Clock* clock = nullptr;  // Null: the real clock.

  // Registers --http-listen, --http-tls-cert, --http-tls-key,
  // --http-users-file, --stepca-webhook-secret-file, --stepca-max-skew,
  // --ndes-ca-cert and --http-threads on `flags`, bound to these fields.
  void AddFlags(FlagSet* flags);
};

// A running HTTP listener. Thread-safe.
class HttpServer {
 public:
  // Loads the files named in `options`, binds and starts serving.
  // `authority` must outlive the server. Returns kInvalidArgument for
  // inconsistent options or a bad file, kFailedPrecondition for a file
  // readable by group or others or plain HTTP on a non-loopback address,
  // kNotFound for a missing file, and kUnavailable if the address cannot be
  // bound.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      const HttpServerOptions& options, ChallengeAuthority* authority);

  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  ~HttpServer();

  // The bound port.
  int port() const { return port_; }
  // "http://127.0.0.1:8080" or "https://...".
  const std::string& base_url() const { return base_url_; }

  // Re-reads the users file (SIGHUP); logs the outcome. A bad file keeps the
  // current accounts. Does nothing without a users file.
  void ReloadUsers();

  // Stops accepting connections and waits for requests in flight.
  // Idempotent.
  void Stop();

 private:
  HttpServer();

  std::unique_ptr<HttpUsersHolder> users_;
  std::unique_ptr<StepCaWebhook> stepca_;
  std::unique_ptr<NdesPage> ndes_;
  std::unique_ptr<JamfWebhook> jamf_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::string base_url_;
};

// Returns null if `options.listen` is empty (and no other HTTP flag is set),
// else HttpServer::Start. Returns kInvalidArgument if HTTP flags are given
// without --http-listen.
absl::StatusOr<std::unique_ptr<HttpServer>> StartHttpServerIfConfigured(
    const HttpServerOptions& options, ChallengeAuthority* authority);

}  // namespace scepca

#endif  // SCEPCA_SERVICE_HTTP_HTTP_SERVER_H_
