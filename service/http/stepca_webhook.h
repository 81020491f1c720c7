// File: stepca_webhook.h
// step-ca's provisioner webhooks for SCEP (smallstep/certificates >= v0.24.2):
//
//   POST /step-ca/scepchallenge  kind SCEPCHALLENGE: validates (and consumes)
//                                the challenge, with the CSR when step-ca
//                                sends it (>= v0.25.0).
//   POST /step-ca/notify         kind NOTIFYING: records the outcome of the
//                                enrollment (certificate or signing error).
//
// Every request must carry X-Smallstep-Signature: the lower-case hex
// HMAC-SHA256 of the raw body under a base64-decoded webhook secret, and a
// body "timestamp" within --stepca-max-skew of now (the only replay guard
// the protocol has). When a users file is configured, an Authorization
// header (Basic, or "Bearer NAME:PASSWORD") is checked too.
//
// Answers (step-ca sends no Content-Type and needs none back):
//   200 {"allow":true,"data":{"device_id":..,"user_id":..,"challenge_id":..,
//        "labels":{..}}}                       a valid challenge
//   200 {"allow":false,"error":{"code":<reason>,"message":..}}  a refusal
//   401 bad or missing signature or credentials, stale timestamp
//   400 a body that is not step-ca's JSON
//   503 the authority cannot decide now (step-ca retries once after 1 s)
// /step-ca/notify answers 200 {"allow":true} once the signature checks out,
// whatever becomes of the report (step-ca ignores the answer); failures are
// logged.
#ifndef SCEPCA_SERVICE_HTTP_STEPCA_WEBHOOK_H_
#define SCEPCA_SERVICE_HTTP_STEPCA_WEBHOOK_H_

#include <httplib.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "scep/challenge/webhook/v1/webhooks.pb.h"
#include "service/core/challenge_authority.h"
#include "service/core/clock.h"
#include "service/core/secret_bytes.h"
#include "service/http/http_users.h"

namespace scepca {

// Reads the webhook secrets file: one secret per line, standard base64 as
// step-ca prints it when a webhook is added (64 random bytes); blank lines
// and lines starting with "#" are skipped. Each step-ca webhook has its own
// secret, so the file lists those of the SCEPCHALLENGE and NOTIFYING hooks
// (and, during a change, old and new). Returns kFailedPrecondition if the
// file is accessible to group or others, and kInvalidArgument (with the line
// number) for a line that is not base64 of at least 16 bytes or a file with
// no secret.
absl::StatusOr<std::vector<SecretBytes>> LoadStepCaSecretFile(
    const std::string& path);

// Returns the lower-case hex HMAC-SHA256 of `body` under `key`.
std::string StepCaSignature(absl::string_view key, absl::string_view body);

// Returns true iff `header` is the hex HMAC-SHA256 of `body` under `key`,
// compared in constant time.
bool VerifyStepCaSignature(absl::string_view key, absl::string_view body,
                           absl::string_view header);

// Checks a body timestamp (RFC 3339, any fraction, "Z" or an offset).
// Returns kInvalidArgument if it is malformed and kOutOfRange if it is more
// than `max_skew` before or after `now`.
absl::Status CheckStepCaTimestamp(absl::string_view timestamp, absl::Time now,
                                  absl::Duration max_skew);

// Reads a DER certificate's serial (lower-case hex, no leading zeros) and
// the lower-case hex SHA-256 of the DER. Returns kInvalidArgument if `der`
// is not one certificate.
struct CertificateFacts {
  std::string serial_hex;
  std::string sha256_hex;
};
absl::StatusOr<CertificateFacts> ReadCertificateFacts(absl::string_view der);

struct StepCaWebhookOptions {
  absl::Duration max_skew = absl::Minutes(5);
};

// The two handlers. Thread-safe; `authority`, `clock` and `users` (which may
// be null: no Authorization check) must outlive it.
class StepCaWebhook {
 public:
  StepCaWebhook(ChallengeAuthority* authority, const Clock* clock,
                std::vector<SecretBytes> keys, HttpUsersHolder* users,
                StepCaWebhookOptions options);

  void HandleChallenge(const httplib::Request& request,
                       httplib::Response& response);
  void HandleNotify(const httplib::Request& request,
                    httplib::Response& response);

 private:
  // Checks the signature, credentials, body and timestamp of a request for
  // `hook`. Returns false after writing the refusal into `response`.
  bool Admit(const httplib::Request& request, httplib::Response& response,
             absl::string_view hook,
             scep::challenge::webhook::v1::StepCaRequestBody* body);

  ChallengeAuthority* const authority_;
  const Clock* const clock_;
  const std::vector<SecretBytes> keys_;
  HttpUsersHolder* const users_;
  const StepCaWebhookOptions options_;
};

}  // namespace scepca

#endif  // SCEPCA_SERVICE_HTTP_STEPCA_WEBHOOK_H_
