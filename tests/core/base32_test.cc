#include "service/core/base32.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace scepca {
namespace {

using ::scepca::testing::IsOkAndHolds;
using ::scepca::testing::StatusIs;

// RFC 4648 section 10 vectors, without padding.
TEST(Base32Test, EncodesRfc4648Vectors) {
  EXPECT_EQ(Base32Encode(""), "");
  EXPECT_EQ(Base32Encode("f"), "MY");
  EXPECT_EQ(Base32Encode("fo"), "MZXQ");
  EXPECT_EQ(Base32Encode("foo"), "MZXW6");
  EXPECT_EQ(Base32Encode("foob"), "MZXW6YQ");
  EXPECT_EQ(Base32Encode("fooba"), "MZXW6YTB");
  EXPECT_EQ(Base32Encode("foobar"), "MZXW6YTBOI");
}

TEST(Base32Test, DecodesWhatItEncodes) {
  for (const char* s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    EXPECT_THAT(Base32Decode(Base32Encode(s)), IsOkAndHolds(std::string(s)));
  }
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  EXPECT_THAT(Base32Decode(Base32Encode(all)), IsOkAndHolds(all));
}

TEST(Base32Test, DecodeRefusesNonCanonicalText) {
  EXPECT_THAT(Base32Decode("mzxw6"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Base32Decode("MZXW6==="),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Base32Decode("MZ XW6"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Base32Decode("M"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Base32Decode("MZ1"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // "MZ" is "f"; "MZ" with a non-zero trailing bit ("M3") is not canonical.
  EXPECT_THAT(Base32Decode("M3"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(Base32Test, AlphabetCheck) {
  EXPECT_TRUE(IsBase32Alphabet("ABCXYZ234567"));
  EXPECT_FALSE(IsBase32Alphabet("ABC0"));
  EXPECT_FALSE(IsBase32Alphabet("abc"));
  EXPECT_FALSE(IsBase32Alphabet("AB_C"));
}

}  // namespace
}  // namespace scepca
