#include "service/redis/redis_slot.h"

#include <array>
#include <cstddef>

namespace scepca {
namespace {

// The table of CRC-16/XMODEM, built at compile time.
constexpr std::array<uint16_t, 256> MakeCrc16Table() {
  std::array<uint16_t, 256> table{};
  for (int i = 0; i < 256; ++i) {
    uint16_t crc = static_cast<uint16_t>(i << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) != 0 ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                                : static_cast<uint16_t>(crc << 1);
    }
    table[static_cast<size_t>(i)] = crc;
  }
  return table;
}

constexpr std::array<uint16_t, 256> kCrc16Table = MakeCrc16Table();

}  // namespace

uint16_t Crc16Xmodem(absl::string_view data) {
  uint16_t crc = 0;
  for (char c : data) {
    const uint8_t byte = static_cast<uint8_t>(c);
    crc = static_cast<uint16_t>((crc << 8) ^
                                kCrc16Table[((crc >> 8) ^ byte) & 0xff]);
  }
  return crc;
}

absl::string_view RedisHashTag(absl::string_view key) {
  const size_t open = key.find('{');
  if (open == absl::string_view::npos) return key;
  const size_t close = key.find('}', open + 1);
  if (close == absl::string_view::npos || close == open + 1) return key;
  return key.substr(open + 1, close - open - 1);
}

int RedisKeySlot(absl::string_view key) {
  return Crc16Xmodem(RedisHashTag(key)) & (kRedisClusterSlots - 1);
}

}  // namespace scepca
