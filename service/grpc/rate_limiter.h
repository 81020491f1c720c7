// File: rate_limiter.h
// Per-caller token buckets: each caller (principal name, or the peer's
// address when there is no authz file) may make `rate` calls a second with
// bursts of `burst`.
#ifndef SCEPCA_SERVICE_GRPC_RATE_LIMITER_H_
#define SCEPCA_SERVICE_GRPC_RATE_LIMITER_H_

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace scepca {

// Thread-safe. Memory is bounded: buckets idle for a minute are dropped.
class RateLimiter {
 public:
  RateLimiter(double rate, double burst) : rate_(rate), burst_(burst) {}

  // Takes one token from `caller`'s bucket; false if it is empty.
  bool Allow(absl::string_view caller, absl::Time now);

  double rate() const { return rate_; }

 private:
  struct Bucket {
    double tokens;
    absl::Time updated;
  };
  const double rate_;
  const double burst_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
  absl::Time last_sweep_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

// The caller key of a gRPC peer string ("ipv4:127.0.0.1:51234" ->
// "ipv4:127.0.0.1"): the port changes per connection.
std::string PeerHost(absl::string_view peer);

}  // namespace scepca

#endif  // SCEPCA_SERVICE_GRPC_RATE_LIMITER_H_
