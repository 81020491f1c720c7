// File: service_metrics.h
// Prometheus metrics of the gRPC service, rendered in the text exposition
// format (version 0.0.4) for /metrics.
//
// Recording is on every call's path, so it takes no lock and allocates
// nothing: methods, status codes and verdict reasons are small fixed sets,
// and every counter is a relaxed atomic in a table indexed by them. Only
// gauges (set at start-up, read at scrape time) sit behind a mutex.
#ifndef SCEPCA_SERVICE_GRPC_SERVICE_METRICS_H_
#define SCEPCA_SERVICE_GRPC_SERVICE_METRICS_H_

#include <grpcpp/support/status.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/core/challenge_authority.h"
#include "service/grpc/authorizer.h"

namespace scepca {

// Thread-safe.
class ServiceMetrics {
 public:
  // Latency histogram bounds, in seconds.
  static constexpr std::array<double, 12> kBuckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
      0.05,   0.1,   0.25,   0.5,   1.0,  2.5};

  // Counts one RPC of `method` that ended with `code`.
  void RecordCall(Method method, grpc::StatusCode code, absl::Duration latency);
  // Counts a Validate verdict by reason.
  void RecordValidation(Reason reason);
  // Counts a call of `method` that failed because the store did not answer.
  void RecordStoreError(Method method);

  // Gauges computed at scrape time (may be unset).
  void SetGauge(const std::string& name, const std::string& help,
                std::function<double()> value);

  // The whole exposition text.
  std::string Render() const;

  // Snapshots: "Method/CODE" -> calls, and reason name -> verdicts (only
  // what was counted at least once).
  std::map<std::string, uint64_t> CallCounts() const;
  std::map<std::string, uint64_t> ValidationCounts() const;
  // The value of gauge `name`, or -1 if there is none.
  double GaugeValue(const std::string& name) const;

 private:
  static constexpr int kMethods = static_cast<int>(Method::kGetStats) + 1;
  static constexpr int kCodes = 17;  // gRPC status codes 0..16.
  static constexpr int kReasons = static_cast<int>(Reason::kCsrRequired) + 1;

  struct MethodStats {
    std::array<std::atomic<uint64_t>, kCodes> calls{};
    std::array<std::atomic<uint64_t>, kBuckets.size()> buckets{};
    std::atomic<uint64_t> count{0};
    std::atomic<uint64_t> sum_nanos{0};
    std::atomic<uint64_t> store_errors{0};
  };

  std::array<MethodStats, kMethods> methods_{};
  std::array<std::atomic<uint64_t>, kReasons> validations_{};

  mutable absl::Mutex mu_;
  std::map<std::string, std::pair<std::string, std::function<double()>>> gauges_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace scepca

#endif  // SCEPCA_SERVICE_GRPC_SERVICE_METRICS_H_
