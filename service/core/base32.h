// File: base32.h
// RFC 4648 base32 (upper-case A-Z2-7, no padding): the alphabet of challenges.
// Every character is in ASN.1 PrintableString and needs no XML escaping.
#ifndef SCEPCA_SERVICE_CORE_BASE32_H_
#define SCEPCA_SERVICE_CORE_BASE32_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace scepca {

// Encodes `bytes` without padding.
std::string Base32Encode(absl::string_view bytes);

// Decodes unpadded upper-case base32. Refuses lower case, padding, whitespace,
// impossible lengths and non-zero trailing bits, so every byte string has
// exactly one encoding. Returns kInvalidArgument on any of these.
absl::StatusOr<std::string> Base32Decode(absl::string_view text);

// Returns true if every character of `text` is in A-Z2-7.
bool IsBase32Alphabet(absl::string_view text);

}  // namespace scepca

#endif  // SCEPCA_SERVICE_CORE_BASE32_H_
