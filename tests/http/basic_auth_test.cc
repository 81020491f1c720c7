#include "service/http/basic_auth.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/base64.h"
#include "tests/testing/status_matchers.h"

namespace scepca::testing {
namespace {

TEST(BasicAuthTest, ParsesBasicCredentials) {
  absl::StatusOr<Credentials> c = ParseBasicAuthorization(
      "Basic " + Base64Encode("fleet:pass:with:colons"));
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->name, "fleet");
  EXPECT_EQ(c->password, "pass:with:colons");
}

TEST(BasicAuthTest, SchemeIsCaseInsensitive) {
  for (const char* scheme : {"basic ", "BASIC ", "Basic  "}) {
    absl::StatusOr<Credentials> c =
        ParseBasicAuthorization(scheme + Base64Encode("a:b"));
    ASSERT_THAT(c, IsOk()) << scheme;
    EXPECT_EQ(c->name, "a");
    EXPECT_EQ(c->password, "b");
  }
}

TEST(BasicAuthTest, EmptyPasswordParsesButEmptyNameDoesNot) {
  absl::StatusOr<Credentials> c =
      ParseBasicAuthorization("Basic " + Base64Encode("a:"));
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->password, "");
  EXPECT_THAT(ParseBasicAuthorization("Basic " + Base64Encode(":pw")),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(BasicAuthTest, RefusesWhatIsNotBasic) {
  for (const std::string& bad : {
           std::string(""),
           std::string("Basic"),
           std::string("Basic "),
           std::string("Basic !!!!"),
           "Basic " + Base64Encode("no-colon"),
           "Bearer " + Base64Encode("a:b"),
           std::string(
               "NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAGAbEdAAAADw=="),
           "Basicx " + Base64Encode("a:b"),
       }) {
    EXPECT_THAT(ParseBasicAuthorization(bad),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << bad;
  }
}

TEST(BasicAuthTest, ParsesBearerNamePassword) {
  absl::StatusOr<Credentials> c =
      ParseBearerAuthorization("Bearer stepca:s3cret:x");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->name, "stepca");
  EXPECT_EQ(c->password, "s3cret:x");
  EXPECT_THAT(ParseBearerAuthorization("Bearer opaque-token"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseBearerAuthorization("Basic " + Base64Encode("a:b")),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(BasicAuthTest, ChallengeOffersOnlyBasicWithARealm) {
  httplib::Response response;
  RespondUnauthorized(response);
  EXPECT_EQ(response.status, 401);
  EXPECT_EQ(response.get_header_value_count("WWW-Authenticate"), 1u);
  EXPECT_EQ(response.get_header_value("WWW-Authenticate"),
            "Basic realm=\"SCEP Challenge Authority\"");
}

TEST(BasicAuthTest, FailureDescriptionNeverQuotesAnUnknownName) {
  AuthResult unknown;
  unknown.outcome = AuthOutcome::kRejected;
  EXPECT_EQ(DescribeAuthFailure(unknown), "an unknown account");
  AuthResult known = unknown;
  known.known_name = "fleet";
  EXPECT_EQ(DescribeAuthFailure(known), "a wrong password for account 'fleet'");
}

}  // namespace
}  // namespace scepca::testing
