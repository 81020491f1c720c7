#include "service/http/stepca_webhook.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/x509.h>

#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "service/core/base64.h"
#include "service/core/hashing.h"
#include "service/core/log.h"
#include "service/core/status_macros.h"
#include "service/http/basic_auth.h"
#include "service/http/http_common.h"

namespace scepca {
namespace {

namespace wh = ::scep::challenge::webhook::v1;

constexpr size_t kMinSecretBytes = 16;

void RespondJson(httplib::Response& response, int status,
                 const wh::StepCaResponseBody& body) {
  response.status = status;
  response.set_content(MessageToCompactJson(body), "application/json");
}

void RespondError(httplib::Response& response, int status,
                  absl::string_view code, absl::string_view message) {
  wh::StepCaResponseBody body;
  body.set_allow(false);
  body.mutable_error()->set_code(std::string(code));
  body.mutable_error()->set_message(std::string(message));
  RespondJson(response, status, body);
}

// The HTTP status for an authority error: 503 when it may work on a retry,
// 500 otherwise.
int StatusForAuthorityError(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kAborted:
      return 503;
    default:
      return 500;
  }
}

// Identifies a request in logs: step-ca's webhook id and request id (both
// set by step-ca, so passed through LogSafe), and the peer.
std::string RequestTag(const httplib::Request& request) {
  std::string tag = absl::StrCat("from ", LogSafe(request.remote_addr));
  if (request.has_header("X-Smallstep-Webhook-ID")) {
    absl::StrAppend(
        &tag, ", webhook ",
        LogSafe(request.get_header_value("X-Smallstep-Webhook-ID")));
  }
  if (request.has_header("X-Request-Id")) {
    absl::StrAppend(&tag, ", request ",
                    LogSafe(request.get_header_value("X-Request-Id")));
  }
  return tag;
}

}  // namespace

absl::StatusOr<std::vector<SecretBytes>> LoadStepCaSecretFile(
    const std::string& path) {
  SCEPCA_ASSIGN_OR_RETURN(std::string text,
                          ReadPrivateFile(path, "step-ca webhook secret file"));
  std::vector<SecretBytes> keys;
  int line_number = 0;
  absl::Status status = absl::OkStatus();
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    absl::StatusOr<std::string> key = Base64Decode(line);
    if (!key.ok() || key->size() < kMinSecretBytes) {
      if (key.ok()) OPENSSL_cleanse(key->data(), key->size());
      status = absl::InvalidArgumentError(absl::StrCat(
          path, ": line ", line_number,
          ": a step-ca webhook secret must be standard base64 of at least ",
          kMinSecretBytes, " bytes (the 'secret' step-ca printed)"));
      break;
    }
    keys.emplace_back(*std::move(key));
  }
  OPENSSL_cleanse(text.data(), text.size());
  if (!status.ok()) return status;
  if (keys.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": no step-ca webhook secret in the file"));
  }
  return keys;
}

std::string StepCaSignature(absl::string_view key, absl::string_view body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  static const unsigned char kEmpty = 0;
  const unsigned char* key_bytes =
      key.empty() ? &kEmpty
                  : reinterpret_cast<const unsigned char*>(key.data());
  if (HMAC(EVP_sha256(), key_bytes, static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(body.data()), body.size(),
           mac, &mac_len) == nullptr) {
    return "";
  }
  std::string hex =
      HexEncode(absl::string_view(reinterpret_cast<const char*>(mac), mac_len));
  OPENSSL_cleanse(mac, sizeof(mac));
  return hex;
}

bool VerifyStepCaSignature(absl::string_view key, absl::string_view body,
                           absl::string_view header) {
  const std::string expected = StepCaSignature(key, body);
  if (expected.empty()) return false;
  const std::string presented =
      absl::AsciiStrToLower(absl::StripAsciiWhitespace(header));
  return ConstantTimeEquals(presented, expected);
}

absl::Status CheckStepCaTimestamp(absl::string_view timestamp, absl::Time now,
                                  absl::Duration max_skew) {
  absl::Time t;
  std::string err;
  // RFC 3339 ends in "Z" or "+hh:mm"/"-hh:mm"; absl alone also takes "+hhmm".
  const size_t n = timestamp.size();
  const bool zone_ok =
      n > 6 && (timestamp[n - 1] == 'Z' || timestamp[n - 1] == 'z' ||
                ((timestamp[n - 6] == '+' || timestamp[n - 6] == '-') &&
                 timestamp[n - 3] == ':'));
  if (!zone_ok ||
      !absl::ParseTime(absl::RFC3339_full, std::string(timestamp), &t, &err)) {
    return absl::InvalidArgumentError(
        absl::StrCat("timestamp '", LogSafe(timestamp), "' is not RFC 3339"));
  }
  const absl::Duration skew = absl::AbsDuration(now - t);
  if (skew > max_skew) {
    return absl::OutOfRangeError(absl::StrCat(
        "timestamp ", LogSafe(timestamp), " is ", absl::FormatDuration(skew),
        t < now ? " old" : " in the future", "; at most ",
        absl::FormatDuration(max_skew), " is accepted (--stepca-max-skew)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<CertificateFacts> ReadCertificateFacts(absl::string_view der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      d2i_X509(nullptr, &p, static_cast<long>(der.size())), &X509_free);
  if (cert == nullptr ||
      p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
    return absl::InvalidArgumentError(
        "x509Certificate.raw is not a DER "
        "certificate");
  }
  std::unique_ptr<BIGNUM, decltype(&BN_free)> serial(
      ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert.get()), nullptr),
      &BN_free);
  if (serial == nullptr) {
    return absl::InvalidArgumentError("the certificate's serial is unreadable");
  }
  char* hex = BN_bn2hex(serial.get());
  if (hex == nullptr) return absl::InternalError("BN_bn2hex failed");
  CertificateFacts facts;
  facts.serial_hex = absl::AsciiStrToLower(hex);
  OPENSSL_free(hex);
  facts.sha256_hex = HexEncode(Sha256(der));
  return facts;
}

StepCaWebhook::StepCaWebhook(ChallengeAuthority* authority, const Clock* clock,
                             std::vector<SecretBytes> keys,
                             HttpUsersHolder* users,
                             StepCaWebhookOptions options)
    : authority_(authority),
      clock_(clock),
      keys_(std::move(keys)),
      users_(users),
      options_(options) {}

bool StepCaWebhook::Admit(const httplib::Request& request,
                          httplib::Response& response, absl::string_view hook,
                          wh::StepCaRequestBody* body) {
  // The signature first: it is cheap, and nothing unsigned costs a hash.
  if (!request.has_header("X-Smallstep-Signature")) {
    LogWarning(absl::StrCat("step-ca ", hook,
                            ": refused: no X-Smallstep-Signature (",
                            RequestTag(request), ")"));
    RespondError(response, 401, "unauthenticated",
                 "X-Smallstep-Signature is missing");
    return false;
  }
  // Every key is tried (no early exit), so timing does not tell which.
  const std::string signature =
      request.get_header_value("X-Smallstep-Signature");
  bool signed_ok = false;
  for (const SecretBytes& key : keys_) {
    signed_ok |= VerifyStepCaSignature(key.view(), request.body, signature);
  }
  if (!signed_ok) {
    LogWarning(absl::StrCat("step-ca ", hook,
                            ": refused: bad X-Smallstep-Signature (",
                            RequestTag(request),
                            "); is --stepca-webhook-secret-file the "
                            "webhook's secret?"));
    RespondError(response, 401, "unauthenticated",
                 "X-Smallstep-Signature does not match");
    return false;
  }
  if (users_ != nullptr && request.has_header("Authorization")) {
    AuthResult auth =
        AuthenticateRequest(request, *users_, /*allow_bearer=*/true);
    if (auth.outcome != AuthOutcome::kAccepted) {
      LogWarning(absl::StrCat("step-ca ", hook,
                              ": refused: ", DescribeAuthFailure(auth), " (",
                              RequestTag(request), ")"));
      RespondError(response, 401, "unauthenticated", "bad credentials");
      return false;
    }
  }
  if (absl::Status parsed = ParseJsonBody(request.body, body); !parsed.ok()) {
    LogWarning(absl::StrCat("step-ca ", hook, ": refused: ", parsed.message(),
                            " (", RequestTag(request), ")"));
    RespondError(response, 400, "invalid_argument", parsed.message());
    return false;
  }
  if (absl::Status fresh = CheckStepCaTimestamp(
          body->timestamp(), clock_->Now(), options_.max_skew);
      !fresh.ok()) {
    LogWarning(absl::StrCat("step-ca ", hook, ": refused: ", fresh.message(),
                            " (", RequestTag(request), ")"));
    const bool malformed = absl::IsInvalidArgument(fresh);
    RespondError(response, malformed ? 400 : 401,
                 malformed ? "invalid_argument" : "stale_request",
                 fresh.message());
    return false;
  }
  return true;
}

void StepCaWebhook::HandleChallenge(const httplib::Request& request,
                                    httplib::Response& response) {
  wh::StepCaRequestBody body;
  if (!Admit(request, response, "SCEPCHALLENGE", &body)) return;
  ValidateRequest validate;
  validate.challenge = body.scep_challenge();
  validate.csr = body.x509_certificate_request().raw();
  validate.transaction_id = body.scep_transaction_id();
  const std::string context = absl::StrCat(
      "transaction ", LogSafe(body.scep_transaction_id()),
      body.provisioner_name().empty()
          ? ""
          : absl::StrCat(", provisioner ", LogSafe(body.provisioner_name())),
      validate.csr.empty() ? ", no CSR" : ", with CSR", ", ",
      RequestTag(request));
  absl::StatusOr<Verdict> verdict = authority_->Validate(validate);
  OPENSSL_cleanse(validate.challenge.data(), validate.challenge.size());
  if (!verdict.ok()) {
    if (absl::IsInvalidArgument(verdict.status())) {
      LogInfo(absl::StrCat("step-ca SCEPCHALLENGE: deny: invalid request: ",
                           verdict.status().message(), " (", context, ")"));
      RespondError(response, 200, "invalid_argument",
                   verdict.status().message());
      return;
    }
    LogError(absl::StrCat("step-ca SCEPCHALLENGE: cannot decide: ",
                          verdict.status().ToString(), " (", context, ")"));
    RespondError(response, StatusForAuthorityError(verdict.status()),
                 "unavailable", "the authority cannot decide now; retry");
    return;
  }
  wh::StepCaResponseBody answer;
  const std::string challenge_id =
      verdict->record.has_value() ? verdict->record->id : "";
  if (!verdict->valid) {
    LogInfo(absl::StrCat(
        "step-ca SCEPCHALLENGE: deny: ", ReasonName(verdict->reason),
        challenge_id.empty() ? ""
                             : absl::StrCat(", challenge id ", challenge_id),
        " (", context, ")"));
    answer.set_allow(false);
    answer.mutable_error()->set_code(std::string(ReasonName(verdict->reason)));
    answer.mutable_error()->set_message(verdict->message);
    RespondJson(response, 200, answer);
    return;
  }
  answer.set_allow(true);
  wh::StepCaResponseData* data = answer.mutable_data();
  if (verdict->record.has_value()) {
    data->set_device_id(verdict->record->device_id);
    data->set_user_id(verdict->record->user_id);
    data->set_challenge_id(verdict->record->id);
    for (const auto& [key, value] : verdict->record->labels) {
      (*data->mutable_labels())[key] = value;
    }
  }
  LogInfo(absl::StrCat("step-ca SCEPCHALLENGE: allow: challenge id ",
                       data->challenge_id(), ", device ",
                       LogSafe(data->device_id()),
                       verdict->repeat ? " (repeat)" : "", " (", context, ")"));
  RespondJson(response, 200, answer);
}

void StepCaWebhook::HandleNotify(const httplib::Request& request,
                                 httplib::Response& response) {
  wh::StepCaRequestBody body;
  if (!Admit(request, response, "NOTIFYING", &body)) return;
  wh::StepCaResponseBody answer;
  answer.set_allow(true);
  RespondJson(response, 200, answer);

  const std::string context =
      absl::StrCat("transaction ", LogSafe(body.scep_transaction_id()), ", ",
                   RequestTag(request));
  OutcomeReport report;
  report.transaction_id = body.scep_transaction_id();
  if (!body.x509_certificate().raw().empty()) {
    absl::StatusOr<CertificateFacts> facts =
        ReadCertificateFacts(body.x509_certificate().raw());
    if (!facts.ok()) {
      LogWarning(absl::StrCat("step-ca NOTIFYING: ignored: ",
                              facts.status().message(), " (", context, ")"));
      return;
    }
    report.issued = true;
    report.certificate_serial = facts->serial_hex;
    report.certificate_sha256 = facts->sha256_hex;
  } else if (!body.scep_error_description().empty() ||
             body.scep_error_code() != 0) {
    report.issued = false;
    report.failure =
        body.scep_error_description().empty()
            ? absl::StrCat("scepErrorCode ", body.scep_error_code())
            : body.scep_error_description();
  } else {
    LogWarning(
        absl::StrCat("step-ca NOTIFYING: ignored: neither x509Certificate nor "
                     "scepErrorDescription in the body (",
                     context, ")"));
    return;
  }
  if (report.transaction_id.empty()) {
    LogWarning(absl::StrCat(
        "step-ca NOTIFYING: ignored: no scepTransactionID (", context, ")"));
    return;
  }
  absl::StatusOr<std::string> challenge_id = authority_->NotifyOutcome(report);
  const std::string what =
      report.issued ? absl::StrCat("issued serial ", report.certificate_serial,
                                   ", sha256 ", report.certificate_sha256)
                    : absl::StrCat("failed: ", LogSafe(report.failure));
  if (!challenge_id.ok()) {
    (absl::IsNotFound(challenge_id.status()) ? LogInfo
                                             : LogWarning)(absl::StrCat(
        "step-ca NOTIFYING: not recorded (", challenge_id.status().message(),
        "): ", what, " (", context, ")"));
    return;
  }
  LogInfo(absl::StrCat("step-ca NOTIFYING: challenge id ", *challenge_id, ": ",
                       what, " (", context, ")"));
}

}  // namespace scepca
