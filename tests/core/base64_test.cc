#include "service/core/base64.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace scepca {
namespace {

using ::scepca::testing::IsOkAndHolds;
using ::scepca::testing::StatusIs;

TEST(Base64Test, Rfc4648Vectors) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  for (const char* s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    EXPECT_THAT(Base64Decode(Base64Encode(s)), IsOkAndHolds(std::string(s)));
  }
  EXPECT_THAT(Base64Decode("+/+/"), IsOkAndHolds(std::string("\xfb\xff\xbf")));
}

TEST(Base64Test, RefusesNonCanonicalText) {
  for (const char* bad : {"Zg", "Zg=", "Zh==", "Zm9v\n", "Zm 9v", "-_-_",
                          "Z===", "=Zg=", "Zm=v"}) {
    EXPECT_THAT(Base64Decode(bad), StatusIs(absl::StatusCode::kInvalidArgument))
        << bad;
  }
}

}  // namespace
}  // namespace scepca
