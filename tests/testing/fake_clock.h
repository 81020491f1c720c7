// File: fake_clock.h
// A Clock that tests move by hand.
#ifndef SCEPCA_TESTS_TESTING_FAKE_CLOCK_H_
#define SCEPCA_TESTS_TESTING_FAKE_CLOCK_H_

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/core/clock.h"

namespace scepca::testing {

// Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'800'000'000))
      : now_(start) {}
  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace scepca::testing

#endif  // SCEPCA_TESTS_TESTING_FAKE_CLOCK_H_
