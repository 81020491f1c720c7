// End-to-end: Validate with CSRs through challengectl, including the CSR that
// Debian's real scepclient makes.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/authority_process.h"
#include "tests/testing/csr_builder.h"
#include "tests/testing/status_matchers.h"

namespace scepca::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string WriteTemp(const std::string& dir, const std::string& name,
                      const std::string& data) {
  const std::string path = absl::StrCat(dir, "/", name);
  FILE* f = fopen(path.c_str(), "wb");
  fwrite(data.data(), 1, data.size(), f);
  fclose(f);
  return path;
}

class CsrE2eTest : public ::testing::Test {
 protected:
  // One server per suite, started by the first test so that a failure to
  // start fails that test (a failing SetUpTestSuite only skips).
  void StartServer() {
    if (server_ != nullptr) return;
    auto* server = new AuthorityProcess();
    absl::Status started = server->Start();
    ASSERT_THAT(started, IsOk());
    server_ = server;
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    dir_ = MakeTempDir();
    ASSERT_NO_FATAL_FAILURE(StartServer());
  }

  CommandResult Ctl(const std::vector<std::string>& args) {
    return RunChallengectl(server_->address(), args);
  }
  std::string Issue(const std::vector<std::string>& binding) {
    std::vector<std::string> args = {"issue", "--device", "dev-csr"};
    args.insert(args.end(), binding.begin(), binding.end());
    CommandResult r = Ctl(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return std::string(absl::StripSuffix(r.out, "\n"));
  }
  std::string CsrFile(const std::string& challenge, CsrSpec spec,
                      bool pem = false) {
    spec.challenge_shape = ChallengeShape::kSingle;
    spec.challenge = challenge;
    absl::StatusOr<std::string> der = BuildCsrDer(spec);
    EXPECT_THAT(der, IsOk());
    static int n = 0;
    return WriteTemp(dir_, absl::StrCat("csr", ++n, pem ? ".pem" : ".der"),
                     pem ? DerToPem(*der) : *der);
  }

  static AuthorityProcess* server_;
  std::string dir_;
};

AuthorityProcess* CsrE2eTest::server_ = nullptr;

TEST_F(CsrE2eTest, ValidateWithCsrThenRetryThenOtherTransaction) {
  const std::string c =
      Issue({"--cn", "device-7", "--dns", "device-7.example.org"});
  CsrSpec spec;
  spec.common_names = {"device-7"};
  spec.dns_names = {"device-7.example.org"};
  const std::string csr = CsrFile(c, spec, /*pem=*/true);

  CommandResult without = Ctl({"validate", "--challenge", c});
  EXPECT_EQ(without.exit_code, 1);
  EXPECT_THAT(without.out, HasSubstr("csr_required"));

  CommandResult first =
      Ctl({"validate", "--csr", csr, "--transaction-id", "txA"});
  EXPECT_EQ(first.exit_code, 0) << first.out << first.err;
  CommandResult retry =
      Ctl({"validate", "--csr", csr, "--transaction-id", "txA"});
  EXPECT_EQ(retry.exit_code, 0) << retry.out;
  EXPECT_THAT(retry.out, HasSubstr("repeat"));
  CommandResult other =
      Ctl({"validate", "--csr", csr, "--transaction-id", "txB"});
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_THAT(other.out, HasSubstr("already_used"));
  CommandResult json = Ctl({"--json", "validate", "--dry-run", "--csr", csr,
                            "--transaction-id", "txA"});
  EXPECT_THAT(json.out, HasSubstr("\"commonName\":\"device-7\""));
  EXPECT_THAT(json.out, HasSubstr("\"publicKeySha256\""));
  EXPECT_THAT(json.out, Not(HasSubstr(c)));
}

TEST_F(CsrE2eTest, IdentityMismatchNamesTheField) {
  const std::string c = Issue({"--cn", "device-8"});
  CsrSpec spec;
  spec.common_names = {"intruder"};
  CommandResult r = Ctl({"validate", "--csr", CsrFile(c, spec)});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("identity_mismatch"));
  EXPECT_THAT(r.out,
              HasSubstr("subject CN is 'intruder'; expected 'device-8'"));
}

TEST_F(CsrE2eTest, InvalidCsrIsRefusedAndTheChallengeStaysUsable) {
  const std::string c = Issue({});
  CsrSpec spec;
  spec.corrupt_signature = true;
  CommandResult bad = Ctl({"validate", "--csr", CsrFile(c, spec)});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.out, HasSubstr("csr_invalid"));
  EXPECT_EQ(Ctl({"validate", "--csr", CsrFile(c, CsrSpec())}).exit_code, 0);
}

TEST_F(CsrE2eTest, CsrInspectShowsWhatTheAuthorityReads) {
  CsrSpec spec;
  spec.common_names = {"device-9"};
  spec.dns_names = {"device-9.example.org"};
  spec.challenge_encoding = ChallengeEncoding::kBmpString;
  const std::string path = CsrFile("SECRETVALUE234", spec);
  CommandResult r = Ctl({"csr", "inspect", path});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("common name:  device-9"));
  EXPECT_THAT(r.out, HasSubstr("DNS SAN:      device-9.example.org"));
  EXPECT_THAT(r.out, HasSubstr("present (BMPString)"));
  EXPECT_THAT(r.out, Not(HasSubstr("SECRETVALUE234")));
  CommandResult shown = Ctl({"csr", "inspect", "--show-challenge", path});
  EXPECT_THAT(shown.out, HasSubstr("challenge value: SECRETVALUE234"));
  const std::string junk = WriteTemp(dir_, "junk", "not a csr");
  CommandResult invalid = Ctl({"csr", "inspect", junk});
  EXPECT_EQ(invalid.exit_code, 1);
  EXPECT_THAT(invalid.out, HasSubstr("invalid: CSR refused"));
}

TEST_F(CsrE2eTest, DebianScepclientCsrValidates) {
  const char* candidates[] = {"/usr/bin/scepclient",
                              "/usr/local/bin/scepclient"};
  std::string scepclient;
  for (const char* c : candidates) {
    if (access(c, X_OK) == 0) scepclient = c;
  }
  if (scepclient.empty()) {
    if (std::getenv("SCEPCA_REQUIRE_SCEP") != nullptr) {
      FAIL() << "scepclient not found and SCEPCA_REQUIRE_SCEP is set";
    }
    GTEST_SKIP() << "scepclient (Debian package scep) is not installed";
  }
  const std::string c = Issue({"--cn", "iphone-42"});
  // scepclient writes its CSR next to the key before it contacts the server.
  absl::StatusOr<CommandResult> run = RunCommand(
      {scepclient, "-private-key", dir_ + "/key.pem", "-server-url",
       "http://127.0.0.1:1/scep", "-challenge", c, "-cn", "iphone-42"});
  ASSERT_THAT(run, IsOk());
  const std::string csr = dir_ + "/csr.pem";
  CommandResult r = Ctl({"validate", "--csr", csr});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(Ctl({"csr", "inspect", csr}).out,
              HasSubstr("present (PrintableString)"));
}

}  // namespace
}  // namespace scepca::testing
