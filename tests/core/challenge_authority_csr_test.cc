// ChallengeAuthority::Validate with a CSR: parsing, the identity binding,
// and idempotent SCEP retries, for both kinds of challenge.
#include <memory>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/base64.h"
#include "service/core/challenge_authority.h"
#include "service/core/in_memory_challenge_store.h"
#include "tests/testing/csr_builder.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/status_matchers.h"

namespace scepca {
namespace {

using ::scepca::testing::BuildCsrDer;
using ::scepca::testing::ChallengeEncoding;
using ::scepca::testing::ChallengeShape;
using ::scepca::testing::CsrSpec;
using ::scepca::testing::DerToPem;
using ::scepca::testing::FakeClock;
using ::scepca::testing::IsOk;
using ::scepca::testing::KeyType;
using ::testing::HasSubstr;

class CsrAuthorityTest : public ::testing::TestWithParam<ChallengeKind> {
 protected:
  CsrAuthorityTest()
      : keys_(*KeyRing::Parse(absl::StrCat(
            "key 9 primary ", Base64Encode(std::string(32, 'q'))))) {}
  void SetUp() override {
    authority_ = *ChallengeAuthority::Create(AuthorityOptions(), &store_,
                                             &clock_, &keys_);
  }

  // Issues a challenge of the test's kind bound to CN device-1 and the DNS
  // name device-1.example.org (or unbound).
  std::string Issue(bool bound = true) {
    IssueRequest request;
    request.device_id = "device-1";
    request.kind = GetParam();
    if (bound) {
      request.binding.common_name = "device-1";
      request.binding.dns_names = {"device-1.example.org"};
      request.binding.email_addresses = {"ops@Example.org"};
      request.binding.uris = {"urn:device:1"};
    }
    absl::StatusOr<IssueResult> r = authority_->Issue(request);
    EXPECT_THAT(r, IsOk());
    return r.ok() ? r->challenge : "";
  }

  static std::string Csr(const std::string& challenge, CsrSpec spec = {}) {
    if (!challenge.empty()) {
      spec.challenge_shape = ChallengeShape::kSingle;
      spec.challenge = challenge;
    }
    absl::StatusOr<std::string> der = BuildCsrDer(spec);
    EXPECT_THAT(der, IsOk());
    return der.ok() ? *der : "";
  }

  Verdict Check(const std::string& challenge, const std::string& csr,
                const std::string& tx = "tx-1", bool dry_run = false) {
    ValidateRequest request;
    request.challenge = challenge;
    request.csr = csr;
    request.transaction_id = tx;
    request.dry_run = dry_run;
    absl::StatusOr<Verdict> v = authority_->Validate(request);
    EXPECT_THAT(v, IsOk());
    return v.ok() ? *v : Verdict{};
  }

  FakeClock clock_;
  InMemoryChallengeStore store_;
  KeyRingHolder keys_;
  std::unique_ptr<ChallengeAuthority> authority_;
};

TEST_P(CsrAuthorityTest, MatchingCsrIsValidAndReportsWhatWasChecked) {
  const std::string c = Issue();
  CsrSpec spec;
  spec.dns_names = {"DEVICE-1.example.org"};
  spec.email_addresses = {"ops@example.ORG"};
  spec.uris = {"urn:device:1"};
  // The challenge comes from the CSR alone.
  Verdict v = Check("", DerToPem(Csr(c, spec)));
  EXPECT_TRUE(v.valid) << v.message;
  ASSERT_TRUE(v.csr.has_value());
  EXPECT_EQ(v.csr->common_name, "device-1");
  EXPECT_EQ(v.csr->dns_names, spec.dns_names);
  EXPECT_EQ(v.csr->public_key_sha256.size(), 32u);
  EXPECT_EQ(v.csr->challenge, "");  // Never handed back.
  EXPECT_FALSE(v.repeat);
}

TEST_P(CsrAuthorityTest, EveryChallengeStringTypeIsAccepted) {
  for (ChallengeEncoding e :
       {ChallengeEncoding::kPrintableString, ChallengeEncoding::kUtf8String,
        ChallengeEncoding::kBmpString}) {
    const std::string c = Issue(/*bound=*/false);
    CsrSpec spec;
    spec.challenge_encoding = e;
    Verdict v = Check("", Csr(c, spec));
    EXPECT_TRUE(v.valid) << static_cast<int>(e) << " " << v.message;
  }
}

TEST_P(CsrAuthorityTest, BindingMismatchOnEachFieldIsRefusedAndBurns) {
  struct Case {
    const char* field;
    CsrSpec spec;
  };
  std::vector<Case> cases(5);
  cases[0] = {"subject CN", {}};
  cases[0].spec.common_names = {"device-2"};
  cases[1] = {"DNS SAN", {}};
  cases[1].spec.dns_names = {"evil.example.org"};
  cases[2] = {"e-mail SAN", {}};
  cases[2].spec.email_addresses = {"OPS@example.org"};
  cases[3] = {"URI SAN", {}};
  cases[3].spec.uris = {"urn:device:2"};
  cases[4] = {"IP address SAN", {}};
  cases[4].spec.ip_addresses = {"192.0.2.7"};
  for (const Case& test : cases) {
    const std::string c = Issue();
    Verdict v = Check(c, Csr(c, test.spec));
    EXPECT_FALSE(v.valid) << test.field;
    EXPECT_EQ(v.reason, Reason::kIdentityMismatch) << test.field;
    EXPECT_THAT(v.message, HasSubstr(test.field));
    EXPECT_THAT(v.message, ::testing::Not(HasSubstr(c)));
    // Burned: the right CSR afterwards is refused.
    Verdict after = Check(c, Csr(c), "tx-other");
    EXPECT_FALSE(after.valid) << test.field;
  }
}

TEST_P(CsrAuthorityTest, BoundChallengeNeedsTheCsrAndIsNotUsedUpWithout) {
  const std::string c = Issue();
  Verdict without = Check(c, "");
  EXPECT_FALSE(without.valid);
  EXPECT_EQ(without.reason, Reason::kCsrRequired);
  EXPECT_TRUE(Check(c, Csr(c)).valid);
}

TEST_P(CsrAuthorityTest, CsrProblemsAreRefusedBeforeConsuming) {
  const std::string c = Issue();
  CsrSpec bad_signature;
  bad_signature.corrupt_signature = true;
  Verdict v = Check(c, Csr(c, bad_signature));
  EXPECT_EQ(v.reason, Reason::kCsrInvalid);
  EXPECT_THAT(v.message, HasSubstr("signature"));
  CsrSpec weak;
  weak.key.type = KeyType::kRsa;
  weak.key.rsa_bits = 1024;
  EXPECT_EQ(Check(c, Csr(c, weak)).reason, Reason::kCsrInvalid);
  std::string truncated = Csr(c);
  truncated.resize(truncated.size() - 3);
  EXPECT_EQ(Check(c, truncated).reason, Reason::kCsrInvalid);
  EXPECT_EQ(Check(c, Csr(c) + "junk").reason, Reason::kCsrInvalid);
  CsrSpec two;
  two.challenge_shape = ChallengeShape::kTwoAttributes;
  two.challenge = c;
  absl::StatusOr<std::string> two_der = BuildCsrDer(two);
  ASSERT_THAT(two_der, IsOk());
  EXPECT_EQ(Check("", *two_der).reason, Reason::kCsrInvalid);
  EXPECT_EQ(Check("", Csr("")).reason, Reason::kCsrInvalid);  // No password.
  // Still usable.
  EXPECT_TRUE(Check(c, Csr(c)).valid);
}

TEST_P(CsrAuthorityTest, ChallengeDifferentFromTheCsrsIsRefused) {
  const std::string c = Issue();
  const std::string other = Issue();
  Verdict v = Check(c, Csr(other));
  EXPECT_FALSE(v.valid);
  EXPECT_EQ(v.reason, Reason::kChallengeMismatch);
  EXPECT_TRUE(Check(c, Csr(c)).valid);
  EXPECT_TRUE(Check(other, Csr(other)).valid);
}

TEST_P(CsrAuthorityTest, RetryOfTheSameTransactionAndKeyIsValidAgain) {
  const std::string c = Issue();
  const std::string csr = Csr(c);
  ASSERT_TRUE(Check(c, csr, "tx-apple").valid);
  Verdict retry = Check(c, csr, "tx-apple");
  EXPECT_TRUE(retry.valid) << retry.message;
  EXPECT_TRUE(retry.repeat);
  Verdict dry = Check(c, csr, "tx-apple", /*dry_run=*/true);
  EXPECT_TRUE(dry.valid);
  EXPECT_TRUE(dry.repeat);

  Verdict other_tx = Check(c, csr, "tx-other");
  EXPECT_FALSE(other_tx.valid);
  EXPECT_EQ(other_tx.reason, Reason::kAlreadyUsed);
  CsrSpec other_key;
  other_key.key.type = KeyType::kEcP384;
  Verdict other_k = Check(c, Csr(c, other_key), "tx-apple");
  EXPECT_FALSE(other_k.valid);
  EXPECT_EQ(other_k.reason, Reason::kAlreadyUsed);
  // Without a CSR a repeat cannot be recognised.
  IssueRequest unbound;
  unbound.device_id = "d";
  unbound.kind = GetParam();
  const std::string u = authority_->Issue(unbound)->challenge;
  ASSERT_TRUE(Check(u, "", "tx-x").valid);
  EXPECT_EQ(Check(u, "", "tx-x").reason, Reason::kAlreadyUsed);
}

TEST_P(CsrAuthorityTest, RetryAfterExpiryIsNotARepeat) {
  IssueRequest request;
  request.device_id = "device-1";
  request.kind = GetParam();
  request.ttl = absl::Seconds(30);
  const std::string c = authority_->Issue(request)->challenge;
  const std::string csr = Csr(c);
  ASSERT_TRUE(Check(c, csr, "tx").valid);
  clock_.Advance(absl::Minutes(5));
  EXPECT_FALSE(Check(c, csr, "tx").valid);
}

INSTANTIATE_TEST_SUITE_P(Kinds, CsrAuthorityTest,
                         ::testing::Values(ChallengeKind::kOneTime,
                                           ChallengeKind::kSigned),
                         [](const auto& param_info) {
                           return param_info.param == ChallengeKind::kOneTime
                                      ? "OneTime"
                                      : "Signed";
                         });

}  // namespace
}  // namespace scepca
