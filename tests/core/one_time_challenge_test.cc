#include "service/core/one_time_challenge.h"

#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/base32.h"
#include "tests/testing/status_matchers.h"

namespace scepca {
namespace {

using ::scepca::testing::IsOk;
using ::scepca::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

TEST(OneTimeChallengeTest, GeneratesDistinct128BitBase32Challenges) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    absl::StatusOr<std::string> c = GenerateOneTimeChallenge();
    ASSERT_THAT(c, IsOk());
    EXPECT_THAT(*c, MatchesRegex("[A-Z2-7]{26}"));
    EXPECT_TRUE(IsOneTimeChallengeFormat(*c));
    absl::StatusOr<std::string> bytes = Base32Decode(*c);
    ASSERT_THAT(bytes, IsOk());
    EXPECT_EQ(bytes->size(), 16u);
    seen.insert(*c);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(OneTimeChallengeTest, FormatRefusesLookalikes) {
  const std::string good = "AAAAAAAAAAAAAAAAAAAAAAAAAA";
  EXPECT_TRUE(IsOneTimeChallengeFormat(good));
  EXPECT_FALSE(IsOneTimeChallengeFormat("aaaaaaaaaaaaaaaaaaaaaaaaaa"));
  EXPECT_FALSE(IsOneTimeChallengeFormat(good + "A"));
  EXPECT_FALSE(IsOneTimeChallengeFormat(good.substr(1)));
  EXPECT_FALSE(IsOneTimeChallengeFormat(good.substr(1) + "="));
  // The last character carries 3 bits; "B" would set a trailing bit.
  EXPECT_FALSE(IsOneTimeChallengeFormat(good.substr(1) + "B"));
}

TEST(OneTimeChallengeTest, IdIsStableOneWayHex) {
  EXPECT_EQ(ChallengeIdOf("ABC"), ChallengeIdOf("ABC"));
  EXPECT_NE(ChallengeIdOf("ABC"), ChallengeIdOf("ABD"));
  EXPECT_THAT(ChallengeIdOf("ABC"), MatchesRegex("[0-9a-f]{32}"));
  EXPECT_TRUE(IsChallengeIdFormat(ChallengeIdOf("ABC")));
  EXPECT_FALSE(IsChallengeIdFormat("ABC"));
  EXPECT_FALSE(IsChallengeIdFormat(std::string(32, 'G')));
}

TEST(OneTimeChallengeTest, PresentedChallengeChecksNameTheField) {
  EXPECT_THAT(CheckPresentedChallenge("X", "challenge"), IsOk());
  EXPECT_THAT(CheckPresentedChallenge("", "challenge"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("challenge is required")));
  EXPECT_THAT(CheckPresentedChallenge(std::string(256, 'A'), "challenge"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("challenge is 256 bytes")));
  EXPECT_THAT(CheckPresentedChallenge(std::string("AB\0CD", 5), "challenge"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("control character")));
  EXPECT_THAT(CheckPresentedChallenge("AB\r\n", "challenge"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace scepca
