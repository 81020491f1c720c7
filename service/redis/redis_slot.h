// File: redis_slot.h
// Redis Cluster key slots: HASH_SLOT = CRC16(key) mod 16384, where CRC16 is
// CRC-16/XMODEM (polynomial 0x1021, initial value 0, no reflection) and only
// the text between the first '{' and the next '}' is hashed when that text is
// not empty (the "hash tag").
#ifndef SCEPCA_SERVICE_REDIS_REDIS_SLOT_H_
#define SCEPCA_SERVICE_REDIS_REDIS_SLOT_H_

#include <cstdint>

#include "absl/strings/string_view.h"

namespace scepca {

// Number of slots of a Redis Cluster.
inline constexpr int kRedisClusterSlots = 16384;

// Returns CRC-16/XMODEM of `data` (e.g. "123456789" -> 0x31C3).
uint16_t Crc16Xmodem(absl::string_view data);

// Returns the part of `key` that Redis Cluster hashes: the text inside the
// first "{...}" if it is not empty, else the whole key.
absl::string_view RedisHashTag(absl::string_view key);

// Returns the cluster slot of `key`, 0..16383.
int RedisKeySlot(absl::string_view key);

}  // namespace scepca

#endif  // SCEPCA_SERVICE_REDIS_REDIS_SLOT_H_
