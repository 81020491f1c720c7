// Tests of the gRPC layer: a real server on a free port with the memory
// store, driven through the client library.
#include "service/grpc/challenge_service.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "client/challenge_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/in_memory_challenge_store.h"
#include "service/grpc/authority_server.h"
#include "tests/testing/csr_builder.h"
#include "tests/testing/status_matchers.h"

namespace scepca {
namespace {

namespace v1 = ::scep::challenge::v1;
using ::scepca::testing::IsOk;
using ::scepca::testing::IsOkAndHolds;
using ::scepca::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::SizeIs;

class ChallengeServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AuthorityOptions options;
    options.max_ttl = absl::Hours(24);
    auto authority =
        ChallengeAuthority::Create(options, &store_, RealClock::Get());
    ASSERT_THAT(authority, IsOk());
    authority_ = *std::move(authority);
    ServerOptions server_options;
    server_options.listen = "127.0.0.1:0";
    auto server = AuthorityServer::Start(server_options, authority_.get());
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
    ClientOptions client_options;
    client_options.target = absl::StrCat("127.0.0.1:", server_->port());
    auto client = ChallengeClient::Create(client_options);
    ASSERT_THAT(client, IsOk());
    client_ = *std::move(client);
  }
  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(1));
  }

  v1::IssueChallengeResponse MustIssue(const std::string& device) {
    v1::IssueChallengeRequest request;
    request.set_device_id(device);
    auto response = client_->IssueChallenge(request);
    EXPECT_THAT(response, IsOk());
    return response.ok() ? *response : v1::IssueChallengeResponse();
  }

  InMemoryChallengeStore store_;
  std::unique_ptr<ChallengeAuthority> authority_;
  std::unique_ptr<AuthorityServer> server_;
  std::unique_ptr<ChallengeClient> client_;
};

TEST_F(ChallengeServiceTest, IssueValidateGetListRevokeRoundTrip) {
  v1::IssueChallengeRequest request;
  request.set_device_id("dev-1");
  request.set_user_id("alice");
  request.mutable_ttl()->set_seconds(600);
  request.mutable_binding()->set_common_name("dev-1.example.org");
  request.mutable_binding()->add_dns_names("dev-1.example.org");
  (*request.mutable_labels())["template"] = "wifi";
  auto issued = client_->IssueChallenge(request);
  ASSERT_THAT(issued, IsOk());
  EXPECT_THAT(issued->challenge(), MatchesRegex("[A-Z2-7]{26}"));
  EXPECT_THAT(issued->challenge_id(), MatchesRegex("[0-9a-f]{32}"));
  EXPECT_EQ(issued->kind(), v1::CHALLENGE_KIND_ONE_TIME);
  EXPECT_GT(issued->expires_at().seconds(), absl::ToUnixSeconds(absl::Now()));

  v1::GetChallengeRequest get;
  get.set_challenge_id(issued->challenge_id());
  auto info = client_->GetChallenge(get);
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->state(), v1::CHALLENGE_STATE_PENDING);
  EXPECT_EQ(info->binding().common_name(), "dev-1.example.org");
  EXPECT_EQ(info->labels().at("template"), "wifi");
  EXPECT_THAT(info->DebugString(),
              ::testing::Not(HasSubstr(issued->challenge())));

  v1::ValidateRequest validate;
  validate.set_challenge(issued->challenge());
  validate.set_transaction_id("tx-1");
  // Bound to an identity: without the CSR it is refused and not used up.
  auto verdict = client_->Validate(validate);
  ASSERT_THAT(verdict, IsOk());
  EXPECT_EQ(verdict->reason(), v1::REASON_CSR_REQUIRED);
  scepca::testing::CsrSpec spec;
  spec.common_names = {"dev-1.example.org"};
  spec.dns_names = {"dev-1.example.org"};
  spec.challenge_shape = scepca::testing::ChallengeShape::kSingle;
  spec.challenge = issued->challenge();
  absl::StatusOr<std::string> csr = scepca::testing::BuildCsrDer(spec);
  ASSERT_THAT(csr, IsOk());
  validate.set_csr(*csr);
  verdict = client_->Validate(validate);
  ASSERT_THAT(verdict, IsOk());
  EXPECT_TRUE(verdict->valid()) << verdict->message();
  EXPECT_EQ(verdict->reason(), v1::REASON_VALID);
  EXPECT_FALSE(verdict->repeat());
  EXPECT_EQ(verdict->csr().common_name(), "dev-1.example.org");
  EXPECT_EQ(verdict->csr().public_key_sha256().size(), 32u);
  EXPECT_EQ(verdict->csr().challenge_type(), "PrintableString");
  auto repeat = client_->Validate(validate);
  ASSERT_THAT(repeat, IsOk());
  EXPECT_TRUE(repeat->valid());
  EXPECT_TRUE(repeat->repeat());
  validate.set_transaction_id("tx-2");
  EXPECT_EQ(verdict->device_id(), "dev-1");
  EXPECT_EQ(verdict->user_id(), "alice");
  EXPECT_EQ(verdict->labels().at("template"), "wifi");
  EXPECT_EQ(verdict->challenge_id(), issued->challenge_id());

  verdict = client_->Validate(validate);
  ASSERT_THAT(verdict, IsOk());
  EXPECT_FALSE(verdict->valid());
  EXPECT_EQ(verdict->reason(), v1::REASON_ALREADY_USED);

  info = client_->GetChallenge(get);
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->state(), v1::CHALLENGE_STATE_USED);
  EXPECT_EQ(info->used_transaction_id(), "tx-1");

  MustIssue("dev-1");
  v1::ListChallengesRequest list;
  list.set_device_id("dev-1");
  auto page = client_->ListChallenges(list);
  ASSERT_THAT(page, IsOk());
  EXPECT_THAT(page->challenges(), SizeIs(2));

  v1::RevokeRequest revoke;
  revoke.set_device_id("dev-1");
  revoke.set_reason("wiped");
  auto revoked = client_->Revoke(revoke);
  ASSERT_THAT(revoked, IsOk());
  EXPECT_EQ(revoked->revoked_count(), 1);
}

TEST_F(ChallengeServiceTest,
       MalformedRequestsAreInvalidArgumentNamingTheField) {
  v1::IssueChallengeRequest issue;
  EXPECT_THAT(
      client_->IssueChallenge(issue),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("device_id")));
  issue.set_device_id("dev");
  issue.mutable_ttl()->set_seconds(0);
  EXPECT_THAT(client_->IssueChallenge(issue),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ttl")));
  issue.mutable_ttl()->set_seconds(24 * 3600 + 1);
  EXPECT_THAT(client_->IssueChallenge(issue),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ttl")));
  issue.mutable_ttl()->set_seconds(10);
  issue.mutable_ttl()->set_nanos(-5);
  EXPECT_THAT(client_->IssueChallenge(issue),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ttl")));
  issue.clear_ttl();
  issue.set_kind(static_cast<v1::ChallengeKind>(7));
  EXPECT_THAT(client_->IssueChallenge(issue),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("kind")));
  EXPECT_EQ(store_.RecordCountForTesting(), 0u);

  v1::ValidateRequest validate;
  EXPECT_THAT(
      client_->Validate(validate),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("challenge")));
  validate.set_challenge(std::string(10 * 1024, 'A'));
  EXPECT_THAT(
      client_->Validate(validate),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("challenge")));

  v1::RevokeRequest revoke;
  EXPECT_THAT(
      client_->Revoke(revoke),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("challenge_id")));
  v1::GetChallengeRequest get;
  get.set_challenge_id("nope");
  EXPECT_THAT(
      client_->GetChallenge(get),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("challenge_id")));
  get.set_challenge_id(std::string(32, 'f'));
  EXPECT_THAT(client_->GetChallenge(get),
              StatusIs(absl::StatusCode::kNotFound));
  v1::ListChallengesRequest list;
  EXPECT_THAT(
      client_->ListChallenges(list),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("device_id")));
}

TEST_F(ChallengeServiceTest, RefusedChallengeIsAnOkResponse) {
  v1::ValidateRequest validate;
  validate.set_challenge("AAAAAAAAAAAAAAAAAAAAAAAAAA");
  auto verdict = client_->Validate(validate);
  ASSERT_THAT(verdict, IsOk());
  EXPECT_FALSE(verdict->valid());
  EXPECT_EQ(verdict->reason(), v1::REASON_NOT_FOUND);
  validate.set_challenge("not-one-of-ours");
  verdict = client_->Validate(validate);
  ASSERT_THAT(verdict, IsOk());
  EXPECT_EQ(verdict->reason(), v1::REASON_MALFORMED);
}

TEST_F(ChallengeServiceTest, OversizedRequestIsRefusedAndServerLives) {
  v1::ValidateRequest validate;
  validate.set_challenge("AAAAAAAAAAAAAAAAAAAAAAAAAA");
  validate.set_csr(std::string(100 * 1024, 'x'));
  EXPECT_THAT(client_->Validate(validate),
              StatusIs(absl::StatusCode::kResourceExhausted));
  MustIssue("still-alive");
}

TEST_F(ChallengeServiceTest, EveryMethodOfTheServiceIsServed) {
  // The server serves each method it registered; one it forgot would hang
  // callers until their deadline. Call every method of the descriptor with
  // an empty request: each must answer (with any status) quickly.
  const google::protobuf::ServiceDescriptor* service =
      v1::ValidateRequest::descriptor()->file()->FindServiceByName(
          "ChallengeAuthority");
  ASSERT_NE(service, nullptr);
  auto channel =
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                          grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  for (int i = 0; i < service->method_count(); ++i) {
    const std::string method = absl::StrCat("/", service->full_name(), "/",
                                            service->method(i)->name());
    grpc::ClientContext context;
    // Far above any answer (even under sanitizers), far below a hang.
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    grpc::Slice empty(std::string(""));
    grpc::ByteBuffer request(&empty, 1);
    grpc::ByteBuffer response;
    grpc::Status status;
    absl::Notification done;
    stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                   [&](grpc::Status s) {
                     status = std::move(s);
                     done.Notify();
                   });
    done.WaitForNotification();
    EXPECT_NE(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
        << method;
    EXPECT_NE(status.error_code(), grpc::StatusCode::UNIMPLEMENTED) << method;
  }
}

TEST_F(ChallengeServiceTest, HealthIsServingWithTheMemoryStore) {
  EXPECT_THAT(client_->CheckHealth(), IsOkAndHolds(true));
}

TEST_F(ChallengeServiceTest, UnreachableServerIsUnavailableQuickly) {
  ClientOptions options;
  options.target = "127.0.0.1:1";
  options.deadline = absl::Seconds(2);
  auto client = ChallengeClient::Create(options);
  ASSERT_THAT(client, IsOk());
  const absl::Time start = absl::Now();
  v1::IssueChallengeRequest issue;
  issue.set_device_id("dev");
  auto r = (*client)->IssueChallenge(issue);
  EXPECT_TRUE(absl::IsUnavailable(r.status()) ||
              absl::IsDeadlineExceeded(r.status()))
      << r.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

}  // namespace
}  // namespace scepca
