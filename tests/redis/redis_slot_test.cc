// Known-answer tests of CRC16 and Redis Cluster key slots (the cluster test
// also compares with a real cluster's CLUSTER KEYSLOT).
#include "service/redis/redis_slot.h"

#include <string>

#include "gtest/gtest.h"

namespace scepca {
namespace {

TEST(RedisSlotTest, Crc16XmodemKnownAnswers) {
  // CRC-16/XMODEM check value (the catalogue's "123456789").
  EXPECT_EQ(Crc16Xmodem("123456789"), 0x31C3);
  EXPECT_EQ(Crc16Xmodem(""), 0x0000);
  EXPECT_EQ(Crc16Xmodem("A"), 0x58E5);
  EXPECT_EQ(Crc16Xmodem(std::string("\0\0", 2)), 0x0000);
  EXPECT_EQ(Crc16Xmodem("\xff"), 0x1EF0);
}

TEST(RedisSlotTest, SlotsOfTheRedisDocumentationExamples) {
  EXPECT_EQ(RedisKeySlot("foo"), 12182);
  EXPECT_EQ(RedisKeySlot("somekey"), 11058);
  EXPECT_EQ(RedisKeySlot("foo{hash_tag}"), 2515);
  EXPECT_EQ(RedisKeySlot("123456789"), 0x31C3 % 16384);
}

TEST(RedisSlotTest, HashTagRules) {
  EXPECT_EQ(RedisHashTag("{user1000}.following"), "user1000");
  EXPECT_EQ(RedisKeySlot("{user1000}.following"),
            RedisKeySlot("{user1000}.followers"));
  // Only the first {...} counts.
  EXPECT_EQ(RedisHashTag("foo{bar}{zap}"), "bar");
  // An empty tag: the whole key is hashed.
  EXPECT_EQ(RedisHashTag("foo{}{bar}"), "foo{}{bar}");
  // From the first '{' to the first '}' after it.
  EXPECT_EQ(RedisHashTag("foo{{bar}}zap"), "{bar");
  // No closing brace: the whole key.
  EXPECT_EQ(RedisHashTag("foo{bar"), "foo{bar");
  EXPECT_EQ(RedisHashTag("}foo{bar}"), "bar");
}

TEST(RedisSlotTest, StoreKeysOfOneRecordShareTheirSlot) {
  // The store's marker shares its index's slot; records spread by id.
  EXPECT_EQ(RedisKeySlot("scep:d:{0123456789abcdef0123456789abcdef}"),
            RedisKeySlot("scep:d:{0123456789abcdef0123456789abcdef}:rb"));
  EXPECT_EQ(RedisKeySlot("scep:c:{ab}"), RedisKeySlot("other:x:{ab}"));
  EXPECT_NE(RedisKeySlot("scep:c:{ab}"), RedisKeySlot("scep:c:{ac}"));
}

TEST(RedisSlotTest, EverySlotIsInRange) {
  for (int i = 0; i < 100000; ++i) {
    const int slot = RedisKeySlot(std::to_string(i));
    ASSERT_GE(slot, 0);
    ASSERT_LT(slot, kRedisClusterSlots);
  }
}

}  // namespace
}  // namespace scepca
