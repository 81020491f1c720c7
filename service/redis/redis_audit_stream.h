// File: redis_audit_stream.h
// The audit trail in a capped Redis Stream, so that every instance of a
// fleet appends to one trail (--audit-redis-stream).
//
// Record() only queues the entry: a background thread appends queued entries
// with pipelined XADD ... MAXLEN ~ N, up to a batch at a time, so an RPC never
// waits for Redis. While Redis is unreachable the queue keeps up to
// queue_capacity entries and the thread retries with backoff; beyond that new
// entries are dropped and counted (dropped()), and the file or stdout trail
// (--audit-log) stays complete. Delivery is at least once: a batch whose
// connection broke is sent again, so an entry may appear twice; each carries
// the writer's instance id and a sequence number, which tell duplicates apart.
//
// Each stream entry has the fields
//   instance  random id of this process (hex), stable while it runs
//   seq       1, 2, 3, ... per instance
//   method, outcome, caller, challenge_id, device_id, user_id,
//   transaction_id  as in the JSON (empty ones left out)
//   json      the whole entry as the one-line JSON of --audit-log
// Read it with e.g. `XREVRANGE scep:audit + - COUNT 20`.
#ifndef SCEPCA_SERVICE_REDIS_REDIS_AUDIT_STREAM_H_
#define SCEPCA_SERVICE_REDIS_REDIS_AUDIT_STREAM_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/core/audit_log.h"
#include "service/redis/redis_backend.h"

namespace scepca {

struct RedisAuditStreamOptions {
  // The stream's key, e.g. "scep:audit" (the store's prefix + "audit").
  std::string key;
  // XADD's MAXLEN ~: Redis trims whole macro nodes, so the stream holds at
  // least this many entries and a little more.
  int64_t max_length = 1000000;
  // Entries waiting for Redis; more are dropped (and counted).
  size_t queue_capacity = 100000;
  // Entries per pipeline.
  size_t batch_size = 256;
  // Backoff between attempts while Redis fails: doubles up to this.
  absl::Duration max_backoff = absl::Seconds(2);
  // How long the destructor keeps trying to deliver what is queued.
  absl::Duration flush_on_close = absl::Seconds(2);
};

// Thread-safe.
class RedisAuditStream final : public AuditSink {
 public:
  // `backend` must outlive the stream. Starts the writer thread. Returns
  // kInvalidArgument for an empty key or non-positive limits.
  static absl::StatusOr<std::unique_ptr<RedisAuditStream>> Start(
      RedisBackend* backend, RedisAuditStreamOptions options);
  // Delivers what it can within options.flush_on_close, then stops.
  ~RedisAuditStream() override;
  RedisAuditStream(const RedisAuditStream&) = delete;
  RedisAuditStream& operator=(const RedisAuditStream&) = delete;

  void Record(const AuditEntry& entry) override;

  // Waits until every entry recorded before the call was written (true), or
  // `timeout` passed (false).
  bool Flush(absl::Duration timeout);

  const std::string& instance() const { return instance_; }
  uint64_t written() const { return written_.load(); }
  uint64_t dropped() const { return dropped_.load(); }
  uint64_t failed_attempts() const { return failed_attempts_.load(); }

 private:
  RedisAuditStream(RedisBackend* backend, RedisAuditStreamOptions options,
                   std::string instance);
  void Run();
  // An XADD's whole argv, owned (RedisArgs are views).
  using Command = std::vector<std::string>;
  // Appends `batch`; returns OK once Redis has them all.
  absl::Status Write(const std::vector<Command>& batch);

  RedisBackend* const backend_;
  const RedisAuditStreamOptions options_;
  const std::string instance_;
  const std::string max_length_text_;

  absl::Mutex mu_;
  std::deque<Command> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  // Sequence number of the last entry written (entries are written in order).
  uint64_t written_seq_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time give_up_at_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();

  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> failed_attempts_{0};
  std::thread thread_;
};

}  // namespace scepca

#endif  // SCEPCA_SERVICE_REDIS_REDIS_AUDIT_STREAM_H_
