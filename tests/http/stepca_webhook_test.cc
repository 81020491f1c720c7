#include "service/http/stepca_webhook.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/base64.h"
#include "service/core/hashing.h"
#include "service/core/one_time_challenge.h"
#include "service/redis/redis_challenge_store.h"
#include "tests/http/http_test_util.h"
#include "tests/testing/csr_builder.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"

namespace scepca::testing {
namespace {

using ::testing::HasSubstr;

// The doc's test vector: 123 bytes, no newline.
constexpr char kDocBody[] =
    "{\"timestamp\":\"2025-01-02T03:04:05.123456789Z\",\"provisionerName\":"
    "\"scep\",\"scepChallenge\":\"s3cr3t\",\"scepTransactionID\":\"4b1e\"}";
constexpr char kDocSignature[] =
    "fbd771b1f43dd00ee8629d13be90867a0f6f59b9600b4766b803cb4cecc941c6";

TEST(StepCaSignatureTest, MatchesTheDocTestVector) {
  ASSERT_EQ(std::string(kDocBody).size(), 123u);
  absl::StatusOr<std::string> key = Base64Decode(kDocSecretBase64);
  ASSERT_THAT(key, IsOk());
  EXPECT_EQ(*key, kDocSecret);
  EXPECT_EQ(StepCaSignature(*key, kDocBody), kDocSignature);
  EXPECT_TRUE(VerifyStepCaSignature(*key, kDocBody, kDocSignature));
}

TEST(StepCaSignatureTest, RefusesAnyOtherSignatureBodyOrKey) {
  const std::string sig = kDocSignature;
  EXPECT_FALSE(VerifyStepCaSignature(kDocSecret, kDocBody, ""));
  EXPECT_FALSE(VerifyStepCaSignature(kDocSecret, kDocBody, sig.substr(1)));
  EXPECT_FALSE(
      VerifyStepCaSignature(kDocSecret, kDocBody, absl::StrCat(sig, "00")));
  EXPECT_FALSE(
      VerifyStepCaSignature(kDocSecret, absl::StrCat(kDocBody, "\n"), sig));
  EXPECT_FALSE(VerifyStepCaSignature("secret-key-for-testz", kDocBody, sig));
  std::string flipped = sig;
  flipped[10] = flipped[10] == '0' ? '1' : '0';
  EXPECT_FALSE(VerifyStepCaSignature(kDocSecret, kDocBody, flipped));
}

TEST(StepCaSignatureTest, AcceptsUpperCaseHex) {
  EXPECT_TRUE(VerifyStepCaSignature(
      kDocSecret, kDocBody,
      "FBD771B1F43DD00EE8629D13BE90867A0F6F59B9600B4766B803CB4CECC941C6"));
}

TEST(StepCaTimestampTest, AcceptsFreshTimestampsInAnyForm) {
  const absl::Time now = absl::FromUnixSeconds(1'735'787'045);  // 2025-01-02
  for (const char* ts : {
           "2025-01-02T03:04:05Z", "2025-01-02T03:04:05.123456789Z",
           "2025-01-02T03:04:05.1Z", "2025-01-02T04:04:05.123456789+01:00",
           "2025-01-01T22:04:05.5-05:00",
           "2025-01-02T03:08:59Z",  // 4m54s ahead.
           "2025-01-02T02:59:05Z",  // Exactly 5m old.
       }) {
    EXPECT_THAT(CheckStepCaTimestamp(ts, now, absl::Minutes(5)), IsOk()) << ts;
  }
}

TEST(StepCaTimestampTest, RefusesStaleAndFutureTimestamps) {
  const absl::Time now = absl::FromUnixSeconds(1'735'787'045);
  EXPECT_THAT(
      CheckStepCaTimestamp("2025-01-02T02:59:04Z", now, absl::Minutes(5)),
      StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("old")));
  EXPECT_THAT(CheckStepCaTimestamp("2025-01-02T03:10:06.000000001Z", now,
                                   absl::Minutes(5)),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("future")));
  EXPECT_THAT(
      CheckStepCaTimestamp("2025-01-02T05:10:05+01:00", now, absl::Minutes(5)),
      StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(
      CheckStepCaTimestamp("2024-01-02T03:04:05Z", now, absl::Minutes(5)),
      StatusIs(absl::StatusCode::kOutOfRange));
}

TEST(StepCaTimestampTest, RefusesMalformedTimestamps) {
  const absl::Time now = absl::FromUnixSeconds(1'735'787'045);
  for (const char* ts :
       {"", "2025-01-02 03:04:05Z", "2025-01-02T03:04:05", "1735787045",
        "yesterday", "2025-13-02T03:04:05Z", "2025-01-02T03:04:05+0100",
        "2025-01-02T03:04:05ZZ", "2025-01-02T03:04:05+01"}) {
    EXPECT_THAT(CheckStepCaTimestamp(ts, now, absl::Minutes(5)),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << ts;
  }
}

TEST(StepCaSecretFileTest, LoadsOneSecretALineAndRefusesBadFiles) {
  const std::string dir = MakeTempDir();
  absl::StatusOr<std::vector<SecretBytes>> keys = LoadStepCaSecretFile(
      WriteTestFile(dir, "ok", absl::StrCat(" ", kDocSecretBase64, "\n")));
  ASSERT_THAT(keys, IsOk());
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ((*keys)[0].view(), kDocSecret);
  keys = LoadStepCaSecretFile(WriteTestFile(
      dir, "two",
      absl::StrCat("# SCEPCHALLENGE hook\n", kDocSecretBase64,
                   "\n\n# NOTIFYING hook\n",
                   Base64Encode("another-secret-of-the-notify-hook"), "\n")));
  ASSERT_THAT(keys, IsOk());
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[1].view(), "another-secret-of-the-notify-hook");
  EXPECT_THAT(
      LoadStepCaSecretFile(WriteTestFile(dir, "open", kDocSecretBase64, 0644)),
      StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(
      LoadStepCaSecretFile(WriteTestFile(
          dir, "notb64", absl::StrCat(kDocSecretBase64, "\nnot base64!\n"))),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 2")));
  EXPECT_THAT(LoadStepCaSecretFile(
                  WriteTestFile(dir, "short", Base64Encode("too short"))),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(LoadStepCaSecretFile(WriteTestFile(dir, "empty", "# none\n")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("no step-ca webhook secret")));
  EXPECT_THAT(LoadStepCaSecretFile(absl::StrCat(dir, "/missing")),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(CertificateFactsTest, ReadsSerialAndFingerprint) {
  const TestCertificate cert =
      MakeSelfSignedCertificate("device-1", 0x0123ABCDEF);
  absl::StatusOr<CertificateFacts> facts = ReadCertificateFacts(cert.der);
  ASSERT_THAT(facts, IsOk());
  EXPECT_EQ(facts->serial_hex, "0123abcdef");
  EXPECT_EQ(facts->sha256_hex, HexEncode(Sha256(cert.der)));
  EXPECT_THAT(ReadCertificateFacts("not DER"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ReadCertificateFacts(cert.der + "x"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// Builds the bodies exactly as step-ca's json.Marshal does.
std::string V025Body(const std::string& timestamp, const std::string& challenge,
                     const std::string& transaction_id,
                     const std::string& csr_der, const std::string& spki_der) {
  return absl::StrCat(
      "{\"timestamp\":\"", timestamp,
      "\",\"provisionerName\":\"scep-prov\",\"x509CertificateRequest\":{"
      "\"version\":0,\"subject\":{\"country\":[\"US\"],\"organization\":["
      "\"scep-client\"],\"organizationalUnit\":[\"MDM\"],\"commonName\":"
      "\"device-1\"},\"rawSubject\":\"MEYx\",\"dnsNames\":null,"
      "\"emailAddresses\":null,\"ipAddresses\":null,\"uris\":null,\"sans\":"
      "null,\"extensions\":null,\"keyUsage\":null,\"extKeyUsage\":[],"
      "\"unknownExtKeyUsage\":null,\"basicConstraints\":null,"
      "\"signatureAlgorithm\":\"\",\"publicKey\":\"",
      Base64Encode(spki_der), "\",\"publicKeyAlgorithm\":\"ECDSA\",\"raw\":\"",
      Base64Encode(csr_der), "\"},\"scepChallenge\":\"", challenge,
      "\",\"scepTransactionID\":\"", transaction_id, "\"}");
}

std::string V024Body(const std::string& timestamp, const std::string& challenge,
                     const std::string& transaction_id) {
  return absl::StrCat("{\"timestamp\":\"", timestamp, "\",\"scepChallenge\":\"",
                      challenge, "\",\"scepTransactionID\":\"", transaction_id,
                      "\"}");
}

class StepCaEndpointTest : public HttpServerTest {
 protected:
  void SetUp() override {
    HttpServerTest::SetUp();
    ASSERT_NO_FATAL_FAILURE(StartServer());
  }

  // A request byte for byte as Go's net/http sends step-ca's webhook call:
  // no Content-Type, canonical header names, gzip accepted.
  static std::string GoRequest(int port, const std::string& path,
                               const std::string& body,
                               const std::string& signature,
                               const std::string& extra_headers = "") {
    return absl::StrCat(
        "POST ", path, " HTTP/1.1\r\nHost: 127.0.0.1:", port,
        "\r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: ", body.size(),
        "\r\n", extra_headers,
        signature.empty()
            ? ""
            : absl::StrCat("X-Smallstep-Signature: ", signature, "\r\n"),
        "X-Smallstep-Webhook-Id: 0f4e6c1a-8d3b-4b7e-9a51-7c2d9e3f1a20\r\n"
        "Accept-Encoding: gzip\r\n\r\n",
        body);
  }

  RawResponse Call(const std::string& path, const std::string& body,
                   const std::string& extra_headers = "") {
    absl::StatusOr<RawResponse> r = RawHttpExchange(
        server_->port(),
        GoRequest(server_->port(), path, body,
                  StepCaSignature(kDocSecret, body), extra_headers));
    EXPECT_THAT(r, IsOk());
    return r.ok() ? *r : RawResponse();
  }

  std::string Now(absl::Duration offset = absl::ZeroDuration()) {
    return GoTimestamp(clock_.Now() + absl::Nanoseconds(123456789), offset);
  }

  // Returns the state of the challenge without consuming it.
  Verdict DryRun(const std::string& challenge) {
    ValidateRequest request;
    request.challenge = challenge;
    request.dry_run = true;
    absl::StatusOr<Verdict> verdict = authority_->Validate(request);
    EXPECT_THAT(verdict, IsOk());
    return verdict.ok() ? *verdict : Verdict();
  }
};

TEST_F(StepCaEndpointTest, V025BodyWithCsrIsAllowedWithIdentityData) {
  const std::string challenge = IssueDirect("device-1");
  CsrSpec spec;
  spec.challenge_shape = ChallengeShape::kSingle;
  spec.challenge = challenge;
  absl::StatusOr<std::string> csr = BuildCsrDer(spec);
  ASSERT_THAT(csr, IsOk());
  const std::string body = V025Body(Now(absl::Hours(1)), challenge, "TX-1",
                                    *csr, SubjectPublicKeyInfoDer(spec.key));
  const RawResponse r = Call("/step-ca/scepchallenge", body);
  EXPECT_EQ(r.status, 200);
  const std::string id = ChallengeIdOf(challenge);
  EXPECT_EQ(r.body, absl::StrCat("{\"allow\":true,\"data\":{\"device_id\":"
                                 "\"device-1\",\"user_id\":\"\","
                                 "\"challenge_id\":\"",
                                 id, "\",\"labels\":{\"profile\":\"wifi\"}}}"));
  // step-ca retrying the same enrollment is allowed again; another
  // enrollment with the same challenge is not.
  EXPECT_THAT(Call("/step-ca/scepchallenge", body).body,
              HasSubstr("\"allow\":true"));
  const std::string other = V025Body(Now(), challenge, "TX-2", *csr,
                                     SubjectPublicKeyInfoDer(spec.key));
  const RawResponse again = Call("/step-ca/scepchallenge", other);
  EXPECT_EQ(again.status, 200);
  EXPECT_THAT(again.body,
              ::testing::StartsWith("{\"allow\":false,\"error\":{\"code\":"
                                    "\"already_used\""));
}

TEST_F(StepCaEndpointTest, V024BodyWithoutCsrIsAllowedOnce) {
  const std::string challenge = IssueDirect("device-2");
  const std::string body = V024Body(Now(), challenge, "8F3A");
  const RawResponse r = Call("/step-ca/scepchallenge", body);
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr("{\"allow\":true,\"data\":{\"device_id\":"
                                "\"device-2\""));
  EXPECT_FALSE(DryRun(challenge).valid);
}

TEST_F(StepCaEndpointTest, CsrWhoseChallengeDiffersIsDenied) {
  const std::string challenge = IssueDirect("device-3");
  CsrSpec spec;
  spec.challenge_shape = ChallengeShape::kSingle;
  spec.challenge = "AAAAAAAAAAAAAAAAAAAAAAAAAA";
  absl::StatusOr<std::string> csr = BuildCsrDer(spec);
  ASSERT_THAT(csr, IsOk());
  const RawResponse r = Call("/step-ca/scepchallenge",
                             V025Body(Now(), challenge, "TX", *csr,
                                      SubjectPublicKeyInfoDer(spec.key)));
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.body,
              ::testing::StartsWith("{\"allow\":false,\"error\":{\"code\":"
                                    "\"challenge_mismatch\""));
  EXPECT_TRUE(DryRun(challenge).valid);
}

TEST_F(StepCaEndpointTest, UnknownOrMalformedChallengeIsDenied) {
  absl::StatusOr<std::string> unknown = GenerateOneTimeChallenge();
  ASSERT_THAT(unknown, IsOk());
  RawResponse r =
      Call("/step-ca/scepchallenge", V024Body(Now(), *unknown, "TX"));
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.body,
              ::testing::StartsWith(
                  "{\"allow\":false,\"error\":{\"code\":\"not_found\""));
  r = Call("/step-ca/scepchallenge", V024Body(Now(), "s3cr3t", "TX"));
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr("\"allow\":false"));
  r = Call("/step-ca/scepchallenge",
           absl::StrCat("{\"timestamp\":\"", Now(), "\"}"));
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr("\"allow\":false"));
}

TEST_F(StepCaEndpointTest, MissingOrBadSignatureIs401AndConsumesNothing) {
  const std::string challenge = IssueDirect("device-4");
  const std::string body = V024Body(Now(), challenge, "TX");
  absl::StatusOr<RawResponse> r = RawHttpExchange(
      server_->port(),
      GoRequest(server_->port(), "/step-ca/scepchallenge", body, ""));
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->status, 401);
  EXPECT_THAT(r->body, HasSubstr("\"allow\":false"));
  r = RawHttpExchange(server_->port(),
                      GoRequest(server_->port(), "/step-ca/scepchallenge", body,
                                StepCaSignature("wrong-key-0123456", body)));
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->status, 401);
  // Signed over other bytes (e.g. re-serialized JSON).
  const std::string spaced = absl::StrCat(body, " ");
  r = RawHttpExchange(server_->port(),
                      GoRequest(server_->port(), "/step-ca/scepchallenge",
                                spaced, StepCaSignature(kDocSecret, body)));
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->status, 401);
  EXPECT_TRUE(DryRun(challenge).valid);
}

TEST_F(StepCaEndpointTest, StaleOrFutureTimestampIsRefusedWithoutConsuming) {
  const std::string challenge = IssueDirect("device-5");
  const std::string stale =
      GoTimestamp(clock_.Now() - absl::Minutes(5) - absl::Seconds(1));
  RawResponse r =
      Call("/step-ca/scepchallenge", V024Body(stale, challenge, "TX"));
  EXPECT_EQ(r.status, 401);
  EXPECT_THAT(r.body, HasSubstr("stale_request"));
  const std::string future =
      GoTimestamp(clock_.Now() + absl::Minutes(6), absl::Hours(-7));
  r = Call("/step-ca/scepchallenge", V024Body(future, challenge, "TX"));
  EXPECT_EQ(r.status, 401);
  r = Call("/step-ca/scepchallenge", V024Body("not a time", challenge, "TX"));
  EXPECT_EQ(r.status, 400);
  EXPECT_TRUE(DryRun(challenge).valid);
}

TEST_F(StepCaEndpointTest, BodyThatIsNotStepCaJsonIs400) {
  for (const std::string& body :
       {std::string("not json"), std::string("[]"),
        std::string("{\"timestamp\":5}"),
        absl::StrCat("{\"timestamp\":\"", Now(),
                     "\",\"x509CertificateRequest\":{\"raw\":\"!!\"}}")}) {
    EXPECT_EQ(Call("/step-ca/scepchallenge", body).status, 400) << body;
  }
}

TEST_F(StepCaEndpointTest, AuthorizationIsCheckedWhenPresent) {
  const std::string basic_ok = absl::StrCat(
      "Authorization: Basic ",
      Base64Encode(absl::StrCat("fleet:", kFleetPassword)), "\r\n");
  const std::string basic_bad = absl::StrCat(
      "Authorization: Basic ", Base64Encode("fleet:wrong-password"), "\r\n");
  const std::string bearer_ok =
      absl::StrCat("Authorization: Bearer fleet:", kFleetPassword, "\r\n");
  std::string challenge = IssueDirect("device-6");
  EXPECT_EQ(
      Call("/step-ca/scepchallenge", V024Body(Now(), challenge, "T"), basic_bad)
          .status,
      401);
  EXPECT_EQ(Call("/step-ca/scepchallenge", V024Body(Now(), challenge, "T"),
                 "Authorization: Bearer opaque\r\n")
                .status,
            401);
  EXPECT_TRUE(DryRun(challenge).valid);
  EXPECT_THAT(
      Call("/step-ca/scepchallenge", V024Body(Now(), challenge, "T"), basic_ok)
          .body,
      HasSubstr("\"allow\":true"));
  challenge = IssueDirect("device-6");
  EXPECT_THAT(Call("/step-ca/scepchallenge", V024Body(Now(), challenge, "T2"),
                   bearer_ok)
                  .body,
              HasSubstr("\"allow\":true"));
}

TEST_F(StepCaEndpointTest, HttplibClientWithoutContentTypeWorksToo) {
  const std::string challenge = IssueDirect("device-7");
  const std::string body = V024Body(Now(), challenge, "TX");
  httplib::Client client = Client();
  httplib::Headers headers = {
      {"X-Smallstep-Signature", StepCaSignature(kDocSecret, body)}};
  httplib::Result r =
      client.Post("/step-ca/scepchallenge", headers, body, "text/plain");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  EXPECT_THAT(r->body, HasSubstr("\"allow\":true"));
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
}

TEST_F(StepCaEndpointTest, NotifySuccessRecordsSerialAndFingerprint) {
  const std::string challenge = IssueDirect("device-8");
  ASSERT_THAT(
      Call("/step-ca/scepchallenge", V024Body(Now(), challenge, "TX-8")).body,
      HasSubstr("\"allow\":true"));
  const TestCertificate cert = MakeSelfSignedCertificate("device-8", 0xBEEF01);
  const std::string body = absl::StrCat(
      "{\"timestamp\":\"", Now(),
      "\",\"x509CertificateRequest\":{\"version\":0,\"raw\":\"MIIB\"},"
      "\"x509Certificate\":{\"publicKey\":\"MFkw\",\"publicKeyAlgorithm\":"
      "\"ECDSA\",\"notBefore\":\"2027-01-15T08:00:00Z\",\"notAfter\":"
      "\"2028-01-15T08:00:00Z\",\"raw\":\"",
      Base64Encode(cert.der), "\"},\"scepTransactionID\":\"TX-8\"}");
  const RawResponse r = Call("/step-ca/notify", body);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"allow\":true}");
  absl::StatusOr<ChallengeRecord> record =
      authority_->Get(ChallengeIdOf(challenge));
  ASSERT_THAT(record, IsOk());
  ASSERT_EQ(record->outcomes.size(), 1u);
  EXPECT_TRUE(record->outcomes[0].issued);
  EXPECT_EQ(record->outcomes[0].transaction_id, "TX-8");
  EXPECT_EQ(record->outcomes[0].certificate_serial, "beef01");
  EXPECT_EQ(record->outcomes[0].certificate_sha256,
            HexEncode(Sha256(cert.der)));
}

TEST_F(StepCaEndpointTest, NotifyFailureRecordsTheError) {
  const std::string challenge = IssueDirect("device-9");
  ASSERT_THAT(
      Call("/step-ca/scepchallenge", V024Body(Now(), challenge, "TX-9")).body,
      HasSubstr("\"allow\":true"));
  const std::string body = absl::StrCat(
      "{\"timestamp\":\"", Now(),
      "\",\"x509CertificateRequest\":{\"version\":0,\"raw\":\"MIIB\"},"
      "\"scepTransactionID\":\"TX-9\",\"scepErrorDescription\":\"error "
      "signing certificate: template error\"}");
  const RawResponse r = Call("/step-ca/notify", body);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"allow\":true}");
  absl::StatusOr<ChallengeRecord> record =
      authority_->Get(ChallengeIdOf(challenge));
  ASSERT_THAT(record, IsOk());
  ASSERT_EQ(record->outcomes.size(), 1u);
  EXPECT_FALSE(record->outcomes[0].issued);
  EXPECT_EQ(record->outcomes[0].failure,
            "error signing certificate: template error");
}

TEST_F(StepCaEndpointTest, AcceptsTheSecretOfEachHookInTheFile) {
  const std::string notify_secret = "the-notify-hook-secret-0123456789";
  WriteTestFile(
      dir_, "stepca-secret",
      absl::StrCat(kDocSecretBase64, "\n", Base64Encode(notify_secret), "\n"));
  server_.reset();
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const std::string body = absl::StrCat("{\"timestamp\":\"", Now(),
                                        "\",\"scepTransactionID\":\"x\","
                                        "\"scepErrorDescription\":\"boom\"}");
  for (const std::string& key : {std::string(kDocSecret), notify_secret}) {
    absl::StatusOr<RawResponse> r = RawHttpExchange(
        server_->port(), GoRequest(server_->port(), "/step-ca/notify", body,
                                   StepCaSignature(key, body)));
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->status, 200);
  }
}

TEST_F(StepCaEndpointTest, NotifyAnswersAllowForUnknownTransactionsButNot401s) {
  const std::string body =
      absl::StrCat("{\"timestamp\":\"", Now(),
                   "\",\"scepTransactionID\":\"never-seen\","
                   "\"scepErrorDescription\":\"boom\"}");
  EXPECT_EQ(Call("/step-ca/notify", body).body, "{\"allow\":true}");
  absl::StatusOr<RawResponse> r = RawHttpExchange(
      server_->port(), GoRequest(server_->port(), "/step-ca/notify", body,
                                 StepCaSignature("another-key-123456", body)));
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->status, 401);
}

TEST_F(StepCaEndpointTest, UnavailableAuthorityIs503SoStepCaRetries) {
  RedisStoreOptions redis;
  redis.url = absl::StrCat("redis://127.0.0.1:", PickFreePort());
  redis.connect_timeout = absl::Milliseconds(100);
  absl::StatusOr<std::unique_ptr<ChallengeStore>> store =
      NewRedisChallengeStore(redis);
  ASSERT_THAT(store, IsOk());
  absl::StatusOr<std::unique_ptr<ChallengeAuthority>> down =
      ChallengeAuthority::Create(AuthorityOptions(), store->get(), &clock_);
  ASSERT_THAT(down, IsOk());
  absl::StatusOr<std::unique_ptr<HttpServer>> server =
      HttpServer::Start(options_, down->get());
  ASSERT_THAT(server, IsOk());
  absl::StatusOr<std::string> challenge = GenerateOneTimeChallenge();
  ASSERT_THAT(challenge, IsOk());
  const std::string body = V024Body(Now(), *challenge, "TX");
  absl::StatusOr<RawResponse> r = RawHttpExchange(
      (*server)->port(), GoRequest((*server)->port(), "/step-ca/scepchallenge",
                                   body, StepCaSignature(kDocSecret, body)));
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->status, 503);
  EXPECT_THAT(r->body, HasSubstr("\"allow\":false"));
}

}  // namespace
}  // namespace scepca::testing
