#include "service/core/idempotency.h"

#include <openssl/evp.h>

#include <memory>

#include "service/core/hashing.h"
#include "service/core/random.h"
#include "service/core/status_macros.h"

namespace scepca {
namespace {

constexpr int kNonceBytes = 12;
constexpr int kTagBytes = 16;

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter>;

std::string SealKey(absl::string_view device_id,
                    absl::string_view idempotency_key) {
  return Sha256Parts(
      {"scepca/idempotency-seal/v1", device_id, idempotency_key});
}

const unsigned char* U(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

std::string IdempotencyStoreKey(absl::string_view device_id,
                                absl::string_view idempotency_key) {
  return HexEncode(
      Sha256Parts({"scepca/idempotency-key/v1", device_id, idempotency_key}));
}

absl::StatusOr<std::string> SealChallenge(absl::string_view device_id,
                                          absl::string_view idempotency_key,
                                          absl::string_view challenge) {
  const std::string key = SealKey(device_id, idempotency_key);
  SCEPCA_ASSIGN_OR_RETURN(std::string nonce, SecureRandomBytes(kNonceBytes));
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  std::string out = nonce;
  out.resize(kNonceBytes + challenge.size() + kTagBytes);
  auto* ct = reinterpret_cast<unsigned char*>(out.data()) + kNonceBytes;
  int len = 0;
  int total = 0;
  if (ctx == nullptr ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, U(key),
                         U(nonce)) != 1 ||
      EVP_EncryptUpdate(ctx.get(), ct, &len, U(challenge),
                        static_cast<int>(challenge.size())) != 1) {
    return absl::InternalError("AES-GCM seal failed");
  }
  total = len;
  if (EVP_EncryptFinal_ex(ctx.get(), ct + total, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes,
                          ct + total + len) != 1) {
    return absl::InternalError("AES-GCM seal failed");
  }
  return out;
}

absl::StatusOr<std::string> OpenChallenge(absl::string_view device_id,
                                          absl::string_view idempotency_key,
                                          absl::string_view sealed) {
  if (sealed.size() < static_cast<size_t>(kNonceBytes + kTagBytes)) {
    return absl::DataLossError("sealed challenge too short");
  }
  const std::string key = SealKey(device_id, idempotency_key);
  const absl::string_view nonce = sealed.substr(0, kNonceBytes);
  const absl::string_view ct =
      sealed.substr(kNonceBytes, sealed.size() - kNonceBytes - kTagBytes);
  std::string tag(sealed.substr(sealed.size() - kTagBytes));
  std::string out(ct.size(), '\0');
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (ctx == nullptr ||
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, U(key),
                         U(nonce)) != 1 ||
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()),
                        &len, U(ct), static_cast<int>(ct.size())) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes,
                          tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(),
                          reinterpret_cast<unsigned char*>(out.data()) + len,
                          &len) != 1) {
    return absl::DataLossError("sealed challenge does not authenticate");
  }
  return out;
}

}  // namespace scepca
