#include "service/grpc/service_metrics.h"

#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace scepca {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;

TEST(ServiceMetricsTest, CountsCallsByMethodAndCode) {
  ServiceMetrics metrics;
  metrics.RecordCall(Method::kValidate, grpc::StatusCode::OK,
                     absl::Microseconds(300));
  metrics.RecordCall(Method::kValidate, grpc::StatusCode::OK,
                     absl::Milliseconds(3));
  metrics.RecordCall(Method::kIssueChallenge,
                     grpc::StatusCode::INVALID_ARGUMENT, absl::Seconds(10));
  EXPECT_THAT(metrics.CallCounts(),
              ElementsAre(Pair("IssueChallenge/INVALID_ARGUMENT", 1),
                          Pair("Validate/OK", 2)));
  const std::string text = metrics.Render();
  EXPECT_THAT(text, HasSubstr("scepca_rpc_requests_total{method=\"Validate\","
                              "code=\"OK\"} 2\n"));
  EXPECT_THAT(text,
              HasSubstr("scepca_rpc_requests_total{method=\""
                        "IssueChallenge\",code=\"INVALID_ARGUMENT\"} 1\n"));
  // Nothing for methods never called.
  EXPECT_THAT(text, Not(HasSubstr("method=\"Revoke\"")));
}

TEST(ServiceMetricsTest, HistogramIsCumulative) {
  ServiceMetrics metrics;
  metrics.RecordCall(Method::kValidate, grpc::StatusCode::OK,
                     absl::Microseconds(300));  // <= 0.0005
  metrics.RecordCall(Method::kValidate, grpc::StatusCode::OK,
                     absl::Milliseconds(3));  // <= 0.005
  metrics.RecordCall(Method::kValidate, grpc::StatusCode::OK,
                     absl::Seconds(5));  // only +Inf
  const std::string text = metrics.Render();
  const std::string prefix =
      "scepca_rpc_latency_seconds_bucket{method=\"Validate\",le=\"";
  EXPECT_THAT(text, HasSubstr(prefix + "0.00050000000000000001\"} 1\n"));
  EXPECT_THAT(text, HasSubstr(prefix + "0.0025000000000000001\"} 1\n"));
  EXPECT_THAT(text, HasSubstr(prefix + "0.0050000000000000001\"} 2\n"));
  EXPECT_THAT(text, HasSubstr(prefix + "2.5\"} 2\n"));
  EXPECT_THAT(text, HasSubstr(prefix + "+Inf\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("scepca_rpc_latency_seconds_count{method=\""
                              "Validate\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("scepca_rpc_latency_seconds_sum{method=\""
                              "Validate\"} 5.0033"));
}

TEST(ServiceMetricsTest, CountsVerdictsStoreErrorsAndGauges) {
  ServiceMetrics metrics;
  metrics.RecordValidation(Reason::kValid);
  metrics.RecordValidation(Reason::kAlreadyUsed);
  metrics.RecordValidation(Reason::kAlreadyUsed);
  metrics.RecordStoreError(Method::kValidate);
  metrics.SetGauge("scepca_outstanding_challenges", "Pending challenges.",
                   [] { return 7.0; });
  EXPECT_THAT(metrics.ValidationCounts(),
              ElementsAre(Pair("already_used", 2), Pair("valid", 1)));
  EXPECT_EQ(metrics.GaugeValue("scepca_outstanding_challenges"), 7.0);
  EXPECT_EQ(metrics.GaugeValue("nope"), -1);
  const std::string text = metrics.Render();
  EXPECT_THAT(text,
              HasSubstr("scepca_validations_total{reason=\"already_used\"} 2"));
  EXPECT_THAT(text, HasSubstr("scepca_store_errors_total{operation=\""
                              "Validate\"} 1"));
  EXPECT_THAT(text, HasSubstr("# TYPE scepca_outstanding_challenges gauge\n"
                              "scepca_outstanding_challenges 7\n"));
}

TEST(ServiceMetricsTest, ConcurrentRecordingLosesNothing) {
  ServiceMetrics metrics;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        metrics.RecordCall(Method::kIssueChallenge, grpc::StatusCode::OK,
                           absl::Microseconds(100));
        metrics.RecordValidation(Reason::kValid);
      }
    });
  }
  // Scrapes meanwhile stay well-formed.
  for (int i = 0; i < 20; ++i) {
    EXPECT_THAT(metrics.Render(), HasSubstr("scepca_up 1"));
  }
  for (std::thread& t : threads) t.join();
  EXPECT_THAT(metrics.CallCounts(),
              ElementsAre(Pair("IssueChallenge/OK", 80000)));
  EXPECT_THAT(metrics.ValidationCounts(), ElementsAre(Pair("valid", 80000)));
}

}  // namespace
}  // namespace scepca
