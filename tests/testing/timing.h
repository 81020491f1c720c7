// File: timing.h
// Time limits for tests that run on loaded or sanitized machines (CI runs
// the suite with ctest -j2 on two cores, and again under ASan + UBSan).
#ifndef SCEPCA_TESTS_TESTING_TIMING_H_
#define SCEPCA_TESTS_TESTING_TIMING_H_

#include "absl/time/time.h"

#if defined(__SANITIZE_ADDRESS__)
#define SCEPCA_TESTING_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SCEPCA_TESTING_ASAN 1
#endif
#endif

namespace scepca::testing {

// Redis timeouts for stores in tests that are not about timeouts, so that a
// stall of the machine cannot fail them. WAIT returns as soon as the replicas
// confirm, so its long timeout costs nothing when they do; the command
// timeout stays above it so that a slow WAIT is not cut off as an error.
inline constexpr absl::Duration kPatientRedisCommandTimeout = absl::Seconds(10);
inline constexpr absl::Duration kPatientRedisWaitTimeout = absl::Seconds(5);

// How much slower the instrumented build is.
#ifdef SCEPCA_TESTING_ASAN
inline constexpr int kSanitizerSlowdown = 3;
#else
inline constexpr int kSanitizerSlowdown = 1;
#endif

// A bound on how fast something must fail, which the release build must keep
// (e.g. UNAVAILABLE within 1 s), scaled for a sanitized build.
inline absl::Duration FailFastBound(absl::Duration release_bound) {
  return release_bound * kSanitizerSlowdown;
}

}  // namespace scepca::testing

#endif  // SCEPCA_TESTS_TESTING_TIMING_H_
