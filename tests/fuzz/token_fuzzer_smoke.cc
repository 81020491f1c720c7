// File: token_fuzzer_smoke.cc
// Runs the token fuzz entry point (token_fuzzer.cc) without libFuzzer over
// signed tokens made in-process and deterministic mutations of them (every
// truncation, every bit flip of the decoded bytes, re-encodings, random
// text), so that every compiler's build exercises it.
//
// Usage: token_fuzzer_smoke [--write-corpus DIR]
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "service/core/base64.h"
#include "service/core/key_ring.h"
#include "service/core/signed_token.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace scepca::fuzz {
const KeyRing& FuzzRing();
}  // namespace scepca::fuzz

namespace {

size_t runs = 0;

void Run(const std::string& input) {
  ++runs;
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()),
                         input.size());
}

std::vector<std::string> Seeds() {
  const scepca::KeyRing& ring = scepca::fuzz::FuzzRing();
  std::vector<std::string> seeds;
  for (int i = 0; i < 4; ++i) {
    scepca::SignedToken t;
    t.token_id = std::string(16, static_cast<char>('a' + i));
    t.issued_at = absl::FromUnixSeconds(1800000000 + i);
    t.expires_at = t.issued_at + absl::Hours(1);
    t.multi_use = i % 2 == 1;
    t.device_id = absl::StrCat("device-", i);
    if (i > 0) t.user_id = "user@example.org";
    if (i > 1) {
      t.binding.common_name = "device.example.org";
      t.binding.dns_names = {"device.example.org"};
      t.binding.uris = {"urn:x"};
      t.labels = {{"template", "wifi"}};
    }
    seeds.push_back(*scepca::EncodeSignedToken(t, *ring.primary()));
  }
  return seeds;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> seeds = Seeds();
  if (argc == 3 && std::string(argv[1]) == "--write-corpus") {
    for (size_t i = 0; i < seeds.size(); ++i) {
      std::ofstream(absl::StrCat(argv[2], "/seed", i)) << seeds[i];
    }
  }
  std::mt19937 rng(12345);
  for (const std::string& seed : seeds) {
    Run(seed);
    for (size_t n = 0; n <= seed.size(); ++n) Run(seed.substr(0, n));
    const std::string raw = *scepca::Base64Decode(seed);
    for (size_t byte = 0; byte < raw.size(); ++byte) {
      for (int bit = 0; bit < 8; ++bit) {
        std::string flipped = raw;
        flipped[byte] ^= static_cast<char>(1 << bit);
        Run(scepca::Base64Encode(flipped));
      }
    }
    for (size_t n = 0; n < raw.size(); ++n) {
      Run(scepca::Base64Encode(raw.substr(0, n)));
      Run(scepca::Base64Encode(raw + std::string(n % 7, '\0')));
    }
    for (int i = 0; i < 500; ++i) {
      std::string text = seed;
      text[rng() % text.size()] = static_cast<char>(rng() % 256);
      Run(text);
    }
  }
  for (int i = 0; i < 2000; ++i) {
    std::string text(rng() % 300, '\0');
    for (char& c : text) c = static_cast<char>(rng() % 256);
    Run(text);
  }
  std::printf("token_fuzzer_smoke: %zu inputs, no failure\n", runs);
  return 0;
}
