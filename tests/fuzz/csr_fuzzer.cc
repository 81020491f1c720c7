// File: csr_fuzzer.cc
// libFuzzer entry point for ParseCsr (service/core/csr.h): any input must be
// refused or parsed without a crash, a leak or undefined behaviour, and a
// parsed request must satisfy the documented invariants.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/string_view.h"
#include "service/core/csr.h"

namespace {

void Check(bool condition) {
  if (!condition) std::abort();
}

void CheckInvariants(absl::string_view input, const scepca::CsrPolicy& policy,
                     const scepca::ParsedCsr& csr) {
  Check(!csr.der.empty() && csr.der.size() <= policy.max_der_bytes);
  if (static_cast<unsigned char>(input[0]) == 0x30) Check(csr.der == input);
  Check(csr.public_key_sha256.size() == 32);
  Check(csr.key_type == "RSA" || csr.key_type == "EC");
  if (csr.key_type == "RSA") {
    Check(csr.key_bits >= policy.min_rsa_bits &&
          csr.key_bits <= policy.max_rsa_bits && csr.key_curve.empty());
  } else {
    Check(csr.key_curve == "P-256" || csr.key_curve == "P-384");
  }
  const size_t sans = csr.dns_names.size() + csr.email_addresses.size() +
                      csr.uris.size() + csr.ip_addresses.size();
  Check(sans <= static_cast<size_t>(policy.max_sans));
  if (csr.has_challenge) {
    Check(!csr.challenge.empty() && csr.challenge.size() <= 255 * 3);
    Check(csr.challenge_type != scepca::ChallengeStringType::kNone);
    Check(csr.challenge.find('\0') == std::string::npos);
  } else {
    Check(csr.challenge.empty() &&
          csr.challenge_type == scepca::ChallengeStringType::kNone);
  }
  Check(csr.common_name.find('\0') == std::string::npos);
  Check(csr.subject.find('\n') == std::string::npos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  const scepca::CsrPolicy policy;
  absl::StatusOr<scepca::ParsedCsr> csr = scepca::ParseCsr(input, policy);
  if (csr.ok()) {
    CheckInvariants(input, policy, *csr);
  } else {
    Check(csr.status().code() == absl::StatusCode::kInvalidArgument);
  }
  // A tight policy reaches the limit branches with small inputs.
  scepca::CsrPolicy tight;
  tight.max_der_bytes = 512;
  tight.max_sans = 1;
  tight.allow_ec_p384 = false;
  absl::StatusOr<scepca::ParsedCsr> tight_csr = scepca::ParseCsr(input, tight);
  if (tight_csr.ok()) CheckInvariants(input, tight, *tight_csr);
  return 0;
}
