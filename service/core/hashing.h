// File: hashing.h
// SHA-256 and hex helpers (OpenSSL).
#ifndef SCEPCA_SERVICE_CORE_HASHING_H_
#define SCEPCA_SERVICE_CORE_HASHING_H_

#include <initializer_list>
#include <string>

#include "absl/strings/string_view.h"

namespace scepca {

// Returns the 32-byte SHA-256 of `data`.
std::string Sha256(absl::string_view data);

// Returns the SHA-256 of the parts, each prefixed with its length as 8
// big-endian bytes, so that no two different part lists hash alike.
std::string Sha256Parts(std::initializer_list<absl::string_view> parts);

// Returns lower-case hex.
std::string HexEncode(absl::string_view bytes);

// Compares in time independent of the contents (lengths are compared first).
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

}  // namespace scepca

#endif  // SCEPCA_SERVICE_CORE_HASHING_H_
