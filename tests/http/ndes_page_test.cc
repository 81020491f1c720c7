#include "service/http/ndes_page.h"

#include <openssl/sha.h>

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/base64.h"
#include "service/core/hashing.h"
#include "tests/http/http_test_util.h"
#include "tests/testing/status_matchers.h"

namespace scepca::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

// The pages real NDES served, as captured in fleetdm/fleet's
// ee/server/service/scep/sceptest/testdata (decoded from UTF-16LE).
constexpr char kCapturedPasswordPage[] =
    "<HTML><Head><Meta HTTP-Equiv=\"Content-Type\" Content=\"text/html; "
    "charset=UTF-8\"><Title>Network Device Enrollment Service</Title></Head>"
    "<Body BgColor=#FFFFFF><Font ID=locPageFont Face=\"Arial\"><Table "
    "Border=0 CellSpacing=0 CellPadding=4 Width=100% BgColor=#008080><TR><TD>"
    "<Font ID=locPageTitleFont Face=\"Arial\" Size=-1 Color=#FFFFFF><LocID "
    "ID=locMSCertSrv>Network Device Enrollment Service</LocID></Font></TD>"
    "</TR></Table><P ID=locPageTitle> Network Device Enrollment Service "
    "allows you to obtain certificates for routers or other network devices "
    "using the Simple Certificate Enrollment Protocol (SCEP). </P><P> To "
    "complete certificate enrollment for your network device you will need "
    "the following information: <P> The thumbprint (hash value) for the CA "
    "certificate is: <B> A656FA66 AB12B433 A2DA5CF7 CC153D9A </B> <P> The "
    "enrollment challenge password is: <B> 8CE317021F690069 </B> <P> This "
    "password can be used only once and will expire within 60 minutes. <P> "
    "Each enrollment requires a new challenge password. You can refresh this "
    "web page to obtain a new challenge password. </P> <P ID=locPageDesc> For "
    "more information see  <A "
    "HREF=http://go.microsoft.com/fwlink/?LinkId=67852>Using Network Device "
    "Enrollment Service </A>. </P></Font></Body></HTML>";

constexpr char kCapturedCacheFullPage[] =
    "<HTML><Head><Meta HTTP-Equiv=\"Content-Type\" Content=\"text/html; "
    "charset=UTF-8\"><Title>Network Device Enrollment Service</Title></Head>"
    "<Body BgColor=#FFFFFF><Font ID=locPageFont Face=\"Arial\"><Table "
    "Border=0 CellSpacing=0 CellPadding=4 Width=100% BgColor=#008080><TR><TD>"
    "<Font ID=locPageTitleFont Face=\"Arial\" Size=-1 Color=#FFFFFF><LocID "
    "ID=locMSCertSrv>Network Device Enrollment Service</LocID></Font></TD>"
    "</TR></Table><P ID=locPageTitle> Network Device Enrollment Service "
    "allows you to obtain certificates for routers or other network devices "
    "using the Simple Certificate Enrollment Protocol (SCEP). </P><P> The "
    "password cache is full. <P> Network Device Enrollment Service stores "
    "unused password for later use. By default, passwords are stored for 60 "
    "minutes.<P>Use one of the existing passwords. If you cannot use an "
    "existing password: <UL> <LI> Wait until one or more existing passwords "
    "expire (by default passwords expire 60 minutes after they are created). "
    "</LI> <LI> Restart Internet Information Services (IIS). </LI> <LI> "
    "Configure the service to cache more than 5 passwords. </LI> </UL> </P> "
    "<P ID=locPageDesc> For more information see  <A "
    "HREF=http://go.microsoft.com/fwlink/?LinkId=67852>Using Network Device "
    "Enrollment Service </A>. </P></Font></Body></HTML>";

constexpr char kCapturedInsufficientPermissionPage[] =
    "<HTML><Head><Meta HTTP-Equiv=\"Content-Type\" Content=\"text/html; "
    "charset=UTF-8\"><Title>Network Device Enrollment Service</Title></Head>"
    "<Body BgColor=#FFFFFF><Font ID=locPageFont Face=\"Arial\"><Table "
    "Border=0 CellSpacing=0 CellPadding=4 Width=100% BgColor=#008080><TR><TD>"
    "<Font ID=locPageTitleFont Face=\"Arial\" Size=-1 Color=#FFFFFF><LocID "
    "ID=locMSCertSrv>Network Device Enrollment Service</LocID></Font></TD>"
    "</TR></Table><P ID=locPageTitle> Network Device Enrollment Service "
    "allows you to obtain certificates for routers or other network devices "
    "using the Simple Certificate Enrollment Protocol (SCEP). </P><P> You do "
    "not have sufficient permission to enroll with SCEP.  Please contact your "
    "system administrator. </P> <P ID=locPageDesc> For more information see  "
    "<A HREF=http://go.microsoft.com/fwlink/?LinkId=67852>Using Network "
    "Device Enrollment Service </A>. </P></Font></Body></HTML>";

TEST(NdesPageTextTest, PasswordPageIsNdesByteForByte) {
  EXPECT_EQ(NdesPasswordPage("8CE317021F690069",
                             "A656FA66 AB12B433 A2DA5CF7 CC153D9A", 60),
            kCapturedPasswordPage);
}

TEST(NdesPageTextTest, PasswordPageWithoutThumbprintOmitsTheSentence) {
  const std::string page = NdesPasswordPage("8CE317021F690069", "", 15);
  EXPECT_THAT(page, Not(HasSubstr("thumbprint")));
  EXPECT_THAT(page, HasSubstr("information: <P> The enrollment challenge "
                              "password is: <B> 8CE317021F690069 </B> <P> "
                              "This password can be used only once and will "
                              "expire within 15 minutes. <P>"));
}

TEST(NdesPageTextTest, ErrorPagesAreNdesByteForByte) {
  EXPECT_EQ(NdesCacheFullPage(5), kCapturedCacheFullPage);
  EXPECT_EQ(NdesInsufficientPermissionPage(),
            kCapturedInsufficientPermissionPage);
}

TEST(NdesPageTextTest, EncodesUtf16LittleEndianWithBom) {
  EXPECT_EQ(EncodeUtf16LeWithBom("<B>"), std::string("\xFF\xFE<\0B\0>\0", 8));
  EXPECT_EQ(EncodeUtf16LeWithBom("\xC3\xA9"), std::string("\xFF\xFE\xE9\0", 4));
  EXPECT_EQ(EncodeUtf16LeWithBom("\xE2\x82\xAC"),
            std::string("\xFF\xFE\xAC\x20", 4));
  EXPECT_EQ(EncodeUtf16LeWithBom("\xF0\x9F\x98\x80"),
            std::string("\xFF\xFE\x3D\xD8\x00\xDE", 6));
  EXPECT_EQ(EncodeUtf16LeWithBom(""), "\xFF\xFE");
}

TEST(NdesPageTextTest, ThumbprintIsUpperCaseSha1InGroupsOfEight) {
  const TestCertificate cert = MakeSelfSignedCertificate("Test CA", 7);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(cert.der.data()), cert.der.size(),
       digest);
  const std::string hex = absl::AsciiStrToUpper(HexEncode(absl::string_view(
      reinterpret_cast<const char*>(digest), sizeof(digest))));
  const std::string expected = absl::StrCat(
      hex.substr(0, 8), " ", hex.substr(8, 8), " ", hex.substr(16, 8), " ",
      hex.substr(24, 8), " ", hex.substr(32, 8));
  absl::StatusOr<std::string> from_der = NdesThumbprint(cert.der);
  ASSERT_THAT(from_der, IsOk());
  EXPECT_EQ(*from_der, expected);
  EXPECT_THAT(*from_der, MatchesRegex("[0-9A-F]{8}( [0-9A-F]{8}){4}"));
  absl::StatusOr<std::string> from_pem = NdesThumbprint(cert.pem);
  ASSERT_THAT(from_pem, IsOk());
  EXPECT_EQ(*from_pem, expected);
  EXPECT_THAT(NdesThumbprint("junk"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

class NdesEndpointTest : public HttpServerTest {
 protected:
  void SetUp() override {
    HttpServerTest::SetUp();
    ASSERT_NO_FATAL_FAILURE(StartServer());
  }

  httplib::Result Get(const std::string& path, const std::string& user,
                      const std::string& password) {
    httplib::Client client = Client();
    client.set_basic_auth(user.c_str(), password.c_str());
    return client.Get(path.c_str());
  }

  // Fetches the page as Fleet would and returns the challenge Fleet reads
  // (after checking zentral reads the same).
  std::string FetchChallenge(
      const std::string& user, const std::string& password,
      const std::string& path = "/certsrv/mscep_admin/") {
    httplib::Result r = Get(path, user, password);
    EXPECT_TRUE(r);
    if (!r) return "";
    EXPECT_EQ(r->status, 200);
    const std::string fleet = ExtractLikeFleet(DecodeLikeFleet(r->body));
    EXPECT_EQ(ExtractLikeZentral(DecodeLikeZentral(r->body)), fleet);
    return fleet;
  }

  Verdict Validate(const std::string& challenge) {
    ValidateRequest request;
    request.challenge = challenge;
    request.transaction_id = "TX";
    absl::StatusOr<Verdict> verdict = authority_->Validate(request);
    EXPECT_THAT(verdict, IsOk());
    return verdict.ok() ? *verdict : Verdict();
  }
};

TEST_F(NdesEndpointTest, AnonymousRequestGets401OfferingOnlyBasic) {
  for (const char* path : {"/certsrv/mscep_admin/", "/certsrv/mscep_admin",
                           "/CertSrv/mscep_admin/"}) {
    httplib::Result r = Client().Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 401) << path;
    ASSERT_EQ(r->get_header_value_count("WWW-Authenticate"), 1u);
    const std::string challenge = r->get_header_value("WWW-Authenticate");
    EXPECT_EQ(challenge, "Basic realm=\"SCEP Challenge Authority\"");
    // go-ntlmssp's test: the exact token "Basic" or a "Basic " prefix.
    EXPECT_THAT(challenge, ::testing::StartsWith("Basic "));
  }
}

TEST_F(NdesEndpointTest, WrongCredentialsGet401) {
  for (const auto& [user, password] :
       {std::make_pair("fleet", "wrong-password-1"),
        std::make_pair("nobody", kFleetPassword),
        std::make_pair("fleet", "")}) {
    httplib::Result r = Get("/certsrv/mscep_admin/", user, password);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401) << user;
    EXPECT_EQ(r->get_header_value("WWW-Authenticate"),
              "Basic realm=\"SCEP Challenge Authority\"");
  }
  httplib::Client client = Client();
  httplib::Result r = client.Get(
      "/certsrv/mscep_admin/",
      {{"Authorization",
        "NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAGAbEdAAAADw=="}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
}

TEST_F(NdesEndpointTest, PageIsUtf16LeWithBomAndItsChallengeValidates) {
  httplib::Result r = Get("/certsrv/mscep_admin/", "fleet", kFleetPassword);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  ASSERT_GE(r->body.size(), 2u);
  EXPECT_EQ(r->body.substr(0, 2), "\xFF\xFE");
  EXPECT_EQ(r->body.size() % 2, 0u);
  EXPECT_EQ(r->body[3], '\0');
  EXPECT_EQ(r->get_header_value("Cache-Control"), "no-store");
  const std::string text = DecodeLikeFleet(r->body);
  EXPECT_THAT(text, ::testing::StartsWith(
                        "<HTML><Head><Meta HTTP-Equiv=\"Content-Type\" "
                        "Content=\"text/html; charset=UTF-8\">"));
  EXPECT_THAT(text, HasSubstr("This password can be used only once and will "
                              "expire within 60 minutes."));
  EXPECT_THAT(text, Not(HasSubstr("thumbprint")));
  EXPECT_EQ(text.find('\n'), std::string::npos);  // One line.
  const std::string challenge = ExtractLikeFleet(text);
  EXPECT_THAT(challenge, MatchesRegex("[A-Z2-7]{26}"));
  EXPECT_EQ(ExtractLikeZentral(DecodeLikeZentral(r->body)), challenge);

  const Verdict verdict = Validate(challenge);
  EXPECT_TRUE(verdict.valid) << verdict.message;
  ASSERT_TRUE(verdict.record.has_value());
  EXPECT_EQ(verdict.record->device_id, "ndes:fleet");
  EXPECT_EQ(verdict.record->user_id, "alice");
  EXPECT_EQ(verdict.record->labels, (std::map<std::string, std::string>{
                                        {"site", "hq"}, {"template", "wifi"}}));
  EXPECT_EQ(verdict.record->expires_at - verdict.record->created_at,
            absl::Minutes(60));
  EXPECT_FALSE(Validate(challenge).valid);
}

TEST_F(NdesEndpointTest, EveryRefreshGivesANewChallengeWithOrWithoutSlash) {
  const std::string a = FetchChallenge("fleet", kFleetPassword);
  const std::string b =
      FetchChallenge("fleet", kFleetPassword, "/certsrv/mscep_admin");
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  EXPECT_NE(a, b);
  EXPECT_TRUE(Validate(b).valid);
  EXPECT_TRUE(Validate(a).valid);
}

TEST_F(NdesEndpointTest, ThumbprintSentenceAppearsWithACaCert) {
  const TestCertificate cert = MakeSelfSignedCertificate("NDES CA", 1);
  options_.ndes_ca_cert_file = WriteTestFile(dir_, "ca.pem", cert.pem, 0644);
  server_.reset();
  ASSERT_NO_FATAL_FAILURE(StartServer());
  httplib::Result r = Get("/certsrv/mscep_admin/", "fleet", kFleetPassword);
  ASSERT_TRUE(r);
  const std::string text = DecodeLikeFleet(r->body);
  absl::StatusOr<std::string> thumbprint = NdesThumbprint(cert.der);
  ASSERT_THAT(thumbprint, IsOk());
  EXPECT_THAT(text, HasSubstr(absl::StrCat(
                        "<P> The thumbprint (hash value) for the CA "
                        "certificate is: <B> ",
                        *thumbprint,
                        " </B> <P> The enrollment challenge password is: "
                        "<B> ")));
  // Both parsers anchor on the password sentence, not the first <B>.
  const std::string challenge = ExtractLikeFleet(text);
  EXPECT_THAT(challenge, MatchesRegex("[A-Z2-7]{26}"));
  EXPECT_EQ(ExtractLikeZentral(DecodeLikeZentral(r->body)), challenge);
  EXPECT_TRUE(Validate(challenge).valid);
}

TEST_F(NdesEndpointTest, QuotaAccountGetsTheCacheFullPage) {
  const std::string first = FetchChallenge("limited", kLimitedPassword);
  const std::string second = FetchChallenge("limited", kLimitedPassword);
  ASSERT_FALSE(first.empty());
  ASSERT_FALSE(second.empty());
  httplib::Result r = Get("/certsrv/mscep_admin/", "limited", kLimitedPassword);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body.substr(0, 2), "\xFF\xFE");
  const std::string text = DecodeLikeFleet(r->body);
  EXPECT_EQ(text, NdesCacheFullPage(2));
  EXPECT_THAT(text, HasSubstr("The password cache is full."));
  EXPECT_EQ(ExtractLikeFleet(text), "");
  EXPECT_EQ(ExtractLikeZentral(text), "");
  // Using one frees a place.
  EXPECT_TRUE(Validate(first).valid);
  const std::string third = FetchChallenge("limited", kLimitedPassword);
  EXPECT_FALSE(third.empty());
  EXPECT_THAT(
      DecodeLikeFleet(
          Get("/certsrv/mscep_admin/", "limited", kLimitedPassword)->body),
      HasSubstr("The password cache is full."));
  // So does expiry (ttl=15m for this account).
  clock_.Advance(absl::Minutes(15));
  EXPECT_FALSE(FetchChallenge("limited", kLimitedPassword).empty());
}

TEST_F(NdesEndpointTest, ExpiryMinutesFollowTheAccountTtl) {
  httplib::Result r = Get("/certsrv/mscep_admin/", "limited", kLimitedPassword);
  ASSERT_TRUE(r);
  EXPECT_THAT(DecodeLikeFleet(r->body),
              HasSubstr("will expire within 15 minutes."));
}

TEST_F(NdesEndpointTest, AccountWithoutIssueGetsTheInsufficientPermissionPage) {
  httplib::Result r = Get("/certsrv/mscep_admin/", "viewer", kViewerPassword);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body.substr(0, 2), "\xFF\xFE");
  const std::string text = DecodeLikeFleet(r->body);
  EXPECT_EQ(text, kCapturedInsufficientPermissionPage);
  EXPECT_THAT(text, HasSubstr("You do not have sufficient permission to enroll "
                              "with SCEP.  Please contact your system "
                              "administrator."));
  EXPECT_EQ(ExtractLikeFleet(text), "");
}

}  // namespace
}  // namespace scepca::testing
