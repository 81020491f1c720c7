// File: random.h
// Cryptographically secure random bytes from OpenSSL's DRBG.
#ifndef SCEPCA_SERVICE_CORE_RANDOM_H_
#define SCEPCA_SERVICE_CORE_RANDOM_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"

namespace scepca {

// Returns `n` bytes from RAND_bytes. Returns kInternal if the DRBG fails
// (it is never silently replaced by a weaker source).
absl::StatusOr<std::string> SecureRandomBytes(size_t n);

}  // namespace scepca

#endif  // SCEPCA_SERVICE_CORE_RANDOM_H_
