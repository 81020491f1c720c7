// End-to-end: the real challenge-authority with --http-listen, its users file
// written by the real challengectl http-user, driven over HTTP the way NDES
// clients (Fleet, zentral), Jamf-style clients and step-ca call it.
#include <httplib.h>
#include <signal.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/base64.h"
#include "service/http/stepca_webhook.h"
#include "tests/http/http_test_util.h"
#include "tests/testing/authority_process.h"
#include "tests/testing/csr_builder.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"

namespace scepca::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

constexpr char kFleetPassword[] = "e2e fleet password";

CommandResult HttpUser(const std::vector<std::string>& args,
                       const std::string& stdin_data = "") {
  std::vector<std::string> argv = {BinaryPath("client/challengectl"),
                                   "http-user"};
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<CommandResult> r = RunCommand(argv, stdin_data);
  if (!r.ok()) return CommandResult{-1, "", std::string(r.status().message())};
  return *r;
}

class HttpE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    users_ = absl::StrCat(dir_, "/users");
    secret_ = WriteTestFile(dir_, "stepca-secret",
                            absl::StrCat(kDocSecretBase64, "\n"));
    http_port_ = PickFreePort();
  }

  absl::Status StartServer() {
    return server_.Start(
        {"--http-listen", absl::StrCat("127.0.0.1:", http_port_),
         "--http-users-file", users_, "--stepca-webhook-secret-file", secret_});
  }

  httplib::Client Client() const {
    httplib::Client client("127.0.0.1", http_port_);
    client.set_connection_timeout(5);
    client.set_read_timeout(5);
    return client;
  }

  std::string dir_;
  std::string users_;
  std::string secret_;
  int http_port_ = 0;
  AuthorityProcess server_;
};

TEST_F(HttpE2eTest, NdesJamfAndStepCaAgainstTheRealBinaries) {
  // The users file, made by challengectl.
  CommandResult r =
      HttpUser({"add", "--file", users_, "--name", "fleet", "--ttl", "60m",
                "--user", "alice", "--label", "template=wifi"},
               absl::StrCat(kFleetPassword, "\n"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  struct stat st;
  ASSERT_EQ(stat(users_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_THAT(ReadFile(users_), Not(HasSubstr(kFleetPassword)));
  r = HttpUser({"list", "--file", users_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("fleet"));
  EXPECT_THAT(r.out, HasSubstr("template=wifi"));
  EXPECT_THAT(r.out, Not(HasSubstr("scrypt")));
  EXPECT_EQ(HttpUser({"add", "--file", users_, "--name", "fleet"},
                     "another long password\n")
                .exit_code,
            2);
  EXPECT_EQ(HttpUser({"add", "--file", users_, "--name", "short"}, "short\n")
                .exit_code,
            2);

  ASSERT_THAT(StartServer(), IsOk());

  // NDES: anonymous first, then Basic.
  httplib::Result anonymous = Client().Get("/certsrv/mscep_admin/");
  ASSERT_TRUE(anonymous);
  EXPECT_EQ(anonymous->status, 401);
  EXPECT_EQ(anonymous->get_header_value("WWW-Authenticate"),
            "Basic realm=\"SCEP Challenge Authority\"");
  httplib::Client ndes = Client();
  ndes.set_basic_auth("fleet", kFleetPassword);
  httplib::Result page = ndes.Get("/certsrv/mscep_admin/");
  ASSERT_TRUE(page);
  ASSERT_EQ(page->status, 200);
  EXPECT_EQ(page->body.substr(0, 2), "\xFF\xFE");
  const std::string challenge =
      ExtractLikeZentral(DecodeLikeZentral(page->body));
  EXPECT_THAT(challenge, MatchesRegex("[A-Z2-7]{26}"));
  EXPECT_EQ(ExtractLikeFleet(DecodeLikeFleet(page->body)), challenge);

  // step-ca validates it with the device's CSR.
  CsrSpec spec;
  spec.challenge_shape = ChallengeShape::kSingle;
  spec.challenge = challenge;
  absl::StatusOr<std::string> csr = BuildCsrDer(spec);
  ASSERT_THAT(csr, IsOk());
  const std::string body = absl::StrCat(
      "{\"timestamp\":\"", GoTimestamp(absl::Now(), absl::Hours(2)),
      "\",\"provisionerName\":\"scep\",\"x509CertificateRequest\":{"
      "\"version\":0,\"publicKeyAlgorithm\":\"ECDSA\",\"raw\":\"",
      Base64Encode(*csr), "\"},\"scepChallenge\":\"", challenge,
      "\",\"scepTransactionID\":\"E2E-TX-1\"}");
  httplib::Headers headers = {
      {"X-Smallstep-Signature", StepCaSignature(kDocSecret, body)}};
  httplib::Result allowed =
      Client().Post("/step-ca/scepchallenge", headers, body, "text/plain");
  ASSERT_TRUE(allowed);
  EXPECT_EQ(allowed->status, 200);
  EXPECT_THAT(allowed->body,
              MatchesRegex("\\{\"allow\":true,\"data\":\\{\"device_id\":"
                           "\"ndes:fleet\",\"user_id\":\"alice\","
                           "\"challenge_id\":\"[0-9a-f]{32}\",\"labels\":\\{"
                           "\"template\":\"wifi\"\\}\\}\\}"));
  const std::string challenge_id =
      allowed->body.substr(allowed->body.find("challenge_id") + 15, 32);
  r = RunChallengectl(server_.address(), {"get", challenge_id});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("state:        used"));
  EXPECT_THAT(r.out, HasSubstr("E2E-TX-1"));
  r = RunChallengectl(server_.address(),
                      {"validate", "--challenge", challenge});
  EXPECT_EQ(r.exit_code, 1) << r.out;

  // Jamf-style: the bare challenge, which then validates over gRPC.
  httplib::Client jamf = Client();
  jamf.set_basic_auth("fleet", kFleetPassword);
  httplib::Result jamf_challenge = jamf.Post(
      "/jamf/scepchallenge",
      "{\"webhook\":{\"webhookEvent\":\"SCEPChallenge\",\"id\":1,"
      "\"eventTimestamp\":1757435578,\"name\":\"SCEPChallenge\"},\"event\":{"
      "\"scepServerUrl\":\"https://scep.example.com\",\"payloadIdentifier\":"
      "\"5D7C45E9-0000-4000-8000-000000000000\",\"payloadTypes\":["
      "\"com.apple.security.scep\"]}}\n",
      "application/json");
  ASSERT_TRUE(jamf_challenge);
  EXPECT_EQ(jamf_challenge->status, 200);
  EXPECT_THAT(jamf_challenge->body, MatchesRegex("[A-Z2-7]{26}"));
  r = RunChallengectl(server_.address(),
                      {"validate", "--challenge", jamf_challenge->body});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("device jamf:fleet:5D7C45E9-0000-4000-8000-"
                               "000000000000, user alice"));

  // A new account is served after SIGHUP.
  r = HttpUser(
      {"add", "--file", users_, "--name", "workspace-one", "--no-issue"},
      "workspace one password\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  httplib::Client ws1 = Client();
  ws1.set_basic_auth("workspace-one", "workspace one password");
  EXPECT_EQ(ws1.Get("/certsrv/mscep_admin/")->status, 401);
  server_.child().Signal(SIGHUP);
  EXPECT_TRUE(WaitFor(
      [&] {
        httplib::Result p = ws1.Get("/certsrv/mscep_admin/");
        return p && p->status == 200 &&
               DecodeLikeFleet(p->body).find(
                   "You do not have sufficient permission to enroll with "
                   "SCEP.  Please contact your system administrator.") !=
                   std::string::npos;
      },
      absl::Seconds(10)))
      << server_.Log();

  const std::string log = server_.Log();
  EXPECT_THAT(log, HasSubstr("HTTP webhooks at http://127.0.0.1:"));
  EXPECT_THAT(log, Not(HasSubstr(challenge)));
  EXPECT_THAT(log, Not(HasSubstr(kFleetPassword)));
  EXPECT_EQ(server_.Stop(), 0);
}

TEST_F(HttpE2eTest, RefusesToStartWithAUsersFileOthersCanRead) {
  CommandResult r = HttpUser({"add", "--file", users_, "--name", "fleet"},
                             absl::StrCat(kFleetPassword, "\n"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  chmod(users_.c_str(), 0644);
  absl::StatusOr<CommandResult> run = RunCommand(
      {BinaryPath("service/challenge-authority"), "--listen", "127.0.0.1:0",
       "--http-listen", absl::StrCat("127.0.0.1:", http_port_),
       "--http-users-file", users_},
      "", absl::Seconds(20));
  ASSERT_THAT(run, IsOk());
  EXPECT_EQ(run->exit_code, 2);
  EXPECT_THAT(run->err, HasSubstr("chmod 600"));
}

}  // namespace
}  // namespace scepca::testing
