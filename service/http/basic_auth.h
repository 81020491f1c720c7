// File: basic_auth.h
// Checks the credentials of an HTTP request against the users file: HTTP
// Basic (RFC 7617) as NDES clients, Jamf and Fleet send it, and for step-ca
// also "Authorization: Bearer NAME:PASSWORD".
#ifndef SCEPCA_SERVICE_HTTP_BASIC_AUTH_H_
#define SCEPCA_SERVICE_HTTP_BASIC_AUTH_H_

#include <httplib.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "service/http/http_users.h"

namespace scepca {

// The value of WWW-Authenticate on every 401 of a Basic-protected endpoint.
// Only Basic is offered: NTLM/Negotiate clients (go-ntlmssp) fall back to it.
inline constexpr char kWwwAuthenticateBasic[] =
    "Basic realm=\"SCEP Challenge Authority\"";

struct Credentials {
  std::string name;
  std::string password;  // Secret: never log it.
};

// Parses an Authorization value "Basic base64(name:password)" (the scheme is
// case-insensitive; the password may contain ':'). Returns kInvalidArgument
// if it is not such a value.
absl::StatusOr<Credentials> ParseBasicAuthorization(absl::string_view value);

// Parses "Bearer NAME:PASSWORD" (the token is the users-file name and
// password joined by ':', not base64). Returns kInvalidArgument otherwise.
absl::StatusOr<Credentials> ParseBearerAuthorization(absl::string_view value);

enum class AuthOutcome {
  kMissing,    // No Authorization header.
  kMalformed,  // A header that is not Basic (or Bearer where allowed).
  kRejected,   // Unknown name or wrong password.
  kAccepted,
};

struct AuthResult {
  AuthOutcome outcome = AuthOutcome::kMissing;
  absl::optional<HttpAccount> account;  // Set when kAccepted.
  // The account name given, if it is an account of the users file (an
  // unknown name is not kept: it might be a password typed in the wrong
  // field). For logs.
  std::string known_name;
};

// Checks `request`'s Authorization header against `users`.
AuthResult AuthenticateRequest(const httplib::Request& request,
                               HttpUsersHolder& users, bool allow_bearer);

// Describes a failed AuthResult for logs ("a wrong password for account
// 'fleet'"), never quoting an unknown name.
std::string DescribeAuthFailure(const AuthResult& result);

// Answers 401 with WWW-Authenticate: kWwwAuthenticateBasic and a short
// text/plain body.
void RespondUnauthorized(httplib::Response& response);

}  // namespace scepca

#endif  // SCEPCA_SERVICE_HTTP_BASIC_AUTH_H_
