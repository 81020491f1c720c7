#include "service/core/identity_binding.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace scepca {
namespace {

std::string LowerDomain(absl::string_view email) {
  const size_t at = email.rfind('@');
  if (at == absl::string_view::npos) return std::string(email);
  return absl::StrCat(email.substr(0, at + 1),
                      absl::AsciiStrToLower(email.substr(at + 1)));
}

std::string Expected(const std::vector<std::string>& values) {
  return values.empty() ? "none" : absl::StrJoin(values, ", ");
}

absl::Status Mismatch(absl::string_view what, absl::string_view value,
                      const std::vector<std::string>& expected) {
  return absl::PermissionDeniedError(
      absl::StrCat(what, " '", value, "' is not among the expected (",
                   Expected(expected), ")"));
}

}  // namespace

absl::Status CheckBinding(const IdentityBinding& binding,
                          const ParsedCsr& csr) {
  if (binding.empty()) return absl::OkStatus();
  if (!binding.common_name.empty() && csr.common_name != binding.common_name) {
    return absl::PermissionDeniedError(
        absl::StrCat("subject CN is '", csr.common_name, "'; expected '",
                     binding.common_name, "'"));
  }
  for (const std::string& dns : csr.dns_names) {
    bool found = false;
    for (const std::string& want : binding.dns_names) {
      found = found || absl::EqualsIgnoreCase(dns, want);
    }
    if (!found) return Mismatch("DNS SAN", dns, binding.dns_names);
  }
  for (const std::string& email : csr.email_addresses) {
    bool found = false;
    for (const std::string& want : binding.email_addresses) {
      found = found || LowerDomain(email) == LowerDomain(want);
    }
    if (!found) return Mismatch("e-mail SAN", email, binding.email_addresses);
  }
  for (const std::string& uri : csr.uris) {
    bool found = false;
    for (const std::string& want : binding.uris) found = found || uri == want;
    if (!found) return Mismatch("URI SAN", uri, binding.uris);
  }
  if (!csr.ip_addresses.empty()) {
    return absl::PermissionDeniedError(
        absl::StrCat("IP address SAN '", csr.ip_addresses[0],
                     "' is not allowed: a binding carries no IP addresses"));
  }
  return absl::OkStatus();
}

}  // namespace scepca
