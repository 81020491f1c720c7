#include "service/grpc/service_metrics.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace scepca {
namespace {

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

}  // namespace

void ServiceMetrics::RecordCall(const std::string& method,
                                const std::string& code,
                                absl::Duration latency) {
  const double seconds = absl::ToDoubleSeconds(latency);
  absl::MutexLock lock(&mu_);
  ++calls_[{method, code}];
  Histogram& h = latency_[method];
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) ++h.buckets[i];
  }
  ++h.count;
  h.sum += seconds;
}

void ServiceMetrics::RecordValidation(const std::string& reason) {
  absl::MutexLock lock(&mu_);
  ++validations_[reason];
}

void ServiceMetrics::RecordStoreError(const std::string& operation) {
  absl::MutexLock lock(&mu_);
  ++store_errors_[operation];
}

void ServiceMetrics::SetGauge(const std::string& name, const std::string& help,
                              std::function<double()> value) {
  absl::MutexLock lock(&mu_);
  gauges_[name] = {help, std::move(value)};
}

std::map<std::string, uint64_t> ServiceMetrics::CallCounts() const {
  absl::MutexLock lock(&mu_);
  std::map<std::string, uint64_t> out;
  for (const auto& [key, n] : calls_) {
    out[absl::StrCat(key.first, "/", key.second)] = n;
  }
  return out;
}

std::map<std::string, uint64_t> ServiceMetrics::ValidationCounts() const {
  absl::MutexLock lock(&mu_);
  return validations_;
}

double ServiceMetrics::GaugeValue(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = gauges_.find(name);
  return it == gauges_.end() ? -1 : it->second.second();
}

std::string ServiceMetrics::Render() const {
  absl::MutexLock lock(&mu_);
  std::string out;
  absl::StrAppend(&out,
                  "# HELP scepca_up 1 while the process serves.\n"
                  "# TYPE scepca_up gauge\nscepca_up 1\n");
  absl::StrAppend(&out,
                  "# HELP scepca_rpc_requests_total gRPC calls by method and "
                  "status code.\n# TYPE scepca_rpc_requests_total counter\n");
  for (const auto& [key, n] : calls_) {
    absl::StrAppend(&out, "scepca_rpc_requests_total{method=\"",
                    Label(key.first), "\",code=\"", Label(key.second), "\"} ",
                    n, "\n");
  }
  absl::StrAppend(&out,
                  "# HELP scepca_rpc_latency_seconds gRPC call latency.\n"
                  "# TYPE scepca_rpc_latency_seconds histogram\n");
  for (const auto& [method, h] : latency_) {
    for (size_t i = 0; i < kBuckets.size(); ++i) {
      absl::StrAppend(&out, "scepca_rpc_latency_seconds_bucket{method=\"",
                      Label(method), "\",le=\"", Number(kBuckets[i]), "\"} ",
                      h.buckets[i], "\n");
    }
    absl::StrAppend(&out, "scepca_rpc_latency_seconds_bucket{method=\"",
                    Label(method), "\",le=\"+Inf\"} ", h.count, "\n");
    absl::StrAppend(&out, "scepca_rpc_latency_seconds_sum{method=\"",
                    Label(method), "\"} ", Number(h.sum), "\n");
    absl::StrAppend(&out, "scepca_rpc_latency_seconds_count{method=\"",
                    Label(method), "\"} ", h.count, "\n");
  }
  absl::StrAppend(&out,
                  "# HELP scepca_validations_total Validate verdicts by "
                  "reason.\n# TYPE scepca_validations_total counter\n");
  for (const auto& [reason, n] : validations_) {
    absl::StrAppend(&out, "scepca_validations_total{reason=\"", Label(reason),
                    "\"} ", n, "\n");
  }
  absl::StrAppend(&out,
                  "# HELP scepca_store_errors_total Calls that failed "
                  "because the store did not answer.\n"
                  "# TYPE scepca_store_errors_total counter\n");
  for (const auto& [op, n] : store_errors_) {
    absl::StrAppend(&out, "scepca_store_errors_total{operation=\"", Label(op),
                    "\"} ", n, "\n");
  }
  for (const auto& [name, gauge] : gauges_) {
    absl::StrAppend(&out, "# HELP ", name, " ", gauge.first, "\n# TYPE ", name,
                    " gauge\n", name, " ", Number(gauge.second()), "\n");
  }
  return out;
}

}  // namespace scepca
