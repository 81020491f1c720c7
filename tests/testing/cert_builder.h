// File: cert_builder.h
// Makes X.509 certificates with OpenSSL for TLS tests: a CA, and leaves with
// chosen names, SANs, key usage and validity.
#ifndef SCEPCA_TESTS_TESTING_CERT_BUILDER_H_
#define SCEPCA_TESTS_TESTING_CERT_BUILDER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace scepca::testing {

struct CertAndKey {
  std::string cert_pem;
  std::string key_pem;
};

struct CertSpec {
  std::string common_name;
  std::vector<std::string> dns_names;
  std::vector<std::string> uris;
  std::vector<std::string> ip_addresses;  // "127.0.0.1", "::1".
  // Validity relative to now.
  absl::Duration not_before = -absl::Hours(1);
  absl::Duration not_after = absl::Hours(24);
  bool is_ca = false;
  bool server_auth = true;
  bool client_auth = true;
  int rsa_bits = 2048;  // 0: an EC P-256 key.
};

// Makes a self-signed certificate (a CA when spec.is_ca).
absl::StatusOr<CertAndKey> MakeSelfSigned(const CertSpec& spec);

// Makes a certificate for `spec` signed by `issuer`.
absl::StatusOr<CertAndKey> MakeSigned(const CertSpec& spec,
                                      const CertAndKey& issuer);

// Writes `data` to `path` with `mode`; returns path.
std::string WriteFileWithMode(const std::string& path, const std::string& data,
                              int mode = 0600);

}  // namespace scepca::testing

#endif  // SCEPCA_TESTS_TESTING_CERT_BUILDER_H_
