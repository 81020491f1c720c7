#include "service/core/audit_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace scepca {
namespace {

void AppendJsonString(std::string* out, absl::string_view s) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          absl::StrAppendFormat(out, "\\u%04x", c);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

}  // namespace

std::string AuditJson(const AuditEntry& e) {
  std::string out = "{\"time\":";
  AppendJsonString(&out, absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", e.time,
                                          absl::UTCTimeZone()));
  auto field = [&out](absl::string_view name, absl::string_view value) {
    if (value.empty()) return;
    out.push_back(',');
    AppendJsonString(&out, name);
    out.push_back(':');
    AppendJsonString(&out, value);
  };
  field("caller", e.caller.empty() ? "anonymous" : e.caller);
  field("peer", e.peer);
  field("method", e.method);
  field("challenge_id", e.challenge_id);
  field("device_id", e.device_id);
  field("user_id", e.user_id);
  field("transaction_id", e.transaction_id);
  field("outcome", e.outcome);
  field("reason", e.reason);
  if (e.count >= 0) absl::StrAppend(&out, ",\"count\":", e.count);
  absl::StrAppendFormat(&out, ",\"latency_ms\":%.3f}\n",
                        absl::ToDoubleMilliseconds(e.latency));
  return out;
}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(
    const std::string& path) {
  if (path == "-") {
    return std::unique_ptr<AuditLog>(new AuditLog(STDOUT_FILENO, false));
  }
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot open audit log ", path, ": ", std::strerror(errno)));
  }
  return std::unique_ptr<AuditLog>(new AuditLog(fd, true));
}

AuditLog::~AuditLog() {
  if (owned_) close(fd_);
}

void AuditLog::Record(const AuditEntry& entry) {
  const std::string line = AuditJson(entry);
  absl::MutexLock lock(&mu_);
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = write(fd_, line.data() + off, line.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
}

}  // namespace scepca
