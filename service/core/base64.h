// File: base64.h
// Standard base64 (RFC 4648 section 4, "+/" with "=" padding), strict: the
// only accepted text for a byte string is its canonical encoding. Every
// character is in ASN.1 PrintableString and needs no XML escaping.
#ifndef SCEPCA_SERVICE_CORE_BASE64_H_
#define SCEPCA_SERVICE_CORE_BASE64_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace scepca {

std::string Base64Encode(absl::string_view bytes);

// Returns kInvalidArgument for anything but a canonical padded encoding
// (no whitespace, no line breaks, no base64url).
absl::StatusOr<std::string> Base64Decode(absl::string_view text);

}  // namespace scepca

#endif  // SCEPCA_SERVICE_CORE_BASE64_H_
