// File: token_fuzzer.cc
// libFuzzer entry point for DecodeSignedToken (service/core/signed_token.h):
// any text must be refused or decoded without a crash or undefined behaviour,
// and a decoded token must re-encode to exactly the same text (one encoding
// per token: no malleability).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "service/core/base64.h"
#include "service/core/key_ring.h"
#include "service/core/signed_token.h"

namespace scepca::fuzz {

// The key the fuzzer (and its seeds) use: id 7, 32 bytes of 0x5a.
const KeyRing& FuzzRing() {
  static const KeyRing* const ring = new KeyRing(*KeyRing::Parse(absl::StrCat(
      "key 7 primary ", Base64Encode(std::string(32, '\x5a')), "\n")));
  return *ring;
}

}  // namespace scepca::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const scepca::KeyRing& ring = scepca::fuzz::FuzzRing();
  absl::StatusOr<scepca::SignedToken> token =
      scepca::DecodeSignedToken(text, ring);
  if (!token.ok()) {
    if (!absl::IsInvalidArgument(token.status()) &&
        !absl::IsUnauthenticated(token.status())) {
      std::abort();
    }
    return 0;
  }
  absl::StatusOr<std::string> again =
      scepca::EncodeSignedToken(*token, *ring.FindVerifier(token->key_id));
  if (!again.ok() || *again != text || text.size() > 255) std::abort();
  return 0;
}
