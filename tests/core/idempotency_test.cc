#include "service/core/idempotency.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace scepca {
namespace {

using ::scepca::testing::IsOk;
using ::scepca::testing::IsOkAndHolds;
using ::scepca::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(IdempotencyTest, SealedChallengeOpensOnlyWithTheSameKeyAndDevice) {
  absl::StatusOr<std::string> sealed =
      SealChallenge("dev", "key-1", "CHALLENGE234");
  ASSERT_THAT(sealed, IsOk());
  EXPECT_THAT(*sealed, Not(HasSubstr("CHALLENGE234")));
  EXPECT_THAT(OpenChallenge("dev", "key-1", *sealed),
              IsOkAndHolds(std::string("CHALLENGE234")));
  EXPECT_THAT(OpenChallenge("dev", "key-2", *sealed),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(OpenChallenge("dev2", "key-1", *sealed),
              StatusIs(absl::StatusCode::kDataLoss));
  std::string tampered = *sealed;
  tampered[14] ^= 1;
  EXPECT_THAT(OpenChallenge("dev", "key-1", tampered),
              StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(OpenChallenge("dev", "key-1", "short"),
              StatusIs(absl::StatusCode::kDataLoss));
}

TEST(IdempotencyTest, SealingIsRandomised) {
  EXPECT_NE(*SealChallenge("d", "k", "C"), *SealChallenge("d", "k", "C"));
}

TEST(IdempotencyTest, StoreKeySeparatesDevicesAndKeys) {
  EXPECT_EQ(IdempotencyStoreKey("d", "k"), IdempotencyStoreKey("d", "k"));
  EXPECT_NE(IdempotencyStoreKey("d", "k"), IdempotencyStoreKey("e", "k"));
  // Length-prefixed parts: no ambiguity between ("ab","c") and ("a","bc").
  EXPECT_NE(IdempotencyStoreKey("ab", "c"), IdempotencyStoreKey("a", "bc"));
  EXPECT_THAT(IdempotencyStoreKey("d", "k"), Not(HasSubstr("k")));
}

}  // namespace
}  // namespace scepca
