#include "service/grpc/service_metrics.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace scepca {
namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;

std::string Label(absl::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

std::string Number(double v) { return absl::StrFormat("%.17g", v); }

std::string CodeName(int code) {
  std::string name =
      absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  return name.empty() ? "UNKNOWN" : name;
}

}  // namespace

void ServiceMetrics::RecordCall(Method method, grpc::StatusCode code,
                                absl::Duration latency) {
  const int m = static_cast<int>(method);
  const int c = static_cast<int>(code);
  if (m < 0 || m >= kMethods) return;
  MethodStats& stats = methods_[m];
  stats.calls[c >= 0 && c < kCodes ? c : static_cast<int>(grpc::UNKNOWN)]
      .fetch_add(1, kRelaxed);
  // One bucket per call (the first bound at or above its latency); Render()
  // makes them cumulative. Beyond the last bound it counts only in +Inf.
  const double seconds = absl::ToDoubleSeconds(latency);
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) {
      stats.buckets[i].fetch_add(1, kRelaxed);
      break;
    }
  }
  stats.count.fetch_add(1, kRelaxed);
  stats.sum_nanos.fetch_add(static_cast<uint64_t>(std::max<int64_t>(
                                0, absl::ToInt64Nanoseconds(latency))),
                            kRelaxed);
}

void ServiceMetrics::RecordValidation(Reason reason) {
  const int r = static_cast<int>(reason);
  if (r >= 0 && r < kReasons) validations_[r].fetch_add(1, kRelaxed);
}

void ServiceMetrics::RecordStoreError(Method method) {
  const int m = static_cast<int>(method);
  if (m >= 0 && m < kMethods) methods_[m].store_errors.fetch_add(1, kRelaxed);
}

void ServiceMetrics::SetGauge(const std::string& name, const std::string& help,
                              std::function<double()> value) {
  absl::MutexLock lock(&mu_);
  gauges_[name] = {help, std::move(value)};
}

std::map<std::string, uint64_t> ServiceMetrics::CallCounts() const {
  std::map<std::string, uint64_t> out;
  for (int m = 0; m < kMethods; ++m) {
    for (int c = 0; c < kCodes; ++c) {
      const uint64_t n = methods_[m].calls[c].load(kRelaxed);
      if (n == 0) continue;
      out[absl::StrCat(MethodName(static_cast<Method>(m)), "/", CodeName(c))] =
          n;
    }
  }
  return out;
}

std::map<std::string, uint64_t> ServiceMetrics::ValidationCounts() const {
  std::map<std::string, uint64_t> out;
  for (int r = 0; r < kReasons; ++r) {
    const uint64_t n = validations_[r].load(kRelaxed);
    if (n > 0) out[std::string(ReasonName(static_cast<Reason>(r)))] = n;
  }
  return out;
}

double ServiceMetrics::GaugeValue(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = gauges_.find(name);
  return it == gauges_.end() ? -1 : it->second.second();
}

std::string ServiceMetrics::Render() const {
  std::string out;
  absl::StrAppend(&out,
                  "# HELP scepca_up 1 while the process serves.\n"
                  "# TYPE scepca_up gauge\nscepca_up 1\n");
  absl::StrAppend(&out,
                  "# HELP scepca_rpc_requests_total gRPC calls by method and "
                  "status code.\n# TYPE scepca_rpc_requests_total counter\n");
  for (int m = 0; m < kMethods; ++m) {
    const std::string method = Label(MethodName(static_cast<Method>(m)));
    for (int c = 0; c < kCodes; ++c) {
      const uint64_t n = methods_[m].calls[c].load(kRelaxed);
      if (n == 0) continue;
      absl::StrAppend(&out, "scepca_rpc_requests_total{method=\"", method,
                      "\",code=\"", CodeName(c), "\"} ", n, "\n");
    }
  }
  absl::StrAppend(&out,
                  "# HELP scepca_rpc_latency_seconds gRPC call latency.\n"
                  "# TYPE scepca_rpc_latency_seconds histogram\n");
  for (int m = 0; m < kMethods; ++m) {
    const MethodStats& h = methods_[m];
    uint64_t count = h.count.load(kRelaxed);
    if (count == 0) continue;
    const std::string method = Label(MethodName(static_cast<Method>(m)));
    uint64_t cumulative = 0;
    for (size_t i = 0; i < kBuckets.size(); ++i) {
      cumulative += h.buckets[i].load(kRelaxed);
      absl::StrAppend(&out, "scepca_rpc_latency_seconds_bucket{method=\"",
                      method, "\",le=\"", Number(kBuckets[i]), "\"} ",
                      cumulative, "\n");
    }
    // Counters are read one by one while calls go on: keep +Inf (the count)
    // at least the last bucket, as Prometheus requires.
    count = std::max(count, cumulative);
    absl::StrAppend(&out, "scepca_rpc_latency_seconds_bucket{method=\"", method,
                    "\",le=\"+Inf\"} ", count, "\n");
    absl::StrAppend(
        &out, "scepca_rpc_latency_seconds_sum{method=\"", method, "\"} ",
        Number(static_cast<double>(h.sum_nanos.load(kRelaxed)) / 1e9), "\n");
    absl::StrAppend(&out, "scepca_rpc_latency_seconds_count{method=\"", method,
                    "\"} ", count, "\n");
  }
  absl::StrAppend(&out,
                  "# HELP scepca_validations_total Validate verdicts by "
                  "reason.\n# TYPE scepca_validations_total counter\n");
  for (const auto& [reason, n] : ValidationCounts()) {
    absl::StrAppend(&out, "scepca_validations_total{reason=\"", Label(reason),
                    "\"} ", n, "\n");
  }
  absl::StrAppend(&out,
                  "# HELP scepca_store_errors_total Calls that failed "
                  "because the store did not answer.\n"
                  "# TYPE scepca_store_errors_total counter\n");
  for (int m = 0; m < kMethods; ++m) {
    const uint64_t n = methods_[m].store_errors.load(kRelaxed);
    if (n == 0) continue;
    absl::StrAppend(&out, "scepca_store_errors_total{operation=\"",
                    Label(MethodName(static_cast<Method>(m))), "\"} ", n, "\n");
  }
  absl::MutexLock lock(&mu_);
  for (const auto& [name, gauge] : gauges_) {
    absl::StrAppend(&out, "# HELP ", name, " ", gauge.first, "\n# TYPE ", name,
                    " gauge\n", name, " ", Number(gauge.second()), "\n");
  }
  return out;
}

}  // namespace scepca
