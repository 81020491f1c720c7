// File: identity_binding.h
// The rule that ties a CSR to the identity a challenge was issued for.
//
// With an empty binding nothing is checked. Otherwise:
//   - common_name, when set, must equal the CSR's subject CN exactly (a CSR
//     without a CN does not match);
//   - every SAN in the CSR must be among the binding's SANs of its type:
//     DNS names compared without regard to ASCII case, e-mail addresses
//     exactly except for the case of the domain, URIs exactly; an IP address
//     SAN never matches (bindings carry none);
//   - the CSR need not carry every SAN of the binding (a subset is fine).
#ifndef SCEPCA_SERVICE_CORE_IDENTITY_BINDING_H_
#define SCEPCA_SERVICE_CORE_IDENTITY_BINDING_H_

#include <string>

#include "absl/status/status.h"
#include "service/core/challenge_record.h"
#include "service/core/csr.h"

namespace scepca {

// Returns OK if `csr` matches `binding`, else kPermissionDenied with a message
// naming the field that differs and what was expected.
absl::Status CheckBinding(const IdentityBinding& binding, const ParsedCsr& csr);

}  // namespace scepca

#endif  // SCEPCA_SERVICE_CORE_IDENTITY_BINDING_H_
