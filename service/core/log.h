// File: log.h
// Minimal structured logging to stderr: "2026-11-25T23:00:00.123Z INFO msg".
// Never pass a challenge, a token or a key to these functions.
#ifndef SCEPCA_SERVICE_CORE_LOG_H_
#define SCEPCA_SERVICE_CORE_LOG_H_

#include "absl/strings/string_view.h"

namespace scepca {

enum class LogLevel { kInfo, kWarning, kError };

// Writes one line atomically. Thread-safe.
void Log(LogLevel level, absl::string_view message);

inline void LogInfo(absl::string_view m) { Log(LogLevel::kInfo, m); }
inline void LogWarning(absl::string_view m) { Log(LogLevel::kWarning, m); }
inline void LogError(absl::string_view m) { Log(LogLevel::kError, m); }

}  // namespace scepca

#endif  // SCEPCA_SERVICE_CORE_LOG_H_
