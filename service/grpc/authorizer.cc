#include "service/grpc/authorizer.h"

#include <google/protobuf/util/json_util.h>
#include <grpc/grpc_security_constants.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "scep/challenge/config/v1/authz.pb.h"
#include "service/core/hashing.h"

namespace scepca {
namespace {

absl::StatusOr<Role> ParseRole(absl::string_view name) {
  if (name == "issuer") return Role::kIssuer;
  if (name == "validator") return Role::kValidator;
  if (name == "admin") return Role::kAdmin;
  return absl::InvalidArgumentError(
      absl::StrCat("role '", name, "' is not issuer, validator or admin"));
}

std::vector<std::string> Values(const grpc::AuthContext& auth,
                                const char* property) {
  std::vector<std::string> out;
  for (const grpc::string_ref& v : auth.FindPropertyValues(property)) {
    out.emplace_back(v.data(), v.size());
  }
  return out;
}

}  // namespace

Role RequiredRole(Method method) {
  switch (method) {
    case Method::kIssueChallenge:
    case Method::kGetChallenge:
    case Method::kListChallenges:
      return Role::kIssuer;
    case Method::kValidate:
    case Method::kNotifyOutcome:
      return Role::kValidator;
    case Method::kRevoke:
    case Method::kGetStats:
      return Role::kAdmin;
  }
  return Role::kAdmin;
}

absl::string_view MethodName(Method method) {
  switch (method) {
    case Method::kIssueChallenge:
      return "IssueChallenge";
    case Method::kValidate:
      return "Validate";
    case Method::kRevoke:
      return "Revoke";
    case Method::kGetChallenge:
      return "GetChallenge";
    case Method::kListChallenges:
      return "ListChallenges";
    case Method::kNotifyOutcome:
      return "NotifyOutcome";
    case Method::kGetStats:
      return "GetStats";
  }
  return "Unknown";
}

absl::StatusOr<std::unique_ptr<Authorizer>> Authorizer::FromJson(
    absl::string_view json) {
  scep::challenge::config::v1::AuthzPolicy policy;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto parsed = google::protobuf::util::JsonStringToMessage(std::string(json),
                                                            &policy, options);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("authz file is not valid: ", parsed.ToString()));
  }
  std::vector<Principal> principals;
  std::set<std::string> names;
  for (const auto& p : policy.principals()) {
    auto error = [&p](absl::string_view what) {
      return absl::InvalidArgumentError(
          absl::StrCat("authz principal '", p.name(), "': ", what));
    };
    if (p.name().empty()) return error("name is required");
    if (!names.insert(p.name()).second) return error("duplicate name");
    Principal out;
    out.name = p.name();
    out.uri = p.match().uri();
    out.dns = p.match().dns();
    out.cn = p.match().cn();
    out.token_sha256 = absl::AsciiStrToLower(p.token_sha256());
    const bool has_match =
        !out.uri.empty() || !out.dns.empty() || !out.cn.empty();
    if (has_match == !out.token_sha256.empty()) {
      return error("needs exactly one of match and token_sha256");
    }
    if (!out.token_sha256.empty()) {
      if (out.token_sha256.size() != 64 ||
          !std::all_of(out.token_sha256.begin(), out.token_sha256.end(),
                       absl::ascii_isxdigit)) {
        return error("token_sha256 must be 64 hex characters");
      }
    }
    if (p.roles().empty()) return error("has no roles");
    for (const std::string& r : p.roles()) {
      absl::StatusOr<Role> role = ParseRole(r);
      if (!role.ok()) return error(role.status().message());
      out.roles.insert(*role);
    }
    for (const auto& [key, value] : p.scope_labels()) {
      // The authority checks label texts when it issues; here only what
      // would make a scope meaningless.
      if (key.empty()) return error("scope_labels has an empty key");
      out.scope[key] = value;
    }
    principals.push_back(std::move(out));
  }
  return std::unique_ptr<Authorizer>(new Authorizer(std::move(principals)));
}

absl::StatusOr<std::unique_ptr<Authorizer>> Authorizer::FromFile(
    const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read authz file ", path));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  absl::StatusOr<std::unique_ptr<Authorizer>> authorizer = FromJson(ss.str());
  if (!authorizer.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", authorizer.status().message()));
  }
  return authorizer;
}

Authorizer::Identity Authorizer::IdentityOf(
    const grpc::ServerContext& context) {
  Identity identity;
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth != nullptr && auth->IsPeerAuthenticated()) {
    identity.uris = Values(*auth, GRPC_PEER_URI_PROPERTY_NAME);
    identity.dns_names = Values(*auth, GRPC_PEER_DNS_PROPERTY_NAME);
    std::vector<std::string> cn = Values(*auth, GRPC_X509_CN_PROPERTY_NAME);
    if (!cn.empty()) identity.common_name = cn[0];
  }
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it != metadata.end()) {
    absl::string_view value(it->second.data(), it->second.size());
    if (absl::ConsumePrefix(&value, "Bearer ") && !value.empty()) {
      identity.token_sha256 = HexEncode(Sha256(value));
    }
  }
  return identity;
}

const Authorizer::Principal* Authorizer::Find(const Identity& id) const {
  for (const Principal& p : principals_) {
    if (!p.token_sha256.empty()) {
      if (ConstantTimeEquals(p.token_sha256, id.token_sha256)) return &p;
      continue;
    }
    const bool uri = p.uri.empty() || std::find(id.uris.begin(), id.uris.end(),
                                                p.uri) != id.uris.end();
    const bool dns =
        p.dns.empty() || std::find(id.dns_names.begin(), id.dns_names.end(),
                                   p.dns) != id.dns_names.end();
    const bool cn = p.cn.empty() || p.cn == id.common_name;
    if (uri && dns && cn) return &p;
  }
  return nullptr;
}

bool InScope(const std::map<std::string, std::string>& labels,
             const std::map<std::string, std::string>& scope) {
  for (const auto& [key, value] : scope) {
    auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  return true;
}

grpc::Status Authorizer::Authorize(const grpc::ServerContext& context,
                                   Method method, Caller* caller) const {
  const Identity identity = IdentityOf(context);
  if (identity.empty()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "no client certificate or bearer token");
  }
  const Principal* p = Find(identity);
  if (p == nullptr) {
    // A verified certificate that is not listed is a known identity without
    // a role; a token that matches nothing proves no identity at all.
    const bool has_certificate = !identity.uris.empty() ||
                                 !identity.dns_names.empty() ||
                                 !identity.common_name.empty();
    return has_certificate
               ? grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                              "the client certificate is not in the authz "
                              "file")
               : grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                              "the bearer token is not known");
  }
  caller->name = p->name;
  caller->scope = p->scope;
  if (p->roles.count(Role::kAdmin) > 0 ||
      p->roles.count(RequiredRole(method)) > 0) {
    return grpc::Status::OK;
  }
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                      absl::StrCat("principal '", p->name, "' may not call ",
                                   MethodName(method)));
}

}  // namespace scepca
