#include "service/core/csr.h"

#include <openssl/err.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/hashing.h"
#include "tests/testing/csr_builder.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"

namespace scepca {
namespace {

using ::scepca::testing::BuildCsrDer;
using ::scepca::testing::ChallengeEncoding;
using ::scepca::testing::ChallengeShape;
using ::scepca::testing::CsrSpec;
using ::scepca::testing::DerToPem;
using ::scepca::testing::KeySpec;
using ::scepca::testing::KeyType;
using ::scepca::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr absl::StatusCode kInvalid = absl::StatusCode::kInvalidArgument;
// Distinctive, so a test can check that no error message leaks it.
constexpr char kSecret[] = "SECRETXQZ7";

std::string Build(const CsrSpec& spec) {
  absl::StatusOr<std::string> der = BuildCsrDer(spec);
  EXPECT_TRUE(der.ok()) << der.status();
  return der.ok() ? *der : std::string();
}

CsrSpec WithChallenge(ChallengeEncoding encoding, const std::string& value) {
  CsrSpec spec;
  spec.challenge_shape = ChallengeShape::kSingle;
  spec.challenge_encoding = encoding;
  spec.challenge = value;
  return spec;
}

// Expects kInvalidArgument with `rule` in the message and no trace of the
// secret challenge.
void ExpectRefused(const absl::StatusOr<ParsedCsr>& result,
                   const std::string& rule) {
  EXPECT_THAT(result, StatusIs(kInvalid, HasSubstr(rule)));
  EXPECT_THAT(std::string(result.status().message()), Not(HasSubstr(kSecret)));
}

double MillisecondsToParse(const std::string& input) {
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<ParsedCsr> result = ParseCsr(input);
  const auto end = std::chrono::steady_clock::now();
  EXPECT_FALSE(result.ok());
  return std::chrono::duration<double, std::milli>(end - start).count();
}

// --- Keys -----------------------------------------------------------------

TEST(CsrKeyTest, AcceptsRsa2048AndReportsEveryField) {
  CsrSpec spec = WithChallenge(ChallengeEncoding::kPrintableString, "ABC234");
  spec.key = {KeyType::kRsa, 2048};
  spec.common_names = {"device-1"};
  const std::string der = Build(spec);
  absl::StatusOr<ParsedCsr> csr = ParseCsr(der);
  ASSERT_TRUE(csr.ok()) << csr.status();
  EXPECT_EQ(csr->der, der);
  EXPECT_EQ(csr->subject, "CN=device-1");
  EXPECT_EQ(csr->common_name, "device-1");
  EXPECT_EQ(csr->key_type, "RSA");
  EXPECT_EQ(csr->key_bits, 2048);
  EXPECT_EQ(csr->key_curve, "");
  EXPECT_EQ(csr->public_key_sha256.size(), 32u);
  EXPECT_TRUE(csr->has_challenge);
  EXPECT_EQ(csr->challenge_type, ChallengeStringType::kPrintableString);
  EXPECT_EQ(csr->challenge, "ABC234");
  EXPECT_THAT(csr->dns_names, IsEmpty());
}

TEST(CsrKeyTest, AcceptsRsa4096) {
  CsrSpec spec;
  spec.key = {KeyType::kRsa, 4096};
  absl::StatusOr<ParsedCsr> csr = ParseCsr(Build(spec));
  ASSERT_TRUE(csr.ok()) << csr.status();
  EXPECT_EQ(csr->key_type, "RSA");
  EXPECT_EQ(csr->key_bits, 4096);
}

TEST(CsrKeyTest, AcceptsEcP256AndP384) {
  for (auto [type, curve, bits] :
       {std::tuple{KeyType::kEcP256, "P-256", 256},
        std::tuple{KeyType::kEcP384, "P-384", 384}}) {
    CsrSpec spec;
    spec.key = {type};
    absl::StatusOr<ParsedCsr> csr = ParseCsr(Build(spec));
    ASSERT_TRUE(csr.ok()) << curve << ": " << csr.status();
    EXPECT_EQ(csr->key_type, "EC");
    EXPECT_EQ(csr->key_curve, curve);
    EXPECT_EQ(csr->key_bits, bits);
  }
}

// The signature is corrupted too: a refusal naming the key size proves the
// key policy runs before the signature check.
TEST(CsrKeyTest, RefusesRsa1024BeforeTheSignature) {
  CsrSpec spec;
  spec.key = {KeyType::kRsa, 1024};
  ASSERT_TRUE(ParseCsr(Build(spec), CsrPolicy{.min_rsa_bits = 1024}).ok());
  spec.corrupt_signature = true;
  ExpectRefused(ParseCsr(Build(spec)), "RSA key of 1024 bits");
}

// A real 16384-bit key takes minutes to generate; a random modulus of that
// size (with a signature made by another key) is as costly to parse.
TEST(CsrKeyTest, RefusesRsa16384BeforeTheSignatureInUnder50Ms) {
  CsrSpec spec;
  spec.key = {KeyType::kRsa, 2048};
  spec.fake_rsa_public_bits = 16384;
  const std::string der = Build(spec);
  ExpectRefused(ParseCsr(der), "RSA key of 16384 bits");
  ParseCsr(der).IgnoreError();  // Warm up.
  EXPECT_LT(MillisecondsToParse(der), 50.0);
  // With the policy widened, the same request fails on its signature.
  ExpectRefused(ParseCsr(der, CsrPolicy{.max_rsa_bits = 16384}),
                "signature does not verify");
}

// A modulus-sized public exponent would make verification as slow as a
// private-key operation; real keys use 65537.
TEST(CsrKeyTest, RefusesHugeRsaExponentsBeforeTheSignature) {
  CsrSpec spec;
  spec.key = {KeyType::kRsa, 2048};
  spec.fake_rsa_public_bits = 3072;
  spec.fake_rsa_exponent_bits = 3072;
  ExpectRefused(ParseCsr(Build(spec)), "RSA public exponent must be odd");
  spec.fake_rsa_exponent_bits = 64;  // Allowed: fails on the signature.
  ExpectRefused(ParseCsr(Build(spec)), "signature does not verify");
}

TEST(CsrKeyTest, RefusesOtherCurvesAndKeyTypes) {
  CsrSpec spec;
  spec.key = {KeyType::kEcP521};
  ExpectRefused(ParseCsr(Build(spec)), "EC curve secp521r1 is not allowed");
  spec.key = {KeyType::kEcSecp256k1};
  ExpectRefused(ParseCsr(Build(spec)), "EC curve secp256k1 is not allowed");
  spec.key = {KeyType::kEd25519};
  ExpectRefused(ParseCsr(Build(spec)), "key type ED25519 is not allowed");
}

TEST(CsrKeyTest, RefusesCurvesThePolicyDisables) {
  CsrSpec spec;
  spec.key = {KeyType::kEcP256};
  ExpectRefused(ParseCsr(Build(spec), CsrPolicy{.allow_ec_p256 = false}),
                "not allowed");
  spec.key = {KeyType::kEcP384};
  ExpectRefused(ParseCsr(Build(spec), CsrPolicy{.allow_ec_p384 = false}),
                "not allowed");
}

TEST(CsrKeyTest, RefusesExplicitCurveParameters) {
  CsrSpec spec;
  spec.key = {KeyType::kEcP256};
  spec.ec_explicit_params = true;
  ExpectRefused(ParseCsr(Build(spec)), "explicit curve parameters");
}

TEST(CsrKeyTest, PublicKeySha256IsSha256OfI2dPubkey) {
  for (KeySpec key : {KeySpec{KeyType::kRsa, 2048}, KeySpec{KeyType::kEcP256},
                      KeySpec{KeyType::kEcP384}}) {
    CsrSpec spec;
    spec.key = key;
    absl::StatusOr<ParsedCsr> csr = ParseCsr(Build(spec));
    ASSERT_TRUE(csr.ok()) << csr.status();
    const std::string spki = testing::SubjectPublicKeyInfoDer(key);
    ASSERT_FALSE(spki.empty());
    EXPECT_EQ(csr->public_key_sha256, Sha256(spki));
  }
}

TEST(CsrKeyTest, RefusesABadSignature) {
  for (KeySpec key :
       {KeySpec{KeyType::kRsa, 2048}, KeySpec{KeyType::kEcP256}}) {
    CsrSpec spec;
    spec.key = key;
    spec.corrupt_signature = true;
    ExpectRefused(ParseCsr(Build(spec)), "signature does not verify");
  }
}

// --- challengePassword ----------------------------------------------------

TEST(CsrChallengeTest, DecodesTheThreeStringTypesToTheSameText) {
  for (ChallengeEncoding encoding :
       {ChallengeEncoding::kPrintableString, ChallengeEncoding::kUtf8String,
        ChallengeEncoding::kBmpString}) {
    absl::StatusOr<ParsedCsr> csr =
        ParseCsr(Build(WithChallenge(encoding, "ABCD2345EFGH")));
    ASSERT_TRUE(csr.ok()) << csr.status();
    EXPECT_TRUE(csr->has_challenge);
    EXPECT_EQ(csr->challenge, "ABCD2345EFGH");
  }
  EXPECT_EQ(
      ParseCsr(Build(WithChallenge(ChallengeEncoding::kPrintableString, "A")))
          ->challenge_type,
      ChallengeStringType::kPrintableString);
  EXPECT_EQ(ParseCsr(Build(WithChallenge(ChallengeEncoding::kUtf8String, "A")))
                ->challenge_type,
            ChallengeStringType::kUtf8String);
  EXPECT_EQ(ParseCsr(Build(WithChallenge(ChallengeEncoding::kBmpString, "A")))
                ->challenge_type,
            ChallengeStringType::kBmpString);
}

TEST(CsrChallengeTest, DecodesNonAsciiFromUtf8StringAndBmpString) {
  const std::string text =
      "Gr\xC3\xBC\xC3\x9F"
      "e-\xE6\x97\xA5\xE6\x9C\xAC";
  for (ChallengeEncoding encoding :
       {ChallengeEncoding::kUtf8String, ChallengeEncoding::kBmpString}) {
    absl::StatusOr<ParsedCsr> csr =
        ParseCsr(Build(WithChallenge(encoding, text)));
    ASSERT_TRUE(csr.ok()) << csr.status();
    EXPECT_EQ(csr->challenge, text);
  }
}

TEST(CsrChallengeTest, NoChallengeIsNotAnError) {
  absl::StatusOr<ParsedCsr> csr = ParseCsr(Build(CsrSpec{}));
  ASSERT_TRUE(csr.ok()) << csr.status();
  EXPECT_FALSE(csr->has_challenge);
  EXPECT_EQ(csr->challenge_type, ChallengeStringType::kNone);
  EXPECT_EQ(csr->challenge, "");
}

TEST(CsrChallengeTest, RefusesIa5StringNamingTheType) {
  ExpectRefused(
      ParseCsr(Build(WithChallenge(ChallengeEncoding::kIa5String, kSecret))),
      "challengePassword is IA5String");
}

TEST(CsrChallengeTest, RefusesTwoAttributes) {
  CsrSpec spec = WithChallenge(ChallengeEncoding::kPrintableString, kSecret);
  spec.challenge_shape = ChallengeShape::kTwoAttributes;
  ExpectRefused(ParseCsr(Build(spec)),
                "more than one challengePassword attribute");
}

TEST(CsrChallengeTest, RefusesAMultiValuedOrEmptySet) {
  CsrSpec spec = WithChallenge(ChallengeEncoding::kPrintableString, kSecret);
  spec.challenge_shape = ChallengeShape::kMultiValued;
  ExpectRefused(ParseCsr(Build(spec)), "multi-valued: its SET has 2 values");
  spec.challenge_shape = ChallengeShape::kEmptySet;
  ExpectRefused(ParseCsr(Build(spec)), "its SET has 0 values");
}

TEST(CsrChallengeTest, RefusesValuesInvalidInTheirType) {
  CsrSpec spec = WithChallenge(ChallengeEncoding::kUtf8String,
                               std::string(kSecret) + "\xC3");
  ExpectRefused(ParseCsr(Build(spec)), "not valid UTF-8");
  spec.challenge = std::string(kSecret) + "\xC0\xAF";  // Overlong '/'.
  ExpectRefused(ParseCsr(Build(spec)), "not valid UTF-8");
  spec.challenge = std::string(kSecret) + "\xED\xA0\x80";  // A surrogate.
  ExpectRefused(ParseCsr(Build(spec)), "not valid UTF-8");
  spec.challenge = std::string(kSecret) + std::string(1, '\0');
  ExpectRefused(ParseCsr(Build(spec)), "not valid UTF-8");

  spec = WithChallenge(ChallengeEncoding::kBmpString, "");
  spec.challenge_raw_bytes = true;
  // OpenSSL's DER decoder already refuses an odd-length BMPString (ParseCsr
  // checks it again).
  spec.challenge = std::string("\0A\0B\0", 5);
  ExpectRefused(ParseCsr(Build(spec)), "malformed PKCS#10 DER");
  spec.challenge = std::string("\0A\xD8\x3D\xDE\x00", 6);
  ExpectRefused(ParseCsr(Build(spec)), "surrogate");
  // Above U+FFFF, the builder writes a surrogate pair, which UCS-2 lacks.
  spec = WithChallenge(ChallengeEncoding::kBmpString, "A\xF0\x9F\x98\x80");
  ExpectRefused(ParseCsr(Build(spec)), "surrogate");

  // '_' and '@' are not PrintableString characters.
  spec = WithChallenge(ChallengeEncoding::kPrintableString,
                       std::string(kSecret) + "_");
  ExpectRefused(ParseCsr(Build(spec)), "not allowed in a PrintableString");
  spec.challenge = std::string(kSecret) + "@";
  ExpectRefused(ParseCsr(Build(spec)), "not allowed in a PrintableString");
}

TEST(CsrChallengeTest, RefusesAnEmptyValue) {
  for (ChallengeEncoding encoding :
       {ChallengeEncoding::kPrintableString, ChallengeEncoding::kUtf8String,
        ChallengeEncoding::kBmpString}) {
    ExpectRefused(ParseCsr(Build(WithChallenge(encoding, ""))),
                  "challengePassword is empty");
  }
}

TEST(CsrChallengeTest, CountsCharactersNotBytesUpTo255) {
  for (ChallengeEncoding encoding :
       {ChallengeEncoding::kPrintableString, ChallengeEncoding::kUtf8String,
        ChallengeEncoding::kBmpString}) {
    EXPECT_TRUE(
        ParseCsr(Build(WithChallenge(encoding, std::string(255, 'A')))).ok());
    ExpectRefused(
        ParseCsr(Build(WithChallenge(encoding, std::string(256, 'A')))),
        "longer than 255 characters");
  }
  // 255 two-byte characters (510 bytes of UTF-8) are 255 characters.
  std::string umlauts;
  for (int i = 0; i < 255; ++i) umlauts += "\xC3\xBC";
  absl::StatusOr<ParsedCsr> csr =
      ParseCsr(Build(WithChallenge(ChallengeEncoding::kUtf8String, umlauts)));
  ASSERT_TRUE(csr.ok()) << csr.status();
  EXPECT_EQ(csr->challenge, umlauts);
  ExpectRefused(ParseCsr(Build(WithChallenge(ChallengeEncoding::kBmpString,
                                             umlauts + "\xC3\xBC"))),
                "longer than 255 characters");
}

TEST(CsrChallengeTest, NamesTheStringTypes) {
  EXPECT_EQ(ChallengeStringTypeName(ChallengeStringType::kNone), "None");
  EXPECT_EQ(ChallengeStringTypeName(ChallengeStringType::kPrintableString),
            "PrintableString");
  EXPECT_EQ(ChallengeStringTypeName(ChallengeStringType::kUtf8String),
            "UTF8String");
  EXPECT_EQ(ChallengeStringTypeName(ChallengeStringType::kBmpString),
            "BMPString");
}

// --- Subject and SANs -----------------------------------------------------

TEST(CsrNameTest, ReadsSansOfEveryType) {
  CsrSpec spec;
  spec.common_names = {"J\xC3\xBCrgen"};
  spec.dns_names = {"a.example.com", "b.example.com"};
  spec.email_addresses = {"user@example.com"};
  spec.uris = {"spiffe://example.com/device/1"};
  spec.ip_addresses = {"192.0.2.1", "2001:db8::1"};
  absl::StatusOr<ParsedCsr> csr = ParseCsr(Build(spec));
  ASSERT_TRUE(csr.ok()) << csr.status();
  EXPECT_EQ(csr->common_name, "J\xC3\xBCrgen");
  EXPECT_EQ(csr->subject, "CN=J\xC3\xBCrgen");
  EXPECT_THAT(csr->dns_names, ElementsAre("a.example.com", "b.example.com"));
  EXPECT_THAT(csr->email_addresses, ElementsAre("user@example.com"));
  EXPECT_THAT(csr->uris, ElementsAre("spiffe://example.com/device/1"));
  EXPECT_THAT(csr->ip_addresses, ElementsAre("192.0.2.1", "2001:db8::1"));
}

TEST(CsrNameTest, AcceptsMaxSansAndRefusesOneMore) {
  CsrSpec spec;
  for (int i = 0; i < 32; ++i) {
    spec.dns_names.push_back(absl::StrCat("h", i, ".example.com"));
  }
  EXPECT_TRUE(ParseCsr(Build(spec)).ok());
  spec.ip_addresses = {"10.0.0.1"};
  ExpectRefused(ParseCsr(Build(spec)), "more than 32 SANs (33)");
}

TEST(CsrNameTest, Refuses5000SansInUnder50Ms) {
  CsrSpec spec;
  spec.dns_names.assign(5000, "a");
  const std::string der = Build(spec);
  ASSERT_LE(der.size(), 16u * 1024);
  ExpectRefused(ParseCsr(der), "more than 32 SANs (5000)");
  EXPECT_LT(MillisecondsToParse(der), 50.0);
}

TEST(CsrNameTest, RefusesMalformedSans) {
  CsrSpec spec;
  spec.raw_ip_addresses = {std::string("\x0a\x00\x00\x01\x00", 5)};
  ExpectRefused(ParseCsr(Build(spec)), "iPAddress SAN has 5 bytes");
  spec = CsrSpec{};
  spec.dns_names = {std::string("good.example.com\0.evil.com", 25)};
  ExpectRefused(ParseCsr(Build(spec)), "dNSName SAN contains a byte outside");
  spec.dns_names = {""};
  ExpectRefused(ParseCsr(Build(spec)), "dNSName SAN is empty");
}

TEST(CsrNameTest, RefusesTwoExtensionRequests) {
  // The challengePassword attribute becomes a second extensionRequest.
  CsrSpec spec = WithChallenge(ChallengeEncoding::kPrintableString, "ABC");
  spec.dns_names = {"a.example.com"};
  spec.tbs_patches = {{"\x06\x09\x2A\x86\x48\x86\xF7\x0D\x01\x09\x07",
                       "\x06\x09\x2A\x86\x48\x86\xF7\x0D\x01\x09\x0E"}};
  ExpectRefused(ParseCsr(Build(spec)),
                "more than one extensionRequest attribute");
}

TEST(CsrNameTest, RefusesTwoCommonNames) {
  CsrSpec spec;
  spec.common_names = {"first", "second"};
  ExpectRefused(ParseCsr(Build(spec)), "more than one CN");
}

TEST(CsrNameTest, AcceptsNoCommonName) {
  CsrSpec spec;
  spec.common_names = {};
  spec.dns_names = {"a.example.com"};
  absl::StatusOr<ParsedCsr> csr = ParseCsr(Build(spec));
  ASSERT_TRUE(csr.ok()) << csr.status();
  EXPECT_EQ(csr->common_name, "");
  EXPECT_EQ(csr->subject, "");
}

// --- Framing --------------------------------------------------------------

TEST(CsrFramingTest, PemAndDerGiveTheSameResult) {
  CsrSpec spec = WithChallenge(ChallengeEncoding::kUtf8String, "ABC");
  spec.dns_names = {"a.example.com"};
  const std::string der = Build(spec);
  absl::StatusOr<ParsedCsr> from_der = ParseCsr(der);
  ASSERT_TRUE(from_der.ok()) << from_der.status();
  for (const std::string& pem :
       {DerToPem(der), DerToPem(der, "NEW CERTIFICATE REQUEST"),
        absl::StrCat("\n  ", DerToPem(der), "\r\n\n")}) {
    absl::StatusOr<ParsedCsr> from_pem = ParseCsr(pem);
    ASSERT_TRUE(from_pem.ok()) << from_pem.status();
    EXPECT_EQ(from_pem->der, from_der->der);
    EXPECT_EQ(from_pem->subject, from_der->subject);
    EXPECT_EQ(from_pem->dns_names, from_der->dns_names);
    EXPECT_EQ(from_pem->public_key_sha256, from_der->public_key_sha256);
    EXPECT_EQ(from_pem->challenge, from_der->challenge);
  }
}

TEST(CsrFramingTest, RefusesOtherPemBlocksAndExtraText) {
  const std::string der = Build(CsrSpec{});
  ExpectRefused(ParseCsr(DerToPem(der, "CERTIFICATE")), "PEM label");
  ExpectRefused(ParseCsr(DerToPem(der) + "junk\n"), "text after the PEM block");
  ExpectRefused(ParseCsr(DerToPem(der) + DerToPem(der)),
                "text after the PEM block");
  ExpectRefused(ParseCsr("hello\n" + DerToPem(der)), "neither DER nor PEM");
  std::string pem = DerToPem(der);
  ExpectRefused(ParseCsr(pem.substr(0, pem.size() / 2)), "not PEM");
  // PEM whose payload has a byte after the DER.
  ExpectRefused(ParseCsr(DerToPem(der + "X")), "trailing bytes after the DER");
}

TEST(CsrFramingTest, RefusesEmptyAndNonCsrInput) {
  ExpectRefused(ParseCsr(""), "empty input");
  ExpectRefused(ParseCsr("hello"), "neither DER nor PEM");
  ExpectRefused(ParseCsr(std::string("\x30\x80\x00\x00", 4)),
                "indefinite length");
  ExpectRefused(ParseCsr(std::string("\x30\x03\x02\x01\x00", 5)),
                "malformed PKCS#10");
}

TEST(CsrFramingTest, RefusesVersionsOtherThanV1) {
  CsrSpec spec;
  spec.tbs_patches = {
      {std::string("\x02\x01\x00", 3), std::string("\x02\x01\x01", 3)}};
  ExpectRefused(ParseCsr(Build(spec)), "version is not v1");
}

TEST(CsrFramingTest, LeavesNoOpenSslErrorsBehind) {
  ERR_clear_error();
  const std::string der = Build(CsrSpec{});
  EXPECT_FALSE(ParseCsr(der.substr(0, der.size() - 1)).ok());
  EXPECT_FALSE(ParseCsr(std::string("\x30\x03\x02\x01\x00", 5)).ok());
  EXPECT_FALSE(ParseCsr("-----BEGIN CERTIFICATE REQUEST-----\n!!\n").ok());
  CsrSpec bad_signature;
  bad_signature.corrupt_signature = true;
  EXPECT_FALSE(ParseCsr(Build(bad_signature)).ok());
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(CsrFramingTest, RefusesEveryTruncation) {
  const std::string der = Build(CsrSpec{});
  for (size_t n = 1; n < der.size(); ++n) {
    EXPECT_THAT(ParseCsr(der.substr(0, n)),
                StatusIs(kInvalid, HasSubstr("truncated DER")))
        << n;
  }
}

TEST(CsrFramingTest, RefusesTrailingGarbage) {
  const std::string der = Build(CsrSpec{});
  ExpectRefused(ParseCsr(der + std::string(1, '\0')),
                "trailing bytes after the DER: 1 bytes");
  ExpectRefused(ParseCsr(der + der), "trailing bytes after the DER");
}

TEST(CsrFramingTest, RefusesOneMebibyteFast) {
  std::string big(1 << 20, 'A');
  big[0] = 0x30;
  ExpectRefused(ParseCsr(big), "the limit is 16384");
  EXPECT_LT(MillisecondsToParse(big), 50.0);
  std::string pem =
      "-----BEGIN CERTIFICATE REQUEST-----\n" + std::string(1 << 20, 'A');
  ExpectRefused(ParseCsr(pem), "the PEM limit is");
  EXPECT_LT(MillisecondsToParse(pem), 50.0);
  // The DER limit also applies to the payload of a PEM that fits its limit.
  const std::string der = Build(CsrSpec{});
  ExpectRefused(ParseCsr(DerToPem(der), CsrPolicy{.max_der_bytes = 100}),
                "the limit is 100");
}

// --- A real SCEP client ---------------------------------------------------

std::string FindInPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  for (absl::string_view dir :
       absl::StrSplit(path != nullptr ? path : "/usr/bin", ':')) {
    std::string candidate = absl::StrCat(dir, "/", name);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// Debian's scepclient (micromdm/scep) writes csr.pem next to its key before
// it contacts the server, so an unreachable server is enough.
TEST(CsrScepclientTest, ParsesTheRequestOfDebiansScepclient) {
  const std::string scepclient = FindInPath("scepclient");
  if (scepclient.empty()) {
    if (std::getenv("SCEPCA_REQUIRE_SCEP") != nullptr) {
      FAIL() << "scepclient not found and SCEPCA_REQUIRE_SCEP is set";
    }
    GTEST_SKIP() << "scepclient not installed";
  }
  const std::string dir = testing::MakeTempDir();
  absl::StatusOr<testing::CommandResult> run = testing::RunCommand(
      {scepclient, "-private-key", dir + "/key.pem", "-server-url",
       "http://127.0.0.1:1/scep", "-challenge", "ABC", "-cn", "foo"});
  ASSERT_TRUE(run.ok()) << run.status();
  const std::string pem = testing::ReadFile(dir + "/csr.pem");
  std::filesystem::remove_all(dir);
  ASSERT_FALSE(pem.empty()) << "no csr.pem; scepclient said: " << run->err;

  absl::StatusOr<ParsedCsr> csr = ParseCsr(pem);
  ASSERT_TRUE(csr.ok()) << csr.status();
  EXPECT_EQ(csr->common_name, "foo");
  EXPECT_EQ(csr->subject, "CN=foo,OU=MDM,O=scep-client,C=US");
  EXPECT_TRUE(csr->has_challenge);
  EXPECT_EQ(csr->challenge_type, ChallengeStringType::kPrintableString);
  EXPECT_EQ(csr->challenge, "ABC");
  EXPECT_EQ(csr->key_type, "RSA");
  EXPECT_EQ(csr->key_bits, 2048);
}

}  // namespace
}  // namespace scepca
