#include "service/redis/redis_outstanding_counter.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "service/core/log.h"
#include "service/core/status_macros.h"
#include "service/redis/redis_connection.h"

namespace scepca {

absl::StatusOr<std::unique_ptr<RedisOutstandingCounter>>
RedisOutstandingCounter::Start(RedisChallengeStore* store,
                               absl::Duration interval) {
  if (interval < absl::Milliseconds(100)) {
    return absl::InvalidArgumentError(
        "the outstanding count interval must be at least 100ms");
  }
  std::unique_ptr<RedisOutstandingCounter> counter(
      new RedisOutstandingCounter(store, interval));
  counter->thread_ = std::thread([c = counter.get()] { c->Run(); });
  return counter;
}

RedisOutstandingCounter::RedisOutstandingCounter(RedisChallengeStore* store,
                                                 absl::Duration interval)
    : store_(store),
      interval_(interval),
      lease_key_(absl::StrCat(store->prefix(), "stats:{outstanding}:lease")),
      result_key_(absl::StrCat(store->prefix(), "stats:{outstanding}")) {}

RedisOutstandingCounter::~RedisOutstandingCounter() {
  stop_.Notify();
  thread_.join();
}

absl::optional<RedisOutstandingCounter::Count> RedisOutstandingCounter::Latest()
    const {
  absl::MutexLock lock(&mu_);
  return latest_;
}

absl::Status RedisOutstandingCounter::Tick() {
  RedisBackend& backend = store_->backend();
  const std::string interval_ms =
      absl::StrCat(std::max<int64_t>(1, absl::ToInt64Milliseconds(interval_)));
  SCEPCA_ASSIGN_OR_RETURN(
      RedisReply lease,
      KeyCommand(backend, lease_key_,
                 {"SET", lease_key_, "1", "NX", "PX", interval_ms}));
  if (lease.is_status("OK")) {
    const absl::Time now = absl::Now();
    absl::StatusOr<int64_t> pending = store_->CountPending(now);
    if (!pending.ok()) {
      // Let another instance try at once rather than after the interval.
      KeyCommand(backend, lease_key_, {"DEL", lease_key_}).IgnoreError();
      return pending.status();
    }
    ++counts_;
    const std::string value =
        absl::StrCat(*pending, " ", absl::ToUnixMicros(now));
    const std::string keep_ms = absl::StrCat(
        std::max<int64_t>(1, 3 * absl::ToInt64Milliseconds(interval_)));
    SCEPCA_RETURN_IF_ERROR(
        KeyCommand(backend, result_key_,
                   {"SET", result_key_, value, "PX", keep_ms})
            .status());
  }
  SCEPCA_ASSIGN_OR_RETURN(
      RedisReply published,
      KeyCommand(backend, result_key_, {"GET", result_key_}));
  if (!published.is_string()) return absl::OkStatus();  // None yet.
  std::vector<absl::string_view> parts =
      absl::StrSplit(published.str, ' ', absl::SkipEmpty());
  int64_t pending = 0, at = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &pending) ||
      !absl::SimpleAtoi(parts[1], &at)) {
    return absl::InternalError(
        absl::StrCat(result_key_, " in Redis is malformed"));
  }
  absl::MutexLock lock(&mu_);
  latest_ = Count{pending, absl::FromUnixMicros(at)};
  return absl::OkStatus();
}

void RedisOutstandingCounter::Run() {
  int failures = 0;
  do {
    absl::Status status = Tick();
    if (!status.ok()) {
      if (failures++ % 20 == 0) {
        LogWarning(absl::StrCat("cannot count outstanding challenges: ",
                                status.message()));
      }
    } else {
      failures = 0;
    }
  } while (!stop_.WaitForNotificationWithTimeout(interval_ / 4));
}

}  // namespace scepca
