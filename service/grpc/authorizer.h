// File: authorizer.h
// Who may call which RPC: identities from verified client certificates (URI
// SAN, DNS SAN, CN) or bearer tokens (matched by SHA-256), mapped to roles by
// the --authz-file (proto/scep/challenge/config/v1/authz.proto).
//
// Default deny: a caller with no identity gets UNAUTHENTICATED; a known
// caller without the method's role gets PERMISSION_DENIED.
#ifndef SCEPCA_SERVICE_GRPC_AUTHORIZER_H_
#define SCEPCA_SERVICE_GRPC_AUTHORIZER_H_

#include <grpcpp/server_context.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace scepca {

enum class Role { kIssuer, kValidator, kAdmin };

// The role an RPC needs ("admin" may call everything).
enum class Method {
  kIssueChallenge,
  kValidate,
  kRevoke,
  kGetChallenge,
  kListChallenges,
  kNotifyOutcome,
  kGetStats,
};

// Thread-safe (immutable).
class Authorizer {
 public:
  // Parses an authz file's JSON. Returns kInvalidArgument naming the problem
  // (unknown role, principal without a match or token, a bad token hash,
  // duplicate names).
  static absl::StatusOr<std::unique_ptr<Authorizer>> FromJson(
      absl::string_view json);
  static absl::StatusOr<std::unique_ptr<Authorizer>> FromFile(
      const std::string& path);

  // Who called, once identified.
  struct Caller {
    std::string name;  // The principal's name.
    // The principal's scope_labels (empty: not scoped): labels that every
    // challenge it issues carries, and that a challenge must carry for
    // GetChallenge and ListChallenges to show it to this caller.
    std::map<std::string, std::string> scope;
  };

  // Returns OK with the caller in `*caller`, or UNAUTHENTICATED /
  // PERMISSION_DENIED (then *caller names a known principal, if any).
  grpc::Status Authorize(const grpc::ServerContext& context, Method method,
                         Caller* caller) const;

  // The identity as gRPC presents it, independent of any policy: the
  // certificate's names and the bearer token's SHA-256 (for logs and tests).
  struct Identity {
    std::vector<std::string> uris, dns_names;
    std::string common_name;
    std::string token_sha256;
    bool empty() const {
      return uris.empty() && dns_names.empty() && common_name.empty() &&
             token_sha256.empty();
    }
  };
  static Identity IdentityOf(const grpc::ServerContext& context);

 private:
  struct Principal {
    std::string name;
    std::string uri, dns, cn;
    std::string token_sha256;
    std::set<Role> roles;
    std::map<std::string, std::string> scope;
  };
  explicit Authorizer(std::vector<Principal> principals)
      : principals_(std::move(principals)) {}
  const Principal* Find(const Identity& identity) const;

  const std::vector<Principal> principals_;
};

// True if `labels` has every label of `scope` with the same value.
bool InScope(const std::map<std::string, std::string>& labels,
             const std::map<std::string, std::string>& scope);

// Returns the role needed for `method` by non-admins.
Role RequiredRole(Method method);
absl::string_view MethodName(Method method);

}  // namespace scepca

#endif  // SCEPCA_SERVICE_GRPC_AUTHORIZER_H_
