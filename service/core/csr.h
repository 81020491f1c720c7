// File: csr.h
// Reads a PKCS#10 certificate signing request (RFC 2986) as sent by a SCEP
// client: its subject, the SANs of its extensionRequest, its public key and
// its PKCS#9 challengePassword (RFC 2985 section 5.4.1).
//
// The input is untrusted: every limit is checked, every byte must be
// consumed, and the key policy is enforced before the signature is verified,
// so an oversized RSA key cannot be used to burn CPU. The challengePassword
// is a secret: it never appears in an error message.
//
// Example:
//
//   absl::StatusOr<ParsedCsr> csr = ParseCsr(body);
//   if (!csr.ok()) return csr.status();  // kInvalidArgument, rule named.
//   if (csr->has_challenge) Validate(csr->challenge, ...);
#ifndef SCEPCA_SERVICE_CORE_CSR_H_
#define SCEPCA_SERVICE_CORE_CSR_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace scepca {

// Limits applied by ParseCsr. The defaults follow the project's bad-input
// table: at most 16 KiB of DER and 32 SANs; RSA 2048-8192 bits, EC P-256 and
// P-384 (named curves only).
struct CsrPolicy {
  // Maximum size of the DER. PEM text may be up to 2 * max_der_bytes + 1024
  // bytes (base64 and line breaks), and its decoded DER must fit this limit.
  size_t max_der_bytes = 16 * 1024;
  // Maximum number of GeneralNames, of every type, in the subjectAltName.
  int max_sans = 32;
  int min_rsa_bits = 2048;
  int max_rsa_bits = 8192;
  bool allow_ec_p256 = true;
  bool allow_ec_p384 = true;
};

// The ASN.1 string type that carried the challengePassword.
enum class ChallengeStringType {
  kNone,
  kPrintableString,
  kUtf8String,
  kBmpString
};

// What ParseCsr found in a request that passed every check. Copyable.
struct ParsedCsr {
  std::string der;          // The exact DER (decoded from PEM if need be).
  std::string subject;      // One-line RFC 2253 text of the subject, UTF-8.
  std::string common_name;  // UTF-8; "" if the subject has no CN.
  // From the subjectAltName extension of the extensionRequest, in order.
  std::vector<std::string> dns_names;
  std::vector<std::string> email_addresses;
  std::vector<std::string> uris;
  std::vector<std::string> ip_addresses;  // Text: "192.0.2.1", "2001:db8::1".
  std::string key_type;                   // "RSA" or "EC".
  int key_bits = 0;                       // RSA modulus bits, or EC field bits.
  std::string key_curve;  // "P-256" or "P-384" for EC; "" for RSA.
  // 32 raw bytes: SHA-256 of the DER SubjectPublicKeyInfo (i2d_PUBKEY).
  std::string public_key_sha256;
  bool has_challenge = false;
  ChallengeStringType challenge_type = ChallengeStringType::kNone;
  std::string challenge;  // Decoded to UTF-8 (BMPString -> UTF-8). Secret.
};

// Parses a DER or PEM ("-----BEGIN CERTIFICATE REQUEST-----" or
// "-----BEGIN NEW CERTIFICATE REQUEST-----") PKCS#10 request and checks it
// against `policy`. Leading and trailing whitespace around a PEM block is
// allowed; any other text, or a second block, is not.
//
// Returns kInvalidArgument, with a message naming the rule broken, for:
// - empty input; input over the size limit; input that is neither DER nor
//   PEM; truncated DER; bytes after the DER (all bytes must be consumed);
//   malformed or non-v1 requests;
// - a subject with more than one CN, or a name that is not valid text;
// - an extensionRequest that is not a single, well-formed value, duplicate
//   extensions, more than `policy.max_sans` SANs, or a malformed SAN;
// - challengePassword rules (RFC 2985: SINGLE VALUE, DirectoryString of at
//   most 255 characters): more than one attribute; a SET with other than
//   exactly one value ("multi-valued"); a type other than PrintableString,
//   UTF8String or BMPString (the message names the type, e.g. IA5String);
//   a value not valid in its type (characters outside PrintableString, bad
//   UTF-8, odd-length BMPString, surrogates, NUL); an empty value; more than
//   255 characters;
// - the key policy, checked before the signature: RSA outside
//   [min_rsa_bits, max_rsa_bits] or with a public exponent that is even, 1
//   or longer than 64 bits; an EC curve not allowed (or explicit curve
//   parameters); any other key type (RSA-PSS, Ed25519, DSA, ...);
// - a signature that does not verify with the request's own key.
//
// Thread-safe. Never includes the challenge value in a message.
absl::StatusOr<ParsedCsr> ParseCsr(absl::string_view der_or_pem,
                                   const CsrPolicy& policy = {});

// Returns "None", "PrintableString", "UTF8String" or "BMPString".
absl::string_view ChallengeStringTypeName(ChallengeStringType t);

}  // namespace scepca

#endif  // SCEPCA_SERVICE_CORE_CSR_H_
