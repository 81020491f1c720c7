#include "service/core/signed_token.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/base64.h"
#include "tests/testing/status_matchers.h"

namespace scepca {
namespace {

using ::scepca::testing::IsOk;
using ::scepca::testing::StatusIs;
using ::testing::HasSubstr;

// The key of the vectors: bytes 0x00..0x1f, key id 0x01020304.
KeyRing VectorRing() {
  std::string secret;
  for (int i = 0; i < 32; ++i) secret.push_back(static_cast<char>(i));
  return *KeyRing::Parse(
      absl::StrCat("key 16909060 primary ", Base64Encode(secret), "\n"));
}

SignedToken VectorToken() {
  SignedToken t;
  t.key_id = 0x01020304;
  for (int i = 0x10; i < 0x20; ++i) t.token_id.push_back(static_cast<char>(i));
  t.issued_at = absl::FromUnixSeconds(1800000000);
  t.expires_at = absl::FromUnixSeconds(1800003600);
  t.device_id = "device-123";
  return t;
}

// Known-answer vectors, computed independently (Python hmac/base64) from the
// format in signed_token.h; the first is the README's worked example.
constexpr char kMinimalVector[] =
    "AQECAwQQERITFBUWFxgZGhscHR4fa0nSAGtJ4BAAAQpkZXZpY2UtMTIzF8ace1V5VUZ1J6ti"
    "tBMMOw==";
constexpr char kFullVector[] =
    "AQECAwQQERITFBUWFxgZGhscHR4fa0nSAGtJ4BABAQpkZXZpY2UtMTIzAgVhbGljZQMWZGV2"
    "aWNlLTEyMy5leGFtcGxlLm9yZwQWZGV2aWNlLTEyMy5leGFtcGxlLm9yZwcNCHRlbXBsYXRl"
    "d2lmaf5PO0AvQlLQC43WSFuOu9I=";

SignedToken FullToken() {
  SignedToken t = VectorToken();
  t.multi_use = true;
  t.user_id = "alice";
  t.binding.common_name = "device-123.example.org";
  t.binding.dns_names = {"device-123.example.org"};
  t.labels = {{"template", "wifi"}};
  return t;
}

TEST(SignedTokenTest, MatchesKnownAnswerVectors) {
  KeyRing ring = VectorRing();
  EXPECT_EQ(*EncodeSignedToken(VectorToken(), *ring.primary()), kMinimalVector);
  EXPECT_EQ(*EncodeSignedToken(FullToken(), *ring.primary()), kFullVector);

  absl::StatusOr<SignedToken> full = DecodeSignedToken(kFullVector, ring);
  ASSERT_THAT(full, IsOk());
  EXPECT_EQ(full->key_id, 0x01020304u);
  EXPECT_EQ(full->token_id, VectorToken().token_id);
  EXPECT_EQ(full->issued_at, absl::FromUnixSeconds(1800000000));
  EXPECT_EQ(full->expires_at, absl::FromUnixSeconds(1800003600));
  EXPECT_TRUE(full->multi_use);
  EXPECT_EQ(full->device_id, "device-123");
  EXPECT_EQ(full->user_id, "alice");
  EXPECT_EQ(full->binding.common_name, "device-123.example.org");
  EXPECT_EQ(full->binding.dns_names,
            std::vector<std::string>{"device-123.example.org"});
  EXPECT_EQ(full->labels.at("template"), "wifi");
  EXPECT_TRUE(LooksLikeSignedToken(kFullVector));
}

TEST(SignedTokenTest, EveryBitFlipIsRefused) {
  KeyRing ring = VectorRing();
  absl::StatusOr<std::string> raw = Base64Decode(kFullVector);
  ASSERT_THAT(raw, IsOk());
  for (size_t byte = 0; byte < raw->size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string flipped = *raw;
      flipped[byte] ^= static_cast<char>(1 << bit);
      absl::StatusOr<SignedToken> t =
          DecodeSignedToken(Base64Encode(flipped), ring);
      ASSERT_FALSE(t.ok()) << byte << ":" << bit;
      // The version byte is checked before the key; everything else fails
      // the signature (a flipped key id names an unknown key).
      EXPECT_TRUE(absl::IsUnauthenticated(t.status()) ||
                  (byte == 0 && absl::IsInvalidArgument(t.status())))
          << byte << ":" << bit << " " << t.status();
    }
  }
}

TEST(SignedTokenTest, TruncatedExtendedAndReencodedTextIsRefused) {
  KeyRing ring = VectorRing();
  const std::string text = kFullVector;
  absl::StatusOr<std::string> raw = Base64Decode(text);
  ASSERT_THAT(raw, IsOk());
  EXPECT_FALSE(
      DecodeSignedToken(Base64Encode(raw->substr(0, raw->size() - 1)), ring)
          .ok());
  EXPECT_FALSE(DecodeSignedToken(Base64Encode(*raw + "x"), ring).ok());
  EXPECT_THAT(DecodeSignedToken(text.substr(0, text.size() - 4), ring),
              StatusIs(absl::StatusCode::kUnauthenticated));
  for (const std::string& bad :
       {absl::StrCat(text, "\n"), absl::StrCat(" ", text), std::string("AQ"),
        std::string(""), absl::AsciiStrToLower(text)}) {
    EXPECT_FALSE(DecodeSignedToken(bad, ring).ok()) << bad;
  }
  std::string url = text;
  for (char& c : url) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  if (url != text) {
    EXPECT_THAT(DecodeSignedToken(url, ring),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

TEST(SignedTokenTest, UnknownAndDisabledKeysAreBadSignatures) {
  KeyRing ring = VectorRing();
  std::string other_secret(32, 'z');
  KeyRing other = *KeyRing::Parse(
      absl::StrCat("key 99 primary ", Base64Encode(other_secret), "\n"));
  EXPECT_THAT(DecodeSignedToken(kFullVector, other),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       HasSubstr("unknown or disabled")));
  // The same key id with another secret: the tag fails.
  KeyRing impostor = *KeyRing::Parse(
      absl::StrCat("key 16909060 primary ", Base64Encode(other_secret)));
  EXPECT_THAT(DecodeSignedToken(kFullVector, impostor),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       HasSubstr("does not verify")));
  // Rotated out: disabled keys do not verify.
  KeyRing rotated = *KeyRing::ParseForEditing(ring.Serialize());
  absl::StatusOr<uint32_t> next = rotated.Generate();
  ASSERT_THAT(next, IsOk());
  ASSERT_THAT(rotated.Promote(*next), IsOk());
  EXPECT_THAT(DecodeSignedToken(kFullVector, rotated), IsOk());
  ASSERT_THAT(rotated.Disable(0x01020304), IsOk());
  EXPECT_THAT(DecodeSignedToken(kFullVector, rotated),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST(SignedTokenTest, TooLongIdentityIsRefusedAtEncoding) {
  KeyRing ring = VectorRing();
  SignedToken t = VectorToken();
  t.device_id = std::string(99, 'd');  // 2 + 99 + 2 + 40 = 143 bytes.
  t.user_id = std::string(40, 'u');
  absl::StatusOr<std::string> text = EncodeSignedToken(t, *ring.primary());
  ASSERT_THAT(text, IsOk());
  EXPECT_LE(text->size(), 255u);
  t.user_id = std::string(60, 'u');
  EXPECT_THAT(EncodeSignedToken(t, *ring.primary()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("255 characters")));
}

TEST(SignedTokenTest, TextIsPrintableStringSafe) {
  KeyRing ring = VectorRing();
  for (int i = 0; i < 200; ++i) {
    SignedToken t = FullToken();
    t.token_id[0] = static_cast<char>(i);
    std::string text = *EncodeSignedToken(t, *ring.primary());
    for (char c : text) {
      EXPECT_TRUE((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                  (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=')
          << c;
    }
  }
}

TEST(SignedTokenTest, ChallengeIdsOfSignedTokens) {
  const std::string id = SignedChallengeId(VectorToken().token_id);
  EXPECT_EQ(id, "s101112131415161718191a1b1c1d1e1f");
  EXPECT_TRUE(IsSignedChallengeId(id));
  EXPECT_FALSE(IsSignedChallengeId(id.substr(1)));
  EXPECT_FALSE(IsSignedChallengeId("S101112131415161718191a1b1c1d1e1f"));
}

}  // namespace
}  // namespace scepca
