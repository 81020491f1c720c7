// File: hmac_sha256.h
// HMAC-SHA256 with a key that is set up once.
//
// OpenSSL 3's one-shot HMAC() looks up the MAC and the digest implementation
// (a lock and a hash lookup in the provider store) and keys a fresh context on
// every call. An HmacSha256 keys one EVP_MAC_CTX when it is created; each
// Compute() copies that context, so a call costs the copy and the two SHA-256
// passes over the message.
#ifndef SCEPCA_SERVICE_CORE_HMAC_SHA256_H_
#define SCEPCA_SERVICE_CORE_HMAC_SHA256_H_

#include <initializer_list>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

typedef struct evp_mac_ctx_st EVP_MAC_CTX;

namespace scepca {

// Thread-safe (const).
class HmacSha256 {
 public:
  static constexpr size_t kTagBytes = 32;

  // Returns kInternal if OpenSSL cannot set up the key.
  static absl::StatusOr<std::shared_ptr<const HmacSha256>> Create(
      absl::string_view key);

  HmacSha256(const HmacSha256&) = delete;
  HmacSha256& operator=(const HmacSha256&) = delete;
  ~HmacSha256();

  // Returns the 32-byte HMAC of the concatenation of `parts`, or kInternal if
  // OpenSSL fails (out of memory).
  absl::StatusOr<std::string> Compute(
      std::initializer_list<absl::string_view> parts) const;

 private:
  explicit HmacSha256(EVP_MAC_CTX* keyed) : keyed_(keyed) {}
  EVP_MAC_CTX* keyed_;  // Only ever copied: never updated after Create().
};

}  // namespace scepca

#endif  // SCEPCA_SERVICE_CORE_HMAC_SHA256_H_
