#include "service/http/jamf_webhook.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/base64.h"
#include "tests/http/http_test_util.h"
#include "tests/testing/status_matchers.h"

namespace scepca::testing {
namespace {

using ::testing::MatchesRegex;

// Fleet's GetSmallstepSCEPChallenge body: json.Encoder, so a trailing "\n".
std::string FleetBody(const std::string& payload_identifier) {
  return absl::StrCat(
      "{\"webhook\":{\"webhookEvent\":\"SCEPChallenge\",\"id\":1,"
      "\"eventTimestamp\":1757435578,\"name\":\"SCEPChallenge\"},\"event\":{"
      "\"scepServerUrl\":\"https://scep.example.com/scep\","
      "\"payloadIdentifier\":\"",
      payload_identifier,
      "\",\"payloadTypes\":[\"com.apple.security.scep\"]}}\n");
}

class JamfEndpointTest : public HttpServerTest {
 protected:
  void SetUp() override {
    HttpServerTest::SetUp();
    ASSERT_NO_FATAL_FAILURE(StartServer());
  }

  httplib::Result Post(const std::string& body, const std::string& user,
                       const std::string& password) {
    httplib::Client client = Client();
    if (!user.empty()) client.set_basic_auth(user.c_str(), password.c_str());
    return client.Post("/jamf/scepchallenge", body, "application/json");
  }
};

TEST_F(JamfEndpointTest, FleetRequestGetsTheBareChallengeWhichValidates) {
  const std::string uuid = "CDB0BC64-F3EB-4B1A-AA5E-9A5D994CA593";
  httplib::Result r = Post(FleetBody(uuid), "fleet", kFleetPassword);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/plain");
  EXPECT_EQ(r->get_header_value("Cache-Control"), "no-store");
  // The whole body is the challenge: no quotes, no JSON, no newline.
  EXPECT_THAT(r->body, MatchesRegex("[A-Z2-7]{26}"));
  ValidateRequest request;
  request.challenge = r->body;
  absl::StatusOr<Verdict> verdict = authority_->Validate(request);
  ASSERT_THAT(verdict, IsOk());
  EXPECT_TRUE(verdict->valid) << verdict->message;
  ASSERT_TRUE(verdict->record.has_value());
  EXPECT_EQ(verdict->record->device_id, absl::StrCat("jamf:fleet:", uuid));
  EXPECT_EQ(verdict->record->user_id, "alice");
  EXPECT_EQ(verdict->record->labels.at("template"), "wifi");
}

TEST_F(JamfEndpointTest, RawGoRequestBodyIsExact) {
  // What Go's client sends on the Basic retry, gzip accepted.
  const std::string body = FleetBody("8B1C2D3E-0000-4000-8000-000000000001");
  const std::string request = absl::StrCat(
      "POST /jamf/scepchallenge HTTP/1.1\r\nHost: 127.0.0.1:", server_->port(),
      "\r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: ", body.size(),
      "\r\nAuthorization: Basic ",
      Base64Encode(absl::StrCat("fleet:", kFleetPassword)),
      "\r\nAccept-Encoding: gzip\r\n\r\n", body);
  absl::StatusOr<RawResponse> r = RawHttpExchange(server_->port(), request);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->status, 200);
  EXPECT_THAT(r->body, MatchesRegex("[A-Z2-7]{26}"));
}

TEST_F(JamfEndpointTest, AnonymousFirstTryGets401WithBasic) {
  httplib::Result r = Post(FleetBody("x"), "", "");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(r->get_header_value("WWW-Authenticate"),
            "Basic realm=\"SCEP Challenge Authority\"");
}

TEST_F(JamfEndpointTest, BadPasswordGets401) {
  httplib::Result r = Post(FleetBody("x"), "fleet", "wrong-password-1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
}

TEST_F(JamfEndpointTest, AccountWithoutIssueGets403) {
  httplib::Result r = Post(FleetBody("x"), "viewer", kViewerPassword);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403);
}

TEST_F(JamfEndpointTest, BodyThatIsNotTheWebhookGets400) {
  for (const std::string& body :
       {std::string(""), std::string("challenge please"),
        std::string("{\"webhook\":{\"webhookEvent\":\"ComputerAdded\"}}"),
        std::string("{\"webhook\":{\"id\":\"one\"}}")}) {
    httplib::Result r = Post(body, "fleet", kFleetPassword);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << body;
  }
}

TEST_F(JamfEndpointTest, MinimalBodyUsesTheAccountAsDevice) {
  httplib::Result r = Post("{}", "fleet", kFleetPassword);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  ValidateRequest request;
  request.challenge = r->body;
  absl::StatusOr<Verdict> verdict = authority_->Validate(request);
  ASSERT_THAT(verdict, IsOk());
  ASSERT_TRUE(verdict->record.has_value());
  EXPECT_EQ(verdict->record->device_id, "jamf:fleet");
  EXPECT_EQ(JamfDeviceId("a", ""), "jamf:a");
  EXPECT_EQ(JamfDeviceId("a", "p"), "jamf:a:p");
}

}  // namespace
}  // namespace scepca::testing
