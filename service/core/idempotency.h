// File: idempotency.h
// Idempotent IssueChallenge: the store keeps, per (device, idempotency key), a
// fingerprint of the request and the challenge sealed with AES-256-GCM under a
// key derived from the idempotency key, so a repeat of the request can return
// the same challenge while the store holds no challenge in the clear.
#ifndef SCEPCA_SERVICE_CORE_IDEMPOTENCY_H_
#define SCEPCA_SERVICE_CORE_IDEMPOTENCY_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace scepca {

// Returns the store key for an idempotency key of a device (hex, one-way).
std::string IdempotencyStoreKey(absl::string_view device_id,
                                absl::string_view idempotency_key);

// Seals `challenge` for the store. Returns kInternal if OpenSSL fails.
absl::StatusOr<std::string> SealChallenge(absl::string_view device_id,
                                          absl::string_view idempotency_key,
                                          absl::string_view challenge);

// Opens what SealChallenge produced. Returns kDataLoss if it does not
// authenticate (a different key, or corruption).
absl::StatusOr<std::string> OpenChallenge(absl::string_view device_id,
                                          absl::string_view idempotency_key,
                                          absl::string_view sealed);

}  // namespace scepca

#endif  // SCEPCA_SERVICE_CORE_IDEMPOTENCY_H_
