#include "service/http/http_server.h"

#include <sys/stat.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/base64.h"
#include "service/http/http_users.h"
#include "service/http/stepca_webhook.h"
#include "tests/http/http_test_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"

namespace scepca::testing {
namespace {

using ::testing::HasSubstr;

class HttpServerLifecycleTest : public HttpServerTest {};

TEST_F(HttpServerLifecycleTest, RefusesPlainHttpOffLoopback) {
  for (const char* listen : {"0.0.0.0:0", "[::]:0", "192.0.2.1:0"}) {
    options_.listen = listen;
    EXPECT_THAT(HttpServer::Start(options_, authority_.get()),
                StatusIs(absl::StatusCode::kFailedPrecondition,
                         HasSubstr("only served on loopback")))
        << listen;
  }
}

TEST_F(HttpServerLifecycleTest, RefusesInconsistentOptions) {
  HttpServerOptions bad = options_;
  bad.listen = "127.0.0.1";
  EXPECT_THAT(HttpServer::Start(bad, authority_.get()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  bad = options_;
  bad.users_file.clear();
  bad.ndes_ca_cert_file = "ca.pem";
  EXPECT_THAT(HttpServer::Start(bad, authority_.get()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--http-users-file")));
  bad = options_;
  bad.tls_cert_file = "cert.pem";
  EXPECT_THAT(HttpServer::Start(bad, authority_.get()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  bad = options_;
  bad.listen.clear();
  EXPECT_THAT(StartHttpServerIfConfigured(bad, authority_.get()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("need --http-listen")));
  HttpServerOptions off;
  absl::StatusOr<std::unique_ptr<HttpServer>> none =
      StartHttpServerIfConfigured(off, authority_.get());
  ASSERT_THAT(none, IsOk());
  EXPECT_EQ(*none, nullptr);
}

TEST_F(HttpServerLifecycleTest, RefusesAUsersFileOthersCanRead) {
  chmod(options_.users_file.c_str(), 0644);
  EXPECT_THAT(
      HttpServer::Start(options_, authority_.get()),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("chmod 600")));
}

TEST_F(HttpServerLifecycleTest, RefusesAProductionServerWithCheapHashes) {
  options_.users_file_options = UsersFileOptions();
  EXPECT_THAT(HttpServer::Start(options_, authority_.get()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("below the minimum ln=15")));
}

TEST_F(HttpServerLifecycleTest, RefusesAPortInUse) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  options_.listen = absl::StrCat("127.0.0.1:", server_->port());
  EXPECT_THAT(HttpServer::Start(options_, authority_.get()),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(HttpServerLifecycleTest, CapsTheBodyAndKnowsOnlyItsPaths) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  httplib::Client client = Client();
  httplib::Result big = client.Post("/step-ca/scepchallenge",
                                    std::string(65 * 1024, 'x'), "text/plain");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  httplib::Result unknown = client.Get("/");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  httplib::Result wrong_method = client.Get("/jamf/scepchallenge");
  ASSERT_TRUE(wrong_method);
  EXPECT_EQ(wrong_method->status, 404);
}

TEST_F(HttpServerLifecycleTest, StepCaEndpointsExistOnlyWithASecret) {
  options_.stepca_secret_file.clear();
  ASSERT_NO_FATAL_FAILURE(StartServer());
  httplib::Result r =
      Client().Post("/step-ca/scepchallenge", "{}", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
}

TEST_F(HttpServerLifecycleTest, NdesAndJamfExistOnlyWithAUsersFile) {
  options_.users_file.clear();
  ASSERT_NO_FATAL_FAILURE(StartServer());
  httplib::Result r = Client().Get("/certsrv/mscep_admin/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
}

TEST_F(HttpServerLifecycleTest, ReloadPicksUpNewAccountsAndKeepsOldOnError) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  absl::StatusOr<std::string> hash =
      HashPassword("newcomer-password", {.log_n = 10, .r = 8, .p = 1});
  ASSERT_THAT(hash, IsOk());
  const std::string users = ReadFile(options_.users_file);
  WriteTestFile(dir_, "users",
                absl::StrCat(users, "user newcomer ", *hash, "\n"));
  httplib::Client client = Client();
  client.set_basic_auth("newcomer", "newcomer-password");
  EXPECT_EQ(client.Get("/certsrv/mscep_admin/")->status, 401);
  server_->ReloadUsers();
  EXPECT_EQ(client.Get("/certsrv/mscep_admin/")->status, 200);
  WriteTestFile(dir_, "users", "garbage\n");
  server_->ReloadUsers();
  EXPECT_EQ(client.Get("/certsrv/mscep_admin/")->status, 200);
}

TEST_F(HttpServerLifecycleTest, ServesHttpsWithCertAndKey) {
  const TestCertificate cert = MakeSelfSignedCertificate("localhost", 99);
  options_.tls_cert_file = WriteTestFile(dir_, "tls.pem", cert.pem, 0644);
  options_.tls_key_file = WriteTestFile(dir_, "tls.key", cert.key_pem);
  ASSERT_NO_FATAL_FAILURE(StartServer());
  EXPECT_THAT(server_->base_url(), ::testing::StartsWith("https://127.0.0.1:"));
  httplib::SSLClient client("127.0.0.1", server_->port());
  client.enable_server_certificate_verification(false);
  client.set_basic_auth("fleet", kFleetPassword);
  httplib::Result r = client.Get("/certsrv/mscep_admin/");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  EXPECT_THAT(ExtractLikeFleet(DecodeLikeFleet(r->body)),
              ::testing::MatchesRegex("[A-Z2-7]{26}"));
  // Plain HTTP to the TLS port gets nothing useful.
  httplib::Result plain = Client().Get("/certsrv/mscep_admin/");
  EXPECT_TRUE(!plain || plain->status != 200);
}

TEST_F(HttpServerLifecycleTest, RefusesAMismatchedTlsKey) {
  const TestCertificate a = MakeSelfSignedCertificate("a", 1);
  const TestCertificate b = MakeSelfSignedCertificate("b", 2);
  options_.tls_cert_file = WriteTestFile(dir_, "a.pem", a.pem, 0644);
  options_.tls_key_file = WriteTestFile(dir_, "b.key", b.key_pem);
  EXPECT_THAT(HttpServer::Start(options_, authority_.get()),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(HttpServerLifecycleTest, StopIsIdempotentAndClosesThePort) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  const int port = server_->port();
  server_->Stop();
  server_->Stop();
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(1);
  EXPECT_FALSE(client.Get("/certsrv/mscep_admin/"));
}

TEST_F(HttpServerLifecycleTest, ServesConcurrentClients) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 5; ++j) {
        httplib::Client client = Client();
        client.set_basic_auth("fleet", kFleetPassword);
        httplib::Result r = client.Get("/certsrv/mscep_admin/");
        if (r && r->status == 200 &&
            !ExtractLikeFleet(DecodeLikeFleet(r->body)).empty()) {
          ++ok;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), 40);
}

}  // namespace
}  // namespace scepca::testing
