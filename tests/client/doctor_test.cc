// Unit tests of the doctor's rules: the TLS chain against Apple's rules,
// GetCACaps and GetCACert answers, the authority's verdict, and the output.
#include "client/doctor.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/cert_builder.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"

namespace scepca {
namespace {

namespace di = ::scepca::doctor_internal;
namespace v1 = ::scep::challenge::v1;
using ::scepca::testing::CertAndKey;
using ::scepca::testing::CertSpec;
using ::scepca::testing::IsOk;
using ::scepca::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

struct Free {
  void operator()(X509* p) const { X509_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(PKCS7* p) const { PKCS7_free(p); }
};
template <typename T>
using Ptr = std::unique_ptr<T, Free>;

Ptr<X509> ReadCert(const std::string& pem) {
  Ptr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return Ptr<X509>(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

std::string ToDer(X509* cert) {
  unsigned char* out = nullptr;
  const int n = i2d_X509(cert, &out);
  std::string der(reinterpret_cast<char*>(out), static_cast<size_t>(n));
  OPENSSL_free(out);
  return der;
}

std::string Der(const std::string& pem) { return ToDer(ReadCert(pem).get()); }

// A PKCS#7 certs-only message (what GetCACert returns for CA + RA).
std::string CertsOnly(const std::vector<std::string>& pems) {
  Ptr<PKCS7> p7(PKCS7_new());
  PKCS7_set_type(p7.get(), NID_pkcs7_signed);
  PKCS7_content_new(p7.get(), NID_pkcs7_data);
  for (const std::string& pem : pems) {
    Ptr<X509> cert = ReadCert(pem);
    PKCS7_add_certificate(p7.get(), cert.get());
  }
  unsigned char* out = nullptr;
  const int n = i2d_PKCS7(p7.get(), &out);
  std::string der(reinterpret_cast<char*>(out), static_cast<size_t>(n));
  OPENSSL_free(out);
  return der;
}

// Re-signs `cert` with the issuer's key and SHA-1.
std::string ResignSha1(const std::string& cert_pem, const CertAndKey& issuer) {
  Ptr<X509> cert = ReadCert(cert_pem);
  Ptr<BIO> bio(BIO_new_mem_buf(issuer.key_pem.data(),
                               static_cast<int>(issuer.key_pem.size())));
  Ptr<EVP_PKEY> key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  EXPECT_GT(X509_sign(cert.get(), key.get(), EVP_sha1()), 0);
  return ToDer(cert.get());
}

const Check* Find(const std::vector<Check>& checks, const std::string& id) {
  for (const Check& c : checks) {
    if (c.id == id) return &c;
  }
  return nullptr;
}

MATCHER_P2(HasCheck, id, status,
           absl::StrCat("has check ", id, " ", CheckStatusName(status))) {
  const Check* c = Find(arg, id);
  if (c == nullptr) {
    *result_listener << "no check " << id;
    return false;
  }
  *result_listener << CheckStatusName(c->status) << " " << c->message << " / "
                   << c->advice;
  return c->status == status;
}

std::string MessageOf(const std::vector<Check>& checks, const std::string& id) {
  const Check* c = Find(checks, id);
  return c == nullptr ? "" : c->message;
}

constexpr CheckStatus kPass = CheckStatus::kPass;
constexpr CheckStatus kWarn = CheckStatus::kWarn;
constexpr CheckStatus kFail = CheckStatus::kFail;

// A private CA and server certificates for "scep.test".
class DoctorTlsRulesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    CertSpec ca_spec;
    ca_spec.common_name = "Doctor Test Root";
    ca_spec.is_ca = true;
    ca_spec.rsa_bits = 0;  // EC P-256: quicker to make than RSA.
    ca_spec.not_after = absl::Hours(24 * 3650);
    absl::StatusOr<CertAndKey> ca = testing::MakeSelfSigned(ca_spec);
    ASSERT_THAT(ca, IsOk());
    ca_ = new CertAndKey(*ca);
    dir_ = new std::string(testing::MakeTempDir());
    ca_file_ = new std::string(
        testing::WriteFileWithMode(*dir_ + "/ca.pem", ca->cert_pem, 0644));
  }

  static CertSpec Compliant() {
    CertSpec spec;
    spec.common_name = "scep.test";
    spec.dns_names = {"scep.test"};
    spec.not_after = absl::Hours(24 * 365);
    spec.client_auth = false;
    return spec;
  }

  static std::vector<Check> RunRules(const CertSpec& spec,
                                     const std::string& host = "scep.test",
                                     bool with_ca_file = true) {
    absl::StatusOr<CertAndKey> leaf = testing::MakeSigned(spec, *ca_);
    EXPECT_THAT(leaf, IsOk());
    if (!leaf.ok()) return {};
    return di::CheckTlsChain({Der(leaf->cert_pem)}, host,
                             with_ca_file ? *ca_file_ : "", absl::Now());
  }

  static CertAndKey* ca_;
  static std::string* dir_;
  static std::string* ca_file_;
};

CertAndKey* DoctorTlsRulesTest::ca_ = nullptr;
std::string* DoctorTlsRulesTest::dir_ = nullptr;
std::string* DoctorTlsRulesTest::ca_file_ = nullptr;

TEST_F(DoctorTlsRulesTest, PassesACompliantCertificate) {
  std::vector<Check> checks = RunRules(Compliant());
  for (const char* id : {"tls.san-dns-name", "tls.validity", "tls.key-size",
                         "tls.signature", "tls.eku-server-auth", "tls.trust"}) {
    EXPECT_THAT(checks, HasCheck(id, kPass));
  }
  EXPECT_THAT(MessageOf(checks, "tls.san-dns-name"),
              HasSubstr("DNS scep.test"));
  EXPECT_THAT(MessageOf(checks, "tls.key-size"), HasSubstr("leaf: RSA 2048"));
  EXPECT_THAT(MessageOf(checks, "tls.trust"), HasSubstr("2 certificates"));
}

TEST_F(DoctorTlsRulesTest, FailsANameOnlyInTheCn) {
  CertSpec spec = Compliant();
  spec.dns_names.clear();
  std::vector<Check> checks = RunRules(spec);
  EXPECT_THAT(checks, HasCheck("tls.san-dns-name", kFail));
  EXPECT_THAT(MessageOf(checks, "tls.san-dns-name"),
              HasSubstr("only in the subject CN"));
  EXPECT_THAT(Find(checks, "tls.san-dns-name")->advice,
              HasSubstr("DNS:scep.test"));
  // A device does not trust it either: names in the CN do not count.
  EXPECT_THAT(checks, HasCheck("tls.trust", kFail));
}

TEST_F(DoctorTlsRulesTest, FailsASanForAnotherName) {
  CertSpec spec = Compliant();
  spec.dns_names = {"other.test"};
  std::vector<Check> checks = RunRules(spec);
  EXPECT_THAT(checks, HasCheck("tls.san-dns-name", kFail));
  EXPECT_THAT(
      MessageOf(checks, "tls.san-dns-name"),
      AllOf(HasSubstr("does not name scep.test"), HasSubstr("DNS other.test")));
}

TEST_F(DoctorTlsRulesTest, MatchesAWildcardAndAnIpAddress) {
  CertSpec spec = Compliant();
  spec.dns_names = {"*.example.test"};
  EXPECT_THAT(RunRules(spec, "scep.example.test"),
              HasCheck("tls.san-dns-name", kPass));
  spec.dns_names = {};
  spec.ip_addresses = {"127.0.0.1"};
  std::vector<Check> checks = RunRules(spec, "127.0.0.1");
  EXPECT_THAT(checks, HasCheck("tls.san-dns-name", kPass));
  EXPECT_THAT(checks, HasCheck("tls.trust", kPass));
  EXPECT_THAT(RunRules(spec, "127.0.0.2"), HasCheck("tls.san-dns-name", kFail));
}

TEST_F(DoctorTlsRulesTest, FailsTwentyYearsOfValidity) {
  CertSpec spec = Compliant();
  spec.not_after = absl::Hours(24 * 365 * 20);
  std::vector<Check> checks = RunRules(spec);
  EXPECT_THAT(checks, HasCheck("tls.validity", kFail));
  EXPECT_THAT(MessageOf(checks, "tls.validity"), HasSubstr("825 days"));
}

TEST_F(DoctorTlsRulesTest, Warns500DaysUnderAPrivateRoot) {
  // Over 398 days but under 825: Apple refuses it only under a public root.
  CertSpec spec = Compliant();
  spec.not_after = absl::Hours(24 * 500);
  std::vector<Check> checks = RunRules(spec);
  EXPECT_THAT(checks, HasCheck("tls.validity", kWarn));
  EXPECT_THAT(MessageOf(checks, "tls.validity"), HasSubstr("398"));
  // "825 days or fewer": just under passes the 825-day rule, just over not.
  spec.not_before = -absl::Minutes(1);
  spec.not_after = absl::Hours(24 * 825) - absl::Minutes(2);
  EXPECT_THAT(RunRules(spec), HasCheck("tls.validity", kWarn));
  spec.not_after = absl::Hours(24 * 825);
  EXPECT_THAT(RunRules(spec), HasCheck("tls.validity", kFail));
}

TEST_F(DoctorTlsRulesTest, FailsAnExpiredCertificate) {
  CertSpec spec = Compliant();
  spec.not_before = -absl::Hours(48);
  spec.not_after = -absl::Hours(24);
  std::vector<Check> checks = RunRules(spec);
  EXPECT_THAT(checks, HasCheck("tls.validity", kFail));
  EXPECT_THAT(MessageOf(checks, "tls.validity"), HasSubstr("expired on"));
}

TEST_F(DoctorTlsRulesTest, FailsASmallRsaKey) {
  CertSpec spec = Compliant();
  spec.rsa_bits = 1024;
  std::vector<Check> checks = RunRules(spec);
  EXPECT_THAT(checks, HasCheck("tls.key-size", kFail));
  EXPECT_THAT(MessageOf(checks, "tls.key-size"), HasSubstr("RSA 1024"));
  spec.rsa_bits = 0;  // EC P-256: no RSA rule.
  EXPECT_THAT(RunRules(spec), HasCheck("tls.key-size", kPass));
}

TEST_F(DoctorTlsRulesTest, FailsASha1Signature) {
  absl::StatusOr<CertAndKey> leaf = testing::MakeSigned(Compliant(), *ca_);
  ASSERT_THAT(leaf, IsOk());
  std::vector<Check> checks = di::CheckTlsChain(
      {ResignSha1(leaf->cert_pem, *ca_)}, "scep.test", *ca_file_, absl::Now());
  EXPECT_THAT(checks, HasCheck("tls.signature", kFail));
  EXPECT_THAT(MessageOf(checks, "tls.signature"),
              HasSubstr("leaf (ecdsa-with-SHA1)"));
}

TEST_F(DoctorTlsRulesTest, FailsWithoutServerAuth) {
  CertSpec spec = Compliant();
  spec.server_auth = false;
  spec.client_auth = true;
  std::vector<Check> checks = RunRules(spec);
  EXPECT_THAT(checks, HasCheck("tls.eku-server-auth", kFail));
  EXPECT_THAT(MessageOf(checks, "tls.eku-server-auth"),
              HasSubstr("does not include serverAuth"));
  spec.client_auth = false;  // No EKU extension at all.
  checks = RunRules(spec);
  EXPECT_THAT(checks, HasCheck("tls.eku-server-auth", kFail));
  EXPECT_THAT(MessageOf(checks, "tls.eku-server-auth"),
              HasSubstr("no extendedKeyUsage"));
}

TEST_F(DoctorTlsRulesTest, ChecksTheRulesOfAnUntrustedChain) {
  std::vector<Check> checks = RunRules(Compliant(), "scep.test",
                                       /*with_ca_file=*/false);
  EXPECT_THAT(checks, HasCheck("tls.trust", kFail));
  EXPECT_THAT(MessageOf(checks, "tls.trust"),
              HasSubstr("the system trust store"));
  EXPECT_THAT(Find(checks, "tls.trust")->advice, HasSubstr("--scep-ca"));
  for (const char* id : {"tls.san-dns-name", "tls.validity", "tls.key-size",
                         "tls.signature", "tls.eku-server-auth"}) {
    EXPECT_THAT(checks, HasCheck(id, kPass));
  }
}

TEST_F(DoctorTlsRulesTest, FailsWhenNoCertificateIsReadable) {
  std::vector<Check> checks =
      di::CheckTlsChain({"not DER"}, "scep.test", "", absl::Now());
  EXPECT_THAT(checks, HasCheck("tls.trust", kFail));
}

// micromdm/scep's answer (Debian scepserver 2.1.0).
constexpr char kMicromdmCaps[] =
    "Renewal\nSHA-1\nSHA-256\nAES\nDES3\nSCEPStandard\nPOSTPKIOperation";

TEST(DoctorCapsTest, PassesMicromdmCapabilities) {
  std::vector<Check> checks = di::CheckCaCaps(200, kMicromdmCaps);
  for (const char* id : {"caps.list", "caps.post-pki-operation", "caps.sha-256",
                         "caps.aes", "caps.renewal", "caps.get-next-ca-cert"}) {
    EXPECT_THAT(checks, HasCheck(id, kPass));
  }
  EXPECT_THAT(MessageOf(checks, "caps.list"),
              HasSubstr("7 capabilities: Renewal, SHA-1, SHA-256"));
  EXPECT_THAT(MessageOf(checks, "caps.get-next-ca-cert"),
              HasSubstr("not advertised"));
}

TEST(DoctorCapsTest, FailsWhatAppleAndWindowsClientsNeed) {
  std::vector<Check> checks =
      di::CheckCaCaps(200, "SHA-1\r\nDES3\r\nSCEPStandard\r\n");
  EXPECT_THAT(checks, HasCheck("caps.post-pki-operation", kFail));
  EXPECT_THAT(checks, HasCheck("caps.sha-256", kFail));
  EXPECT_THAT(MessageOf(checks, "caps.sha-256"),
              HasSubstr("fall back to SHA-1"));
  EXPECT_THAT(checks, HasCheck("caps.aes", kFail));
  EXPECT_THAT(MessageOf(checks, "caps.aes"), HasSubstr("SCEPStandard"));
  EXPECT_THAT(checks, HasCheck("caps.renewal", kWarn));
}

TEST(DoctorCapsTest, NamesError22006WhenNoHashIsLeft) {
  std::vector<Check> checks = di::CheckCaCaps(200, "AES\nPOSTPKIOperation\n");
  EXPECT_THAT(checks, HasCheck("caps.sha-256", kFail));
  EXPECT_THAT(MessageOf(checks, "caps.sha-256"), HasSubstr("22006"));
}

TEST(DoctorCapsTest, AcceptsSha512AndNotesCaseDifferences) {
  std::vector<Check> checks =
      di::CheckCaCaps(200, "SHA-512\naes\nPOSTPKIOperation\nGetNextCACert");
  EXPECT_THAT(checks, HasCheck("caps.sha-256", kPass));
  EXPECT_THAT(checks, HasCheck("caps.aes", kFail));
  EXPECT_THAT(MessageOf(checks, "caps.aes"), HasSubstr("advertised as 'aes'"));
  EXPECT_THAT(MessageOf(checks, "caps.get-next-ca-cert"),
              Not(HasSubstr("not advertised")));
}

TEST(DoctorCapsTest, ReportsEmptyErrorAndHtmlAnswers) {
  std::vector<Check> empty = di::CheckCaCaps(200, "");
  EXPECT_THAT(empty, HasCheck("caps.list", kWarn));
  EXPECT_THAT(empty, HasCheck("caps.sha-256", kFail));
  EXPECT_THAT(di::CheckCaCaps(404, "not found"), HasCheck("caps.list", kFail));
  EXPECT_THAT(MessageOf(di::CheckCaCaps(404, ""), "caps.list"),
              HasSubstr("HTTP 404"));
  EXPECT_THAT(MessageOf(empty, "caps.sha-256"), HasSubstr("SHA-1"));
  std::vector<Check> html =
      di::CheckCaCaps(200, "<html><body>login</body></html>");
  EXPECT_THAT(html, HasCheck("caps.list", kFail));
  // Nothing else to say without a capability list.
  EXPECT_THAT(html, ::testing::SizeIs(1));
}

class DoctorCaCertTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    CertSpec ca_spec;
    ca_spec.common_name = "SCEP Test CA";
    ca_spec.is_ca = true;
    ca_spec.rsa_bits = 0;  // EC P-256: quicker to make than RSA.
    ca_spec.not_after = absl::Hours(24 * 3650);
    absl::StatusOr<CertAndKey> ca = testing::MakeSelfSigned(ca_spec);
    ASSERT_THAT(ca, IsOk());
    CertSpec ra_spec;
    ra_spec.common_name = "SCEP Test RA";
    ra_spec.server_auth = false;
    ra_spec.client_auth = false;
    absl::StatusOr<CertAndKey> ra = testing::MakeSigned(ra_spec, *ca);
    ASSERT_THAT(ra, IsOk());
    ra_spec.common_name = "SCEP Test EC RA";
    ra_spec.rsa_bits = 0;  // keyUsage digitalSignature only.
    absl::StatusOr<CertAndKey> ec_ra = testing::MakeSigned(ra_spec, *ca);
    ASSERT_THAT(ec_ra, IsOk());
    ca_ = new CertAndKey(*ca);
    ra_ = new CertAndKey(*ra);
    ec_ra_ = new CertAndKey(*ec_ra);
  }

  static std::vector<Check> RunRules(absl::string_view type,
                                     const std::string& body,
                                     const std::string& fingerprint = "") {
    return di::CheckGetCaCert(200, type, body, fingerprint, absl::Now());
  }

  static std::string Sha256(const std::string& pem) {
    Ptr<X509> cert = ReadCert(pem);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    X509_digest(cert.get(), EVP_sha256(), md, &n);
    return std::string(reinterpret_cast<char*>(md), n);
  }

  static CertAndKey* ca_;
  static CertAndKey* ra_;
  static CertAndKey* ec_ra_;
};

CertAndKey* DoctorCaCertTest::ca_ = nullptr;
CertAndKey* DoctorCaCertTest::ra_ = nullptr;
CertAndKey* DoctorCaCertTest::ec_ra_ = nullptr;

TEST_F(DoctorCaCertTest, PassesOneDerCaCertificate) {
  std::vector<Check> checks =
      RunRules("application/x-x509-ca-cert", Der(ca_->cert_pem));
  for (const char* id : {"ca.get-ca-cert", "ca.key-usage", "ca.validity",
                         "ca.fingerprint", "ca.ra-cert"}) {
    EXPECT_THAT(checks, HasCheck(id, kPass));
  }
  EXPECT_THAT(MessageOf(checks, "ca.key-usage"),
              AllOf(HasSubstr("CN=SCEP Test CA"), HasSubstr("keyCertSign")));
  EXPECT_THAT(MessageOf(checks, "ca.fingerprint"), HasSubstr("not compared"));
}

TEST_F(DoctorCaCertTest, PassesACaAndRaBundle) {
  std::vector<Check> checks =
      RunRules("application/x-x509-ca-ra-cert; charset=x",
               CertsOnly({ra_->cert_pem, ca_->cert_pem}));
  EXPECT_THAT(checks, HasCheck("ca.get-ca-cert", kPass));
  EXPECT_THAT(checks, HasCheck("ca.key-usage", kPass));
  EXPECT_THAT(MessageOf(checks, "ca.key-usage"), HasSubstr("SCEP Test CA"));
  EXPECT_THAT(checks, HasCheck("ca.ra-cert", kPass));
  EXPECT_THAT(MessageOf(checks, "ca.ra-cert"),
              AllOf(HasSubstr("CN=SCEP Test RA"),
                    HasSubstr("issued under CN=SCEP Test CA")));
  EXPECT_THAT(MessageOf(checks, "ca.validity"),
              HasSubstr("RA CN=SCEP Test RA"));
}

TEST_F(DoctorCaCertTest, FailsABundleWithoutAUsableRaCertificate) {
  std::vector<Check> only_ca =
      RunRules("application/x-x509-ca-ra-cert", CertsOnly({ca_->cert_pem}));
  EXPECT_THAT(only_ca, HasCheck("ca.ra-cert", kFail));
  EXPECT_THAT(MessageOf(only_ca, "ca.ra-cert"), HasSubstr("22003"));
  // An RA that may sign but not encrypt, alone, is not enough.
  EXPECT_THAT(RunRules("application/x-x509-ca-ra-cert",
                       CertsOnly({ec_ra_->cert_pem, ca_->cert_pem})),
              HasCheck("ca.ra-cert", kFail));
}

TEST_F(DoctorCaCertTest, ComparesTheFingerprint) {
  const std::string right = Sha256(ca_->cert_pem);
  EXPECT_THAT(RunRules("application/x-x509-ca-cert", Der(ca_->cert_pem), right),
              HasCheck("ca.fingerprint", kPass));
  std::vector<Check> wrong = RunRules("application/x-x509-ca-ra-cert",
                                      CertsOnly({ra_->cert_pem, ca_->cert_pem}),
                                      Sha256(ra_->cert_pem));
  EXPECT_THAT(wrong, HasCheck("ca.fingerprint", kFail));
  EXPECT_THAT(MessageOf(wrong, "ca.fingerprint"),
              HasSubstr("fingerprint of CN=SCEP Test RA, not of the CA"));
}

TEST_F(DoctorCaCertTest, FailsBodiesDevicesCannotRead) {
  std::vector<Check> pem =
      RunRules("application/x-x509-ca-cert", ca_->cert_pem);
  EXPECT_THAT(pem, HasCheck("ca.get-ca-cert", kFail));
  EXPECT_THAT(MessageOf(pem, "ca.get-ca-cert"),
              AllOf(HasSubstr("PEM"), HasSubstr("22002")));
  EXPECT_THAT(Find(pem, "ca.key-usage"), nullptr);

  std::vector<Check> html = RunRules("text/html", Der(ca_->cert_pem));
  EXPECT_THAT(html, HasCheck("ca.get-ca-cert", kFail));
  EXPECT_THAT(MessageOf(html, "ca.get-ca-cert"), HasSubstr("22004"));
  EXPECT_THAT(html, HasCheck("ca.key-usage", kPass));  // Still checked.

  EXPECT_THAT(di::CheckGetCaCert(500, "text/plain", "", "", absl::Now()),
              HasCheck("ca.get-ca-cert", kFail));
}

TEST_F(DoctorCaCertTest, FailsANonCaAndAnExpiredCa) {
  std::vector<Check> leaf =
      RunRules("application/x-x509-ca-cert", Der(ra_->cert_pem));
  EXPECT_THAT(leaf, HasCheck("ca.key-usage", kFail));
  EXPECT_THAT(MessageOf(leaf, "ca.key-usage"), HasSubstr("is not a CA"));

  CertSpec old;
  old.common_name = "Old CA";
  old.is_ca = true;
  old.rsa_bits = 0;  // EC P-256: quicker to make than RSA.
  old.not_before = -absl::Hours(48);
  old.not_after = -absl::Hours(1);
  absl::StatusOr<CertAndKey> expired = testing::MakeSelfSigned(old);
  ASSERT_THAT(expired, IsOk());
  std::vector<Check> checks =
      RunRules("application/x-x509-ca-cert", Der(expired->cert_pem));
  EXPECT_THAT(checks, HasCheck("ca.validity", kFail));
  EXPECT_THAT(MessageOf(checks, "ca.validity"), HasSubstr("CA: expired on"));
}

TEST(DoctorUrlTest, ParsesScepUrls) {
  absl::StatusOr<di::ScepUrl> u =
      di::ParseScepUrl("https://scep.example.com/scep/pkiclient.exe");
  ASSERT_THAT(u, IsOk());
  EXPECT_EQ(u->scheme, "https");
  EXPECT_EQ(u->host, "scep.example.com");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->path, "/scep/pkiclient.exe");

  u = di::ParseScepUrl("http://[::1]:8080?x=1#frag");
  ASSERT_THAT(u, IsOk());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 8080);
  EXPECT_EQ(u->path, "/?x=1");

  u = di::ParseScepUrl("http://127.0.0.1");
  ASSERT_THAT(u, IsOk());
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->path, "/");

  for (const char* bad :
       {"ftp://x/", "scep.example.com/scep", "http://user:pw@x/", "http://x:0/",
        "http://x:99999/", "http:///scep", "http://[::1/"}) {
    EXPECT_THAT(di::ParseScepUrl(bad),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << bad;
  }
}

TEST(DoctorUrlTest, ParsesFingerprints) {
  absl::StatusOr<std::string> fp = di::ParseFingerprint(
      "4B:C3:B3:62:50:D6:3F:63:7A:CB:D9:95:2A:38:BB:62:9D:11:64:70:49:46:91:"
      "5E:96:9B:C8:05:CB:6E:AA:2c");
  ASSERT_THAT(fp, IsOk());
  ASSERT_EQ(fp->size(), 32u);
  EXPECT_EQ(static_cast<unsigned char>((*fp)[0]), 0x4b);
  EXPECT_EQ(static_cast<unsigned char>((*fp)[31]), 0x2c);
  EXPECT_THAT(di::ParseFingerprint(std::string(40, 'a')), IsOk());
  EXPECT_THAT(di::ParseFingerprint(std::string(32, '0')), IsOk());
  EXPECT_THAT(di::ParseFingerprint("abc"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(di::ParseFingerprint(std::string(63, 'a') + "g"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(DoctorRunTest, RefusesBadOptionsBeforeProbing) {
  DoctorOptions options;
  options.scep_url = "gopher://x";
  EXPECT_THAT(RunDoctor(options), StatusIs(absl::StatusCode::kInvalidArgument));
  options.scep_url = "http://127.0.0.1:1/scep";
  options.ca_fingerprint = "12";
  EXPECT_THAT(RunDoctor(options), StatusIs(absl::StatusCode::kInvalidArgument));
  options.ca_fingerprint = "";
  options.scep_ca_file = "/nonexistent/ca.pem";
  EXPECT_THAT(RunDoctor(options), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(DoctorRunTest, ReportsAnUnreachableEndpoint) {
  DoctorOptions options;
  options.scep_url =
      absl::StrCat("http://127.0.0.1:", testing::PickFreePort(), "/scep");
  options.timeout = absl::Seconds(2);
  absl::StatusOr<DoctorReport> report = RunDoctor(options);
  ASSERT_THAT(report, IsOk());
  EXPECT_TRUE(report->unreachable);
  EXPECT_THAT(report->checks, HasCheck("endpoint.reachable", kFail));
  EXPECT_EQ(DoctorExitCode(*report), 3);
  EXPECT_EQ(DoctorVerdict(*report), "UNREACHABLE");
}

TEST(DoctorChallengeTest, MapsTheAuthoritysVerdicts) {
  v1::ValidateResponse valid;
  valid.set_valid(true);
  valid.set_reason(v1::REASON_VALID);
  valid.set_device_id("dev-1");
  Check c = ChallengeCheckFromValidate(valid);
  EXPECT_EQ(c.id, "authority.challenge");
  EXPECT_EQ(c.status, kPass);
  EXPECT_THAT(c.message, AllOf(HasSubstr("valid"), HasSubstr("dev-1")));

  v1::ValidateResponse unknown;
  unknown.set_reason(v1::REASON_NOT_FOUND);
  unknown.set_message("challenge is not known");
  c = ChallengeCheckFromValidate(unknown);
  EXPECT_EQ(c.status, kFail);
  EXPECT_THAT(c.message, HasSubstr("not_found: challenge is not known"));
  EXPECT_THAT(c.advice, HasSubstr("issue a new challenge"));

  v1::ValidateResponse bound;
  bound.set_reason(v1::REASON_CSR_REQUIRED);
  EXPECT_EQ(ChallengeCheckFromValidate(bound).status, kPass);

  c = ChallengeCheckFromValidate(absl::UnavailableError("connect failed"));
  EXPECT_EQ(c.status, kFail);
  EXPECT_THAT(c.message, HasSubstr("UNAVAILABLE: connect failed"));
}

TEST(DoctorOutputTest, FormatsTextJsonAndExitCodes) {
  DoctorReport report;
  report.checks.push_back({"caps.list", kPass, "3 capabilities", ""});
  EXPECT_EQ(DoctorExitCode(report), 0);
  EXPECT_EQ(FormatDoctorText(report),
            "PASS caps.list 3 capabilities\n"
            "verdict: PASS (0 failed, 0 warnings, 1 passed)\n");
  report.checks.push_back({"caps.renewal", kWarn, "no \"Renewal\"", "add it"});
  EXPECT_EQ(DoctorExitCode(report), 0);
  EXPECT_EQ(DoctorVerdict(report), "WARN");
  report.checks.push_back({"caps.aes", kFail, "no AES\n", "enable\\AES"});
  EXPECT_EQ(DoctorExitCode(report), 1);
  EXPECT_THAT(
      FormatDoctorText(report),
      AllOf(HasSubstr("WARN caps.renewal no \"Renewal\" \u2014 add it\n"),
            HasSubstr("verdict: FAIL (1 failed, 1 warning, 1 passed)")));
  EXPECT_EQ(FormatDoctorJson(report),
            "{\"checks\":[{\"id\":\"caps.list\",\"status\":\"PASS\","
            "\"message\":\"3 capabilities\",\"advice\":\"\"},"
            "{\"id\":\"caps.renewal\",\"status\":\"WARN\",\"message\":"
            "\"no \\\"Renewal\\\"\",\"advice\":\"add it\"},"
            "{\"id\":\"caps.aes\",\"status\":\"FAIL\",\"message\":"
            "\"no AES\\n\",\"advice\":\"enable\\\\AES\"}],"
            "\"verdict\":\"FAIL\"}\n");
  EXPECT_EQ(di::JsonQuote(std::string("\x01\x7f", 2)), "\"\\u0001\\u007f\"");
  EXPECT_THAT(FormatDoctorText(DoctorReport{}), Not(IsEmpty()));
}

}  // namespace
}  // namespace scepca
