// File: clock.h
// The source of wall-clock time for the authority, injectable for tests.
#ifndef SCEPCA_SERVICE_CORE_CLOCK_H_
#define SCEPCA_SERVICE_CORE_CLOCK_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace scepca {

// A source of wall-clock time. Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

// The system's real-time clock.
class RealClock final : public Clock {
 public:
  // Returns a process-wide instance; never null, never destroyed.
  static Clock* Get();
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace scepca

#endif  // SCEPCA_SERVICE_CORE_CLOCK_H_
