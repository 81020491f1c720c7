// File: csr_fuzzer_smoke.cc
// Runs the fuzz entry point (csr_fuzzer.cc) without libFuzzer, so that every
// compiler's build exercises it: over seed requests made in-process with
// csr_builder, and over deterministic mutations of them (every truncation,
// byte flips, insertions, splices). Build with SCEPCA_SANITIZE=address,
// undefined to make it a sanitizer test.
//
// Usage: csr_fuzzer_smoke [--write-corpus DIR] [--mutations N]
//   --write-corpus DIR  also writes the seeds to DIR (a libFuzzer corpus).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tests/testing/csr_builder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

using ::scepca::testing::BuildCsrDer;
using ::scepca::testing::ChallengeEncoding;
using ::scepca::testing::ChallengeShape;
using ::scepca::testing::CsrSpec;
using ::scepca::testing::DerToPem;
using ::scepca::testing::KeyType;

void Run(const std::string& input) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()),
                         input.size());
}

std::vector<CsrSpec> SeedSpecs() {
  std::vector<CsrSpec> specs;
  CsrSpec base;
  base.challenge_shape = ChallengeShape::kSingle;
  base.challenge = "ABCD2345EFGH";
  base.dns_names = {"a.example.com"};
  base.email_addresses = {"user@example.com"};
  base.uris = {"spiffe://example.com/d/1"};
  base.ip_addresses = {"192.0.2.1", "2001:db8::1"};
  for (KeyType type : {KeyType::kEcP256, KeyType::kEcP384, KeyType::kRsa,
                       KeyType::kEcP521, KeyType::kEd25519}) {
    CsrSpec spec = base;
    spec.key = {type, 2048};
    specs.push_back(spec);
  }
  for (ChallengeEncoding encoding :
       {ChallengeEncoding::kUtf8String, ChallengeEncoding::kBmpString,
        ChallengeEncoding::kIa5String}) {
    CsrSpec spec = base;
    spec.challenge_encoding = encoding;
    spec.challenge =
        "Gr\xC3\xBC\xC3\x9F"
        "e";
    specs.push_back(spec);
  }
  for (ChallengeShape shape :
       {ChallengeShape::kAbsent, ChallengeShape::kTwoAttributes,
        ChallengeShape::kMultiValued, ChallengeShape::kEmptySet}) {
    CsrSpec spec = base;
    spec.challenge_shape = shape;
    specs.push_back(spec);
  }
  CsrSpec many_sans = base;
  many_sans.dns_names.assign(40, "h.example.com");
  specs.push_back(many_sans);
  CsrSpec two_cns = base;
  two_cns.common_names = {"a", "b"};
  specs.push_back(two_cns);
  CsrSpec bad_sig = base;
  bad_sig.corrupt_signature = true;
  specs.push_back(bad_sig);
  CsrSpec explicit_curve = base;
  explicit_curve.ec_explicit_params = true;
  specs.push_back(explicit_curve);
  return specs;
}

}  // namespace

int main(int argc, char** argv) {
  std::string corpus_dir;
  int mutations = 300;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    bool ok = i + 1 < argc;
    if (ok && arg == "--write-corpus") {
      corpus_dir = argv[++i];
    } else if (ok && arg == "--mutations") {
      ok = absl::SimpleAtoi(argv[++i], &mutations) && mutations >= 0;
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "usage: %s [--write-corpus DIR] [--mutations N]\n",
                   argv[0]);
      return 2;
    }
  }

  std::vector<std::string> seeds;
  for (const CsrSpec& spec : SeedSpecs()) {
    absl::StatusOr<std::string> der = BuildCsrDer(spec);
    if (!der.ok()) {
      std::fprintf(stderr, "seed: %s\n", der.status().ToString().c_str());
      return 1;
    }
    seeds.push_back(*der);
  }
  seeds.push_back(DerToPem(seeds[0]));
  seeds.push_back(DerToPem(seeds[2], "NEW CERTIFICATE REQUEST"));

  if (!corpus_dir.empty()) {
    for (size_t i = 0; i < seeds.size(); ++i) {
      std::ofstream out(absl::StrCat(corpus_dir, "/seed-", i),
                        std::ios::binary);
      out << seeds[i];
      if (!out) {
        std::fprintf(stderr, "cannot write to %s\n", corpus_dir.c_str());
        return 1;
      }
    }
  }

  std::mt19937 rng(20261125);  // Fixed: the run is reproducible.
  size_t runs = 0;
  for (const std::string& seed : seeds) {
    Run(seed);
    ++runs;
    for (size_t n = 0; n < seed.size(); ++n) {  // Every truncation.
      Run(seed.substr(0, n));
      ++runs;
    }
    Run(seed + seed);
    Run(seed + std::string(1, '\0'));
    runs += 2;
    for (int m = 0; m < mutations; ++m) {
      std::string input = seed;
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits && !input.empty(); ++e) {
        const size_t at = rng() % input.size();
        switch (rng() % 4) {
          case 0:  // Flip one bit.
            input[at] = static_cast<char>(input[at] ^ (1 << (rng() % 8)));
            break;
          case 1:  // Set an interesting byte.
            input[at] = "\x00\x7f\x80\xff\x30\x31\x1e\x0c"[rng() % 8];
            break;
          case 2:  // Insert a byte.
            input.insert(at, 1, static_cast<char>(rng()));
            break;
          case 3:  // Splice in a piece of another seed.
            const std::string& other = seeds[rng() % seeds.size()];
            const size_t from = rng() % other.size();
            input.replace(at, rng() % 16, other.substr(from, rng() % 64));
            break;
        }
      }
      Run(input);
      ++runs;
    }
  }
  std::printf("csr_fuzzer_smoke: %zu seeds, %zu inputs, no crash\n",
              seeds.size(), runs);
  return 0;
}
