// Transport security and authorization: the mutual-TLS matrix, bearer
// tokens, each role on each RPC, and the audit trail they leave.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/challenge_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/hashing.h"
#include "service/core/in_memory_challenge_store.h"
#include "service/grpc/authority_server.h"
#include "tests/testing/cert_builder.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"

namespace scepca {
namespace {

namespace v1 = ::scep::challenge::v1;
using ::scepca::testing::CertAndKey;
using ::scepca::testing::CertSpec;
using ::scepca::testing::IsOk;
using ::scepca::testing::MakeSelfSigned;
using ::scepca::testing::MakeSigned;
using ::scepca::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kBridgeToken[] = "bridge-token-0123456789";

std::string Policy() {
  return absl::StrCat(
      R"({"principals": [
        {"name": "mdm", "match": {"dns": "mdm.example.org"}, "roles": ["issuer"]},
        {"name": "scep", "match": {"uri": "spiffe://example.org/scep"},
         "roles": ["validator"]},
        {"name": "ops", "match": {"cn": "ops"}, "roles": ["admin"]},
        {"name": "mdm-acme", "match": {"dns": "mdm.acme.example"},
         "roles": ["issuer"], "scope_labels": {"tenant": "acme"}},
        {"name": "mdm-globex", "match": {"dns": "mdm.globex.example"},
         "roles": ["issuer"], "scope_labels": {"tenant": "globex"}},
        {"name": "bridge", "token_sha256": ")",
      HexEncode(Sha256(kBridgeToken)), R"(", "roles": ["validator"]}]})");
}

class AuthzTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    CertSpec ca_spec;
    ca_spec.common_name = "test CA";
    ca_spec.is_ca = true;
    ca_ = new CertAndKey(*MakeSelfSigned(ca_spec));
    CertSpec other_ca_spec = ca_spec;
    other_ca_spec.common_name = "untrusted CA";
    other_ca_ = new CertAndKey(*MakeSelfSigned(other_ca_spec));
    CertSpec server;
    server.common_name = "localhost";
    server.dns_names = {"localhost"};
    server.ip_addresses = {"127.0.0.1"};
    server_cert_ = new CertAndKey(*MakeSigned(server, *ca_));
  }

  void SetUp() override {
    dir_ = scepca::testing::MakeTempDir();
    auto authority = ChallengeAuthority::Create(AuthorityOptions(), &store_,
                                                RealClock::Get());
    ASSERT_THAT(authority, IsOk());
    authority_ = *std::move(authority);
    auto authorizer = Authorizer::FromJson(Policy());
    ASSERT_THAT(authorizer, IsOk());
    authorizer_ = *std::move(authorizer);
    audit_path_ = absl::StrCat(dir_, "/audit.log");
    audit_ = *AuditLog::Open(audit_path_);
    ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.tls_cert = scepca::testing::WriteFileWithMode(
        dir_ + "/server.pem", server_cert_->cert_pem, 0644);
    options.tls_key = scepca::testing::WriteFileWithMode(
        dir_ + "/server.key", server_cert_->key_pem, 0600);
    options.client_ca = scepca::testing::WriteFileWithMode(dir_ + "/ca.pem",
                                                           ca_->cert_pem, 0644);
    options.hooks.authorizer = authorizer_.get();
    options.hooks.audit = audit_.get();
    options.hooks.metrics = &metrics_;
    auto server = AuthorityServer::Start(options, authority_.get());
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
  }
  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(1));
  }

  // A client presenting `cert` (if any) and `token` (if any).
  std::unique_ptr<ChallengeClient> Client(const CertAndKey* cert,
                                          const std::string& token = "") {
    ClientOptions options;
    options.target = absl::StrCat("127.0.0.1:", server_->port());
    options.deadline = absl::Seconds(5);
    options.tls_ca_pem = ca_->cert_pem;
    options.tls_server_name = "localhost";
    if (cert != nullptr) {
      options.tls_cert_pem = cert->cert_pem;
      options.tls_key_pem = cert->key_pem;
    }
    options.bearer_token = token;
    return *ChallengeClient::Create(options);
  }
  static CertAndKey Leaf(const CertSpec& spec, const CertAndKey& ca) {
    return *MakeSigned(spec, ca);
  }

  // Calls every RPC; returns their status codes in a fixed order:
  // Issue, Get, List, Validate, Notify, Revoke.
  std::vector<absl::StatusCode> CallAll(ChallengeClient& client) {
    std::vector<absl::StatusCode> codes;
    v1::IssueChallengeRequest issue;
    issue.set_device_id("dev-authz");
    codes.push_back(client.IssueChallenge(issue).status().code());
    v1::GetChallengeRequest get;
    get.set_challenge_id(std::string(32, 'a'));
    codes.push_back(client.GetChallenge(get).status().code());
    v1::ListChallengesRequest list;
    list.set_device_id("dev-authz");
    codes.push_back(client.ListChallenges(list).status().code());
    v1::ValidateRequest validate;
    validate.set_challenge("AAAAAAAAAAAAAAAAAAAAAAAAAA");
    codes.push_back(client.Validate(validate).status().code());
    v1::NotifyOutcomeRequest notify;
    notify.set_challenge_id(std::string(32, 'a'));
    notify.set_outcome(v1::OUTCOME_ISSUED);
    codes.push_back(client.NotifyOutcome(notify).status().code());
    v1::RevokeRequest revoke;
    revoke.set_device_id("dev-authz");
    codes.push_back(client.Revoke(revoke).status().code());
    return codes;
  }

  static CertAndKey* ca_;
  static CertAndKey* other_ca_;
  static CertAndKey* server_cert_;
  std::string dir_;
  InMemoryChallengeStore store_;
  std::unique_ptr<ChallengeAuthority> authority_;
  std::unique_ptr<Authorizer> authorizer_;
  std::string audit_path_;
  std::unique_ptr<AuditLog> audit_;
  ServiceMetrics metrics_;
  std::unique_ptr<AuthorityServer> server_;
};

CertAndKey* AuthzTest::ca_ = nullptr;
CertAndKey* AuthzTest::other_ca_ = nullptr;
CertAndKey* AuthzTest::server_cert_ = nullptr;

using Code = absl::StatusCode;
constexpr Code kOk = Code::kOk;
constexpr Code kNotFound = Code::kNotFound;
constexpr Code kDenied = Code::kPermissionDenied;
constexpr Code kUnauth = Code::kUnauthenticated;

TEST_F(AuthzTest, EachRoleOnEachRpc) {
  CertSpec mdm;
  mdm.common_name = "mdm";
  mdm.dns_names = {"mdm.example.org"};
  CertSpec scep;
  scep.common_name = "scep";
  scep.uris = {"spiffe://example.org/scep"};
  CertSpec ops;
  ops.common_name = "ops";
  // Issue, Get, List, Validate, Notify, Revoke.
  EXPECT_THAT(
      CallAll(*Client(&*std::make_unique<CertAndKey>(Leaf(mdm, *ca_)))),
      ::testing::ElementsAre(kOk, kNotFound, kOk, kDenied, kDenied, kDenied));
  EXPECT_THAT(
      CallAll(*Client(&*std::make_unique<CertAndKey>(Leaf(scep, *ca_)))),
      ::testing::ElementsAre(kDenied, kDenied, kDenied, kOk, kNotFound,
                             kDenied));
  EXPECT_THAT(CallAll(*Client(&*std::make_unique<CertAndKey>(Leaf(ops, *ca_)))),
              ::testing::ElementsAre(kOk, kNotFound, kOk, kOk, kNotFound, kOk));
}

TEST_F(AuthzTest, CertificatesThatMustNotGetIn) {
  // No certificate and no token: no identity.
  EXPECT_THAT(CallAll(*Client(nullptr)),
              ::testing::Each(::testing::Eq(kUnauth)));
  // Trusted but not listed.
  CertSpec unlisted;
  unlisted.common_name = "someone";
  unlisted.dns_names = {"other.example.org"};
  CertAndKey unlisted_cert = Leaf(unlisted, *ca_);
  EXPECT_THAT(CallAll(*Client(&unlisted_cert)),
              ::testing::Each(::testing::Eq(kDenied)));
  // Signed by an untrusted CA, or expired: the handshake fails.
  CertSpec ops;
  ops.common_name = "ops";
  CertAndKey untrusted = Leaf(ops, *other_ca_);
  v1::IssueChallengeRequest issue;
  issue.set_device_id("d");
  EXPECT_THAT(Client(&untrusted)->IssueChallenge(issue),
              StatusIs(Code::kUnavailable));
  CertSpec expired = ops;
  expired.not_before = -absl::Hours(48);
  expired.not_after = -absl::Hours(24);
  CertAndKey expired_cert = Leaf(expired, *ca_);
  EXPECT_THAT(Client(&expired_cert)->IssueChallenge(issue),
              StatusIs(Code::kUnavailable));
  // The server lives on.
  CertAndKey ops_cert = Leaf(ops, *ca_);
  EXPECT_THAT(Client(&ops_cert)->IssueChallenge(issue), IsOk());
}

TEST_F(AuthzTest, BearerTokens) {
  v1::ValidateRequest validate;
  validate.set_challenge("AAAAAAAAAAAAAAAAAAAAAAAAAA");
  EXPECT_THAT(Client(nullptr)->Validate(validate), StatusIs(kUnauth));
  EXPECT_THAT(Client(nullptr, "wrong-token")->Validate(validate),
              StatusIs(kUnauth));
  EXPECT_THAT(Client(nullptr, kBridgeToken)->Validate(validate), IsOk());
  v1::IssueChallengeRequest issue;
  issue.set_device_id("d");
  EXPECT_THAT(Client(nullptr, kBridgeToken)->IssueChallenge(issue),
              StatusIs(kDenied, HasSubstr("bridge")));
}

TEST_F(AuthzTest, ScopedIssuersSeeOnlyTheirTenant) {
  CertSpec acme_spec;
  acme_spec.common_name = "acme";
  acme_spec.dns_names = {"mdm.acme.example"};
  CertSpec globex_spec;
  globex_spec.common_name = "globex";
  globex_spec.dns_names = {"mdm.globex.example"};
  CertSpec ops_spec;
  ops_spec.common_name = "ops";
  CertAndKey acme_cert = Leaf(acme_spec, *ca_);
  CertAndKey globex_cert = Leaf(globex_spec, *ca_);
  CertAndKey ops_cert = Leaf(ops_spec, *ca_);
  auto acme = Client(&acme_cert);
  auto globex = Client(&globex_cert);
  auto ops = Client(&ops_cert);

  // The scope's labels are added to what the issuer asks for.
  v1::IssueChallengeRequest issue;
  issue.set_device_id("shared-device");
  (*issue.mutable_labels())["template"] = "wifi";
  auto mine = acme->IssueChallenge(issue);
  ASSERT_THAT(mine, IsOk());
  // Setting the scope's label to another tenant is refused.
  (*issue.mutable_labels())["tenant"] = "globex";
  EXPECT_THAT(acme->IssueChallenge(issue),
              StatusIs(kDenied, HasSubstr("labels[tenant]")));
  // Setting it to its own value is fine.
  (*issue.mutable_labels())["tenant"] = "acme";
  ASSERT_THAT(acme->IssueChallenge(issue), IsOk());
  issue.mutable_labels()->clear();
  auto theirs = globex->IssueChallenge(issue);
  ASSERT_THAT(theirs, IsOk());

  v1::GetChallengeRequest get;
  get.set_challenge_id(mine->challenge_id());
  auto got = acme->GetChallenge(get);
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->labels().at("tenant"), "acme");
  EXPECT_EQ(got->labels().at("template"), "wifi");
  // Another tenant's challenge does not exist for this caller.
  EXPECT_THAT(globex->GetChallenge(get), StatusIs(kNotFound));
  EXPECT_THAT(ops->GetChallenge(get), IsOk());

  // Lists leave out the other tenant's challenges of the same device.
  v1::ListChallengesRequest list;
  list.set_device_id("shared-device");
  auto acme_list = acme->ListChallenges(list);
  ASSERT_THAT(acme_list, IsOk());
  EXPECT_EQ(acme_list->challenges_size(), 2);
  for (const auto& c : acme_list->challenges()) {
    EXPECT_EQ(c.labels().at("tenant"), "acme");
  }
  auto globex_list = globex->ListChallenges(list);
  ASSERT_THAT(globex_list, IsOk());
  ASSERT_EQ(globex_list->challenges_size(), 1);
  EXPECT_EQ(globex_list->challenges(0).challenge_id(), theirs->challenge_id());
  auto ops_list = ops->ListChallenges(list);
  ASSERT_THAT(ops_list, IsOk());
  EXPECT_EQ(ops_list->challenges_size(), 3);
}

TEST(AuthzPolicyScopeTest, RefusesAnEmptyScopeKey) {
  EXPECT_THAT(
      Authorizer::FromJson(R"({"principals": [{"name": "a",
                  "match": {"cn": "a"}, "roles": ["issuer"],
                  "scope_labels": {"": "x"}}]})"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("scope_labels")));
}

TEST_F(AuthzTest, AuditLinesAreJsonWithCallersAndNoSecrets) {
  CertSpec ops;
  ops.common_name = "ops";
  CertAndKey ops_cert = Leaf(ops, *ca_);
  auto client = Client(&ops_cert);
  v1::IssueChallengeRequest issue;
  issue.set_device_id("dev-audit");
  auto issued = client->IssueChallenge(issue);
  ASSERT_THAT(issued, IsOk());
  v1::ValidateRequest validate;
  validate.set_challenge(issued->challenge());
  validate.set_transaction_id("tx-audit");
  ASSERT_THAT(client->Validate(validate), IsOk());
  ASSERT_THAT(client->Validate(validate), IsOk());
  ASSERT_THAT(Client(nullptr)->Validate(validate), StatusIs(kUnauth));

  const std::string log = scepca::testing::ReadFile(audit_path_);
  EXPECT_THAT(log, Not(HasSubstr(issued->challenge())));
  std::vector<std::string> lines = absl::StrSplit(log, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 4u);
  std::vector<google::protobuf::Struct> entries(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    ASSERT_TRUE(
        google::protobuf::util::JsonStringToMessage(lines[i], &entries[i]).ok())
        << lines[i];
  }
  auto field = [&](size_t i, const std::string& name) {
    auto it = entries[i].fields().find(name);
    return it == entries[i].fields().end() ? std::string()
                                           : it->second.string_value();
  };
  EXPECT_EQ(field(0, "method"), "IssueChallenge");
  EXPECT_EQ(field(0, "caller"), "ops");
  EXPECT_EQ(field(0, "device_id"), "dev-audit");
  EXPECT_EQ(field(0, "challenge_id"), issued->challenge_id());
  EXPECT_EQ(field(1, "outcome"), "valid");
  EXPECT_EQ(field(1, "reason"), "valid");
  EXPECT_EQ(field(1, "transaction_id"), "tx-audit");
  EXPECT_EQ(field(2, "outcome"), "denied");
  EXPECT_EQ(field(2, "reason"), "already_used");
  EXPECT_EQ(field(3, "outcome"), "UNAUTHENTICATED");
  EXPECT_EQ(field(3, "caller"), "anonymous");
  EXPECT_TRUE(entries[1].fields().contains("latency_ms"));

  const std::string metrics = metrics_.Render();
  EXPECT_THAT(metrics,
              HasSubstr("scepca_validations_total{reason=\"valid\"} 1"));
  EXPECT_THAT(metrics,
              HasSubstr("scepca_rpc_requests_total{method=\"Validate\","
                        "code=\"UNAUTHENTICATED\"} 1"));
}

TEST(AuthzPolicyTest, RefusesBadFiles) {
  for (const char* bad : {
           R"({"principals": [{"name": "a", "match": {"cn": "a"},
                               "roles": ["root"]}]})",
           R"({"principals": [{"name": "a", "roles": ["admin"]}]})",
           R"({"principals": [{"name": "a", "token_sha256": "abc",
                               "roles": ["admin"]}]})",
           R"({"principals": [{"name": "a", "match": {"cn": "a"},
                               "roles": ["admin"]},
                              {"name": "a", "match": {"cn": "b"},
                               "roles": ["admin"]}]})",
           R"({"principals": [{"match": {"cn": "a"}, "roles": ["admin"]}]})",
           R"({"principals": [{"name": "a", "match": {"cn": "a"}}]})",
           R"({"principal": []})",
           "not json",
       }) {
    EXPECT_THAT(Authorizer::FromJson(bad),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << bad;
  }
}

TEST(ListenPolicyTest, PlaintextOnlyOnLoopbackUnlessAllowed) {
  EXPECT_TRUE(IsLoopbackAddress("127.0.0.1:50051"));
  EXPECT_TRUE(IsLoopbackAddress("[::1]:50051"));
  EXPECT_TRUE(IsLoopbackAddress("localhost:1"));
  EXPECT_TRUE(IsLoopbackAddress("unix:/run/scepca.sock"));
  EXPECT_FALSE(IsLoopbackAddress("0.0.0.0:50051"));
  EXPECT_FALSE(IsLoopbackAddress("[::]:50051"));
  EXPECT_FALSE(IsLoopbackAddress("10.1.2.3:50051"));
  InMemoryChallengeStore store;
  auto authority =
      *ChallengeAuthority::Create(AuthorityOptions(), &store, RealClock::Get());
  ServerOptions options;
  options.listen = "0.0.0.0:0";
  EXPECT_THAT(AuthorityServer::Start(options, authority.get()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--allow-insecure-listen")));
  options.allow_insecure_listen = true;
  auto server = AuthorityServer::Start(options, authority.get());
  EXPECT_THAT(server, IsOk());
}

}  // namespace
}  // namespace scepca
