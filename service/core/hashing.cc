#include "service/core/hashing.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cstdint>

namespace scepca {
namespace {

// Fetched once for the process: EVP_sha256() and SHA256() look the
// implementation up in the provider store (under a lock) on every call.
const EVP_MD* Sha256Algorithm() {
  static const EVP_MD* const md = [] {
    const EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return fetched != nullptr ? fetched : EVP_sha256();
  }();
  return md;
}

}  // namespace

std::string Sha256(absl::string_view data) {
  std::string out(SHA256_DIGEST_LENGTH, '\0');
  EVP_Digest(data.data(), data.size(),
             reinterpret_cast<unsigned char*>(out.data()), nullptr,
             Sha256Algorithm(), nullptr);
  return out;
}

std::string Sha256Parts(std::initializer_list<absl::string_view> parts) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, Sha256Algorithm(), nullptr);
  for (absl::string_view part : parts) {
    unsigned char len[8];
    uint64_t n = part.size();
    for (int i = 7; i >= 0; --i) {
      len[i] = static_cast<unsigned char>(n & 0xff);
      n >>= 8;
    }
    EVP_DigestUpdate(ctx, len, sizeof(len));
    EVP_DigestUpdate(ctx, part.data(), part.size());
  }
  std::string out(SHA256_DIGEST_LENGTH, '\0');
  EVP_DigestFinal_ex(ctx, reinterpret_cast<unsigned char*>(out.data()),
                     nullptr);
  EVP_MD_CTX_free(ctx);
  return out;
}

std::string HexEncode(absl::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  return a.size() == b.size() &&
         CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace scepca
