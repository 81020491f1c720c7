// File: csr_builder.h
// Makes PKCS#10 requests with OpenSSL for tests and fuzz seeds: RSA or EC
// keys, CNs, SANs in an extensionRequest, and a challengePassword in any
// string type and any (also invalid) shape. No GoogleTest dependency.
//
// Example:
//
//   CsrSpec spec;
//   spec.key = {KeyType::kRsa, 2048};
//   spec.challenge_shape = ChallengeShape::kSingle;
//   spec.challenge = "ABCD2345";
//   std::string der = BuildCsrDer(spec).value();
#ifndef SCEPCA_TESTS_TESTING_CSR_BUILDER_H_
#define SCEPCA_TESTS_TESTING_CSR_BUILDER_H_

#include <openssl/evp.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace scepca::testing {

enum class KeyType { kRsa, kEcP256, kEcP384, kEcP521, kEcSecp256k1, kEd25519 };

struct KeySpec {
  KeyType type = KeyType::kEcP256;
  int rsa_bits = 2048;  // kRsa only.
};

// Returns a private key for `spec`, generated on first use and cached for the
// life of the process (RSA key generation is slow). The cache owns the key:
// do not free it. Thread-safe. Aborts if OpenSSL cannot make the key.
EVP_PKEY* CachedKey(const KeySpec& spec);

// Returns the DER SubjectPublicKeyInfo (i2d_PUBKEY) of CachedKey(spec).
std::string SubjectPublicKeyInfoDer(const KeySpec& spec);

// The ASN.1 type of the challengePassword value.
enum class ChallengeEncoding {
  kPrintableString,
  kUtf8String,
  kBmpString,
  kIa5String,
};

// How the challengePassword attribute appears in the request.
enum class ChallengeShape {
  kAbsent,
  kSingle,         // One attribute with one value: the valid form.
  kTwoAttributes,  // Two attributes with one value each (via tbs_patches).
  kMultiValued,    // One attribute whose SET holds two values.
  kEmptySet,       // One attribute whose SET holds no value.
};

struct CsrSpec {
  KeySpec key;
  // If > 0, the request carries a random RSA modulus of this many bits as its
  // public key, but is still signed with `key`: a huge key without the cost
  // of generating one (its signature cannot verify).
  int fake_rsa_public_bits = 0;
  // The public exponent of that fake key: 65537 if 0, else a random odd
  // number of this many bits.
  int fake_rsa_exponent_bits = 0;
  // If true and `key` is EC, the public key is encoded with explicit curve
  // parameters instead of the curve's name.
  bool ec_explicit_params = false;

  // One CN entry per element (UTF8String); none if empty.
  std::vector<std::string> common_names = {"device-1"};

  // SANs, in one subjectAltName extension in an extensionRequest; no
  // extensionRequest if all are empty.
  std::vector<std::string> dns_names;
  std::vector<std::string> email_addresses;
  std::vector<std::string> uris;
  std::vector<std::string> ip_addresses;      // Text, e.g. "192.0.2.1".
  std::vector<std::string> raw_ip_addresses;  // Octets as is (any length).

  ChallengeShape challenge_shape = ChallengeShape::kAbsent;
  ChallengeEncoding challenge_encoding = ChallengeEncoding::kPrintableString;
  // UTF-8 text; converted to UTF-16BE for kBmpString unless
  // `challenge_raw_bytes`, which puts the bytes in the value as they are
  // (an odd-length BMPString is written through tbs_patches).
  std::string challenge = "ABCD2345";
  bool challenge_raw_bytes = false;

  // Byte-string replacements (first occurrence of `first` becomes `second`)
  // applied to the encoded CertificationRequestInfo before it is signed: a
  // way to make validly signed requests OpenSSL would not build. Each
  // `first` must occur.
  std::vector<std::pair<std::string, std::string>> tbs_patches;

  // Flips the last byte of the DER (inside the signature).
  bool corrupt_signature = false;
};

// Builds and signs the request described by `spec`; returns its DER.
absl::StatusOr<std::string> BuildCsrDer(const CsrSpec& spec);

// Wraps DER in PEM armour with `label`, 64 base64 characters a line.
std::string DerToPem(absl::string_view der,
                     absl::string_view label = "CERTIFICATE REQUEST");

}  // namespace scepca::testing

#endif  // SCEPCA_TESTS_TESTING_CSR_BUILDER_H_
