#include "service/grpc/rate_limiter.h"

#include <algorithm>

namespace scepca {

bool RateLimiter::Allow(absl::string_view caller, absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (now - last_sweep_ > absl::Minutes(1)) {
    absl::erase_if(buckets_, [now](const auto& entry) {
      return now - entry.second.updated > absl::Minutes(1);
    });
    last_sweep_ = now;
  }
  auto [it, inserted] = buckets_.try_emplace(caller, Bucket{burst_, now});
  Bucket& b = it->second;
  if (!inserted) {
    b.tokens = std::min(
        burst_, b.tokens + absl::ToDoubleSeconds(now - b.updated) * rate_);
    b.updated = now;
  }
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  return true;
}

std::string PeerHost(absl::string_view peer) {
  const size_t colon = peer.rfind(':');
  const size_t first = peer.find(':');
  if (colon == absl::string_view::npos || colon == first) {
    return std::string(peer);
  }
  return std::string(peer.substr(0, colon));
}

}  // namespace scepca
