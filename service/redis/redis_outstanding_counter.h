// File: redis_outstanding_counter.h
// The scepca_outstanding_challenges gauge for a Redis store.
//
// Counting pending challenges in Redis is a scan of every record
// (RedisChallengeStore::CountPending), far too costly per scrape or per
// request. So the fleet counts periodically and shares the result:
//   - every `interval`, one instance wins a lease (SET NX PX on
//     <prefix>stats:{outstanding}:lease) and counts; it publishes
//     "<count> <unix µs>" in <prefix>stats:{outstanding} (kept 3 intervals);
//   - every instance reads the published count every interval / 4 and serves
//     it from memory, with the time it was counted.
// A fleet of any size thus scans Redis once per interval.
#ifndef SCEPCA_SERVICE_REDIS_REDIS_OUTSTANDING_COUNTER_H_
#define SCEPCA_SERVICE_REDIS_REDIS_OUTSTANDING_COUNTER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "service/redis/redis_challenge_store.h"

namespace scepca {

// Thread-safe.
class RedisOutstandingCounter {
 public:
  struct Count {
    int64_t pending = 0;
    absl::Time counted_at;
  };

  // `store` must outlive the counter. Starts its thread, which counts or
  // reads at once. Returns kInvalidArgument for an interval under 100 ms.
  static absl::StatusOr<std::unique_ptr<RedisOutstandingCounter>> Start(
      RedisChallengeStore* store, absl::Duration interval);
  ~RedisOutstandingCounter();
  RedisOutstandingCounter(const RedisOutstandingCounter&) = delete;
  RedisOutstandingCounter& operator=(const RedisOutstandingCounter&) = delete;

  // The newest count any instance published, or nullopt (none yet, or
  // Redis unreachable since start).
  absl::optional<Count> Latest() const;
  // How many times this instance counted (won the lease).
  int64_t counts() const { return counts_.load(); }

  // One round (lease, maybe count, read): what the thread does each
  // interval / 4.
  absl::Status Tick();

 private:
  RedisOutstandingCounter(RedisChallengeStore* store, absl::Duration interval);
  void Run();

  RedisChallengeStore* const store_;
  const absl::Duration interval_;
  const std::string lease_key_;
  const std::string result_key_;
  mutable absl::Mutex mu_;
  absl::optional<Count> latest_ ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t> counts_{0};
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace scepca

#endif  // SCEPCA_SERVICE_REDIS_REDIS_OUTSTANDING_COUNTER_H_
