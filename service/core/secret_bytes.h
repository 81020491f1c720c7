// File: secret_bytes.h
// A byte string that is wiped (OPENSSL_cleanse) when destroyed.
#ifndef SCEPCA_SERVICE_CORE_SECRET_BYTES_H_
#define SCEPCA_SERVICE_CORE_SECRET_BYTES_H_

#include <openssl/crypto.h>

#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace scepca {

// Move-only. Never log its contents.
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(std::string bytes) : bytes_(std::move(bytes)) {}
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  SecretBytes(SecretBytes&& other) noexcept : bytes_(std::move(other.bytes_)) {
    other.Wipe();
  }
  SecretBytes& operator=(SecretBytes&& other) noexcept {
    if (this != &other) {
      Wipe();
      bytes_ = std::move(other.bytes_);
      other.Wipe();
    }
    return *this;
  }
  ~SecretBytes() { Wipe(); }

  absl::string_view view() const { return bytes_; }
  size_t size() const { return bytes_.size(); }

 private:
  void Wipe() {
    if (!bytes_.empty()) OPENSSL_cleanse(bytes_.data(), bytes_.size());
    bytes_.clear();
  }
  std::string bytes_;
};

}  // namespace scepca

#endif  // SCEPCA_SERVICE_CORE_SECRET_BYTES_H_
