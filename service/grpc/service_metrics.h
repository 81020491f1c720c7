// File: service_metrics.h
// Prometheus metrics of the gRPC service, rendered in the text exposition
// format (version 0.0.4) for /metrics.
#ifndef SCEPCA_SERVICE_GRPC_SERVICE_METRICS_H_
#define SCEPCA_SERVICE_GRPC_SERVICE_METRICS_H_

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

namespace scepca {

// Thread-safe.
class ServiceMetrics {
 public:
  // Latency histogram bounds, in seconds.
  static constexpr std::array<double, 12> kBuckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
      0.05,   0.1,   0.25,   0.5,   1.0,  2.5};

  // Counts one RPC of `method` that ended with gRPC code `code` (e.g. "OK").
  void RecordCall(const std::string& method, const std::string& code,
                  absl::Duration latency);
  // Counts a Validate verdict by reason ("valid", "already_used", ...).
  void RecordValidation(const std::string& reason);
  // Counts a store error of an operation ("Validate", ...).
  void RecordStoreError(const std::string& operation);

  // Gauges computed at scrape time (may be unset).
  void SetGauge(const std::string& name, const std::string& help,
                std::function<double()> value);

  // The whole exposition text.
  std::string Render() const;

  // Snapshots: "method/code" -> calls, and reason -> verdicts.
  std::map<std::string, uint64_t> CallCounts() const;
  std::map<std::string, uint64_t> ValidationCounts() const;
  // The value of gauge `name`, or -1 if there is none.
  double GaugeValue(const std::string& name) const;

 private:
  struct Histogram {
    std::array<uint64_t, kBuckets.size()> buckets{};
    uint64_t count = 0;
    double sum = 0;
  };
  mutable absl::Mutex mu_;
  std::map<std::pair<std::string, std::string>, uint64_t> calls_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, Histogram> latency_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> validations_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> store_errors_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::pair<std::string, std::function<double()>>> gauges_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace scepca

#endif  // SCEPCA_SERVICE_GRPC_SERVICE_METRICS_H_
