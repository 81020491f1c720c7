#include "service/http/basic_auth.h"

#include <openssl/crypto.h>

#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "service/core/base64.h"

namespace scepca {
namespace {

// Strips a case-insensitive "<scheme> " prefix; false if absent.
bool ConsumeScheme(absl::string_view* value, absl::string_view scheme) {
  absl::string_view v = absl::StripLeadingAsciiWhitespace(*value);
  if (v.size() <= scheme.size() ||
      !absl::EqualsIgnoreCase(v.substr(0, scheme.size()), scheme) ||
      v[scheme.size()] != ' ') {
    return false;
  }
  *value = absl::StripAsciiWhitespace(v.substr(scheme.size() + 1));
  return true;
}

absl::StatusOr<Credentials> SplitNamePassword(absl::string_view text) {
  const size_t colon = text.find(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError("credentials are not NAME:PASSWORD");
  }
  Credentials out;
  out.name = std::string(text.substr(0, colon));
  out.password = std::string(text.substr(colon + 1));
  return out;
}

}  // namespace

absl::StatusOr<Credentials> ParseBasicAuthorization(absl::string_view value) {
  if (!ConsumeScheme(&value, "Basic")) {
    return absl::InvalidArgumentError("Authorization is not Basic");
  }
  absl::StatusOr<std::string> decoded = Base64Decode(value);
  if (!decoded.ok()) {
    return absl::InvalidArgumentError("Basic credentials are not base64");
  }
  return SplitNamePassword(*decoded);
}

absl::StatusOr<Credentials> ParseBearerAuthorization(absl::string_view value) {
  if (!ConsumeScheme(&value, "Bearer")) {
    return absl::InvalidArgumentError("Authorization is not Bearer");
  }
  return SplitNamePassword(value);
}

AuthResult AuthenticateRequest(const httplib::Request& request,
                               HttpUsersHolder& users, bool allow_bearer) {
  AuthResult result;
  if (!request.has_header("Authorization")) return result;
  const std::string value = request.get_header_value("Authorization");
  absl::StatusOr<Credentials> credentials = ParseBasicAuthorization(value);
  if (!credentials.ok() && allow_bearer) {
    credentials = ParseBearerAuthorization(value);
  }
  if (!credentials.ok()) {
    result.outcome = AuthOutcome::kMalformed;
    return result;
  }
  std::shared_ptr<HttpUsers> snapshot = users.Get();
  result.account =
      snapshot->Authenticate(credentials->name, credentials->password);
  OPENSSL_cleanse(credentials->password.data(), credentials->password.size());
  result.outcome = result.account.has_value() ? AuthOutcome::kAccepted
                                              : AuthOutcome::kRejected;
  for (const HttpAccount& account : snapshot->accounts()) {
    if (account.name == credentials->name) result.known_name = account.name;
  }
  return result;
}

std::string DescribeAuthFailure(const AuthResult& result) {
  switch (result.outcome) {
    case AuthOutcome::kMissing:
      return "no credentials";
    case AuthOutcome::kMalformed:
      return "an Authorization header of another kind";
    case AuthOutcome::kRejected:
      return result.known_name.empty()
                 ? std::string("an unknown account")
                 : absl::StrCat("a wrong password for account '",
                                result.known_name, "'");
    case AuthOutcome::kAccepted:
      break;
  }
  return "accepted credentials";
}

void RespondUnauthorized(httplib::Response& response) {
  response.status = 401;
  response.set_header("WWW-Authenticate", kWwwAuthenticateBasic);
  response.set_content("401 Unauthorized\n", "text/plain");
}

}  // namespace scepca
