#include "service/core/base32.h"

#include <cstdint>

namespace scepca {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

int DecodeChar(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= '2' && c <= '7') return c - '2' + 26;
  return -1;
}

}  // namespace

std::string Base32Encode(absl::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 8 + 4) / 5);
  uint32_t buffer = 0;
  int bits = 0;
  for (unsigned char byte : bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out.push_back(kAlphabet[(buffer >> (bits - 5)) & 31]);
      bits -= 5;
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(buffer << (5 - bits)) & 31]);
  return out;
}

absl::StatusOr<std::string> Base32Decode(absl::string_view text) {
  // Lengths mod 8 of 1, 3 and 6 cannot come from whole bytes.
  const size_t rem = text.size() % 8;
  if (rem == 1 || rem == 3 || rem == 6) {
    return absl::InvalidArgumentError("base32: impossible length");
  }
  std::string out;
  out.reserve(text.size() * 5 / 8);
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    const int v = DecodeChar(c);
    if (v < 0) return absl::InvalidArgumentError("base32: bad character");
    buffer = (buffer << 5) | static_cast<uint32_t>(v);
    bits += 5;
    if (bits >= 8) {
      out.push_back(static_cast<char>((buffer >> (bits - 8)) & 0xff));
      bits -= 8;
    }
  }
  if (bits > 0 && (buffer & ((1u << bits) - 1)) != 0) {
    return absl::InvalidArgumentError("base32: non-zero trailing bits");
  }
  return out;
}

bool IsBase32Alphabet(absl::string_view text) {
  for (char c : text) {
    if (DecodeChar(c) < 0) return false;
  }
  return true;
}

}  // namespace scepca
