// File: audit_log.h
// The audit trail: one JSON object per line for each decision (issue,
// validate, revoke, notify, ...). Never a challenge, a token or a key.
#ifndef SCEPCA_SERVICE_CORE_AUDIT_LOG_H_
#define SCEPCA_SERVICE_CORE_AUDIT_LOG_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace scepca {

struct AuditEntry {
  absl::Time time;
  std::string caller;  // Principal name, or "anonymous".
  std::string peer;    // Network peer, e.g. "ipv4:127.0.0.1:50122".
  std::string method;  // "Validate", ...
  std::string challenge_id;
  std::string device_id;
  std::string user_id;
  std::string transaction_id;
  std::string outcome;  // "ok", "valid", "denied", or a status code name.
  std::string reason;   // Validate's reason, or the error message.
  int64_t count = -1;   // Revoke: how many; -1 when not applicable.
  absl::Duration latency;
};

// Returns the entry as one line of JSON (with the trailing newline).
std::string AuditJson(const AuditEntry& entry);

// Where audit entries go. Implementations are thread-safe and must not block
// a call for long: Record() runs on every RPC's path.
class AuditSink {
 public:
  virtual ~AuditSink() = default;
  virtual void Record(const AuditEntry& entry) = 0;
};

// Records every entry in each of `sinks` (which must outlive it), in order.
class AuditTee final : public AuditSink {
 public:
  explicit AuditTee(std::vector<AuditSink*> sinks) : sinks_(std::move(sinks)) {}
  void Record(const AuditEntry& entry) override {
    for (AuditSink* sink : sinks_) sink->Record(entry);
  }

 private:
  const std::vector<AuditSink*> sinks_;
};

// Appends entries to a file (O_APPEND: several processes may share it) or
// to stdout. Thread-safe.
class AuditLog final : public AuditSink {
 public:
  // `path` "-" is stdout. Returns kInvalidArgument if it cannot be opened.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(
      const std::string& path);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  void Record(const AuditEntry& entry) override;

 private:
  explicit AuditLog(int fd, bool owned) : fd_(fd), owned_(owned) {}
  absl::Mutex mu_;
  const int fd_;
  const bool owned_;
};

}  // namespace scepca

#endif  // SCEPCA_SERVICE_CORE_AUDIT_LOG_H_
