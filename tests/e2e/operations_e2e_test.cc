// End-to-end operations of the real binary: metrics and probes on the HTTP
// listener, limits, the audit log, mutual TLS with an authz file, and the
// plaintext-listen policy.
#include <httplib.h>

#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/challenge_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/hashing.h"
#include "tests/testing/authority_process.h"
#include "tests/testing/cert_builder.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/status_matchers.h"

namespace scepca::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

int Status(int port, const std::string& path, std::string* body = nullptr) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(2);
  client.set_read_timeout(3);
  auto res = client.Get(path.c_str());
  if (!res) return -1;
  if (body != nullptr) *body = res->body;
  return res->status;
}

std::string Issue(const AuthorityProcess& server, const std::string& device,
                  int* exit_code = nullptr) {
  CommandResult r =
      RunChallengectl(server.address(), {"issue", "--device", device});
  if (exit_code != nullptr) *exit_code = r.exit_code;
  return std::string(absl::StripSuffix(r.out, "\n"));
}

TEST(OperationsE2eTest, MetricsAndProbesFollowTheStore) {
  SCEPCA_SKIP_WITHOUT_REDIS_SERVER();
  auto redis = RedisServer::Start();
  ASSERT_THAT(redis, IsOk());
  const int http_port = PickFreePort();
  AuthorityProcess server;
  ASSERT_THAT(server.Start({"--store", (*redis)->tcp_url(), "--http-listen",
                            absl::StrCat("127.0.0.1:", http_port)}),
              IsOk());
  const std::string c = Issue(server, "dev-metrics");
  ASSERT_EQ(RunChallengectl(server.address(), {"validate", "--challenge", c})
                .exit_code,
            0);
  ASSERT_EQ(RunChallengectl(server.address(), {"validate", "--challenge", c})
                .exit_code,
            1);

  std::string metrics;
  ASSERT_EQ(Status(http_port, "/metrics", &metrics), 200);
  const std::regex sample(
      R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})? -?[0-9.eE+-]+$)");
  for (absl::string_view line : absl::StrSplit(metrics, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    EXPECT_TRUE(std::regex_match(std::string(line), sample)) << line;
  }
  EXPECT_THAT(metrics, HasSubstr("scepca_up 1"));
  EXPECT_THAT(metrics, HasSubstr("scepca_rpc_requests_total{method="
                                 "\"IssueChallenge\",code=\"OK\"} 1"));
  EXPECT_THAT(metrics,
              HasSubstr("scepca_validations_total{reason=\"already_used\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("scepca_rpc_latency_seconds_bucket{method="
                                 "\"Validate\",le=\"+Inf\"} 2"));

  EXPECT_EQ(Status(http_port, "/healthz"), 200);
  EXPECT_EQ(Status(http_port, "/readyz"), 200);
  (*redis)->Pause();
  EXPECT_TRUE(WaitFor([&] { return Status(http_port, "/readyz") == 503; },
                      absl::Seconds(5)));
  EXPECT_EQ(Status(http_port, "/healthz"), 200);
  (*redis)->Resume();
  EXPECT_TRUE(WaitFor([&] { return Status(http_port, "/readyz") == 200; },
                      absl::Seconds(10)));
}

TEST(OperationsE2eTest, RateLimitHitsAndRecovers) {
  AuthorityProcess server;
  ASSERT_THAT(
      server.Start({"--rate-limit-per-caller", "3", "--rate-limit-burst", "3"}),
      IsOk());
  // The burst comes from one in-process client, back to back: a
  // challengectl process per call could take long enough to start (under
  // sanitizers) that the bucket refills between calls.
  ClientOptions options;
  options.target = server.address();
  options.deadline = absl::Seconds(30);
  absl::StatusOr<std::unique_ptr<ChallengeClient>> client =
      ChallengeClient::Create(options);
  ASSERT_THAT(client, IsOk());
  int limited = 0;
  absl::Status last;
  for (int i = 0; i < 6; ++i) {
    scep::challenge::v1::IssueChallengeRequest request;
    request.set_device_id(absl::StrCat("dev-rl", i));
    last = (*client)->IssueChallenge(request).status();
    if (last.code() == absl::StatusCode::kResourceExhausted) {
      ++limited;
      EXPECT_THAT(last.message(), HasSubstr("rate limit"));
    }
  }
  EXPECT_GE(limited, 2);
  EXPECT_THAT(last, StatusIs(absl::StatusCode::kResourceExhausted));
  absl::SleepFor(absl::Seconds(1));
  int code = 0;
  Issue(server, "dev-rl-after", &code);
  EXPECT_EQ(code, 0);
}

TEST(OperationsE2eTest, OutstandingCapAndFailedValidationCap) {
  AuthorityProcess server;
  ASSERT_THAT(server.Start({"--max-outstanding-per-device", "2",
                            "--max-failed-validations-per-device", "2",
                            "--failed-validation-window", "5s"}),
              IsOk());
  int code = 0;
  const std::string first = Issue(server, "dev-cap", &code);
  ASSERT_EQ(code, 0);
  Issue(server, "dev-cap", &code);
  ASSERT_EQ(code, 0);
  CommandResult third =
      RunChallengectl(server.address(), {"issue", "--device", "dev-cap"});
  EXPECT_EQ(third.exit_code, 2);
  EXPECT_THAT(third.err, HasSubstr("RESOURCE_EXHAUSTED"));
  EXPECT_THAT(third.err, HasSubstr("--max-outstanding-per-device"));
  EXPECT_EQ(
      RunChallengectl(server.address(), {"validate", "--challenge", first})
          .exit_code,
      0);
  Issue(server, "dev-cap", &code);  // One slot is free again.
  EXPECT_EQ(code, 0);

  // Two refusals for the device, then its Validates are refused outright.
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(
        RunChallengectl(server.address(), {"validate", "--challenge", first})
            .exit_code,
        1);
  }
  CommandResult capped =
      RunChallengectl(server.address(), {"validate", "--challenge", first});
  EXPECT_EQ(capped.exit_code, 2);
  EXPECT_THAT(capped.err, HasSubstr("--max-failed-validations-per-device"));
  absl::SleepFor(absl::Milliseconds(5200));
  CommandResult after =
      RunChallengectl(server.address(), {"validate", "--challenge", first});
  EXPECT_EQ(after.exit_code, 1);
  EXPECT_THAT(after.out, HasSubstr("already_used"));
}

TEST(OperationsE2eTest, MutualTlsAuthzAndAuditThroughTheBinaries) {
  const std::string dir = MakeTempDir();
  CertSpec ca_spec;
  ca_spec.common_name = "e2e CA";
  ca_spec.is_ca = true;
  CertAndKey ca = *MakeSelfSigned(ca_spec);
  CertSpec server_spec;
  server_spec.common_name = "localhost";
  server_spec.dns_names = {"localhost"};
  server_spec.ip_addresses = {"127.0.0.1"};
  CertAndKey server_cert = *MakeSigned(server_spec, ca);
  CertSpec ops_spec;
  ops_spec.common_name = "ops";
  CertAndKey ops = *MakeSigned(ops_spec, ca);
  const std::string ca_pem = WriteFileWithMode(dir + "/ca.pem", ca.cert_pem);
  const std::string token = "scep-bridge-secret-token";
  WriteFileWithMode(dir + "/token", token + "\n");
  WriteFileWithMode(dir + "/authz.json",
                    absl::StrCat(R"({"principals": [
        {"name": "ops", "match": {"cn": "ops"}, "roles": ["admin"]},
        {"name": "bridge", "token_sha256": ")",
                                 HexEncode(Sha256(token)),
                                 R"(", "roles": ["validator"]}]})"));
  AuthorityProcess server;
  ASSERT_THAT(
      server.Start({"--tls-cert",
                    WriteFileWithMode(dir + "/s.pem", server_cert.cert_pem),
                    "--tls-key",
                    WriteFileWithMode(dir + "/s.key", server_cert.key_pem),
                    "--client-ca", ca_pem, "--authz-file", dir + "/authz.json",
                    "--audit-log", dir + "/audit.log"}),
      IsOk());
  const std::vector<std::string> as_ops = {
      "--tls-ca",          ca_pem,
      "--tls-server-name", "localhost",
      "--tls-cert",        WriteFileWithMode(dir + "/o.pem", ops.cert_pem),
      "--tls-key",         WriteFileWithMode(dir + "/o.key", ops.key_pem)};
  std::vector<std::string> args = as_ops;
  args.insert(args.end(), {"issue", "--device", "dev-mtls"});
  CommandResult issued = RunChallengectl(server.address(), args);
  ASSERT_EQ(issued.exit_code, 0) << issued.err;
  const std::string c(absl::StripSuffix(issued.out, "\n"));

  CommandResult anonymous = RunChallengectl(
      server.address(), {"--tls-ca", ca_pem, "--tls-server-name", "localhost",
                         "validate", "--challenge", c});
  EXPECT_EQ(anonymous.exit_code, 2);
  EXPECT_THAT(anonymous.err, HasSubstr("UNAUTHENTICATED"));
  CommandResult plaintext =
      RunChallengectl(server.address(), {"validate", "--challenge", c});
  EXPECT_EQ(plaintext.exit_code, 3);
  CommandResult bridge_issue = RunChallengectl(
      server.address(),
      {"--tls-ca", ca_pem, "--tls-server-name", "localhost", "--token-file",
       dir + "/token", "issue", "--device", "x"});
  EXPECT_EQ(bridge_issue.exit_code, 2);
  EXPECT_THAT(bridge_issue.err, HasSubstr("PERMISSION_DENIED"));
  CommandResult bridge = RunChallengectl(
      server.address(),
      {"--tls-ca", ca_pem, "--tls-server-name", "localhost", "--token-file",
       dir + "/token", "validate", "--challenge", c});
  EXPECT_EQ(bridge.exit_code, 0) << bridge.err;

  const std::string audit = ReadFile(dir + "/audit.log");
  EXPECT_THAT(audit, HasSubstr("\"caller\":\"ops\""));
  EXPECT_THAT(audit, HasSubstr("\"caller\":\"bridge\""));
  EXPECT_THAT(audit, HasSubstr("\"outcome\":\"UNAUTHENTICATED\""));
  EXPECT_THAT(audit, Not(HasSubstr(c)));
  EXPECT_THAT(audit, Not(HasSubstr(token)));
  EXPECT_THAT(server.Log(), Not(HasSubstr(c)));
}

TEST(OperationsE2eTest, PlaintextOnANonLoopbackAddressNeedsTheOptIn) {
  const int port = PickFreePort();
  absl::StatusOr<CommandResult> refused =
      RunCommand({BinaryPath("service/challenge-authority"), "--listen",
                  absl::StrCat("0.0.0.0:", port)});
  ASSERT_THAT(refused, IsOk());
  EXPECT_EQ(refused->exit_code, 2);
  EXPECT_THAT(refused->err, HasSubstr("--allow-insecure-listen"));
  ChildProcess allowed;
  const std::string log = absl::StrCat(MakeTempDir(), "/log");
  ASSERT_THAT(
      allowed.Start({BinaryPath("service/challenge-authority"), "--listen",
                     absl::StrCat("0.0.0.0:", port), "--allow-insecure-listen"},
                    log),
      IsOk());
  EXPECT_TRUE(
      WaitFor([&] { return absl::StrContains(ReadFile(log), "listening on"); },
              absl::Seconds(10)));
  EXPECT_THAT(ReadFile(log), HasSubstr("PLAINTEXT"));
}

}  // namespace
}  // namespace scepca::testing
