#include "service/core/hmac_sha256.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "absl/status/status.h"

namespace scepca {
namespace {

struct MacCtxDeleter {
  void operator()(EVP_MAC_CTX* ctx) const { EVP_MAC_CTX_free(ctx); }
};
using MacCtx = std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter>;

// Fetched once for the process (EVP_MAC_fetch takes the provider store's
// lock); never freed.
EVP_MAC* HmacAlgorithm() {
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  return mac;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const HmacSha256>> HmacSha256::Create(
    absl::string_view key) {
  EVP_MAC* algorithm = HmacAlgorithm();
  if (algorithm == nullptr) {
    return absl::InternalError("OpenSSL has no HMAC implementation");
  }
  MacCtx ctx(EVP_MAC_CTX_new(algorithm));
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end()};
  if (ctx == nullptr ||
      EVP_MAC_init(ctx.get(),
                   reinterpret_cast<const unsigned char*>(key.data()),
                   key.size(), params) != 1) {
    return absl::InternalError("cannot set up an HMAC-SHA256 key");
  }
  return std::shared_ptr<const HmacSha256>(new HmacSha256(ctx.release()));
}

HmacSha256::~HmacSha256() { EVP_MAC_CTX_free(keyed_); }

absl::StatusOr<std::string> HmacSha256::Compute(
    std::initializer_list<absl::string_view> parts) const {
  MacCtx ctx(EVP_MAC_CTX_dup(keyed_));
  if (ctx == nullptr) return absl::InternalError("cannot copy an HMAC key");
  for (absl::string_view part : parts) {
    if (EVP_MAC_update(ctx.get(),
                       reinterpret_cast<const unsigned char*>(part.data()),
                       part.size()) != 1) {
      return absl::InternalError("HMAC update failed");
    }
  }
  std::string out(kTagBytes, '\0');
  size_t written = 0;
  if (EVP_MAC_final(ctx.get(), reinterpret_cast<unsigned char*>(out.data()),
                    &written, out.size()) != 1 ||
      written != kTagBytes) {
    return absl::InternalError("HMAC final failed");
  }
  return out;
}

}  // namespace scepca
