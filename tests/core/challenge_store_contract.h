// File: challenge_store_contract.h
// The contract every ChallengeStore keeps, as a parameterized suite. A store's
// test file instantiates it with a factory:
//
//   INSTANTIATE_TEST_SUITE_P(Memory, ChallengeStoreContractTest,
//       ::testing::Values(StoreFactory{"memory", false, [] { ... }}));
//
// Times: the suite passes its own `now`. For stores that expire by the real
// clock (Redis), Advance() sleeps; for others it moves a virtual offset.
#ifndef SCEPCA_TESTS_CORE_CHALLENGE_STORE_CONTRACT_H_
#define SCEPCA_TESTS_CORE_CHALLENGE_STORE_CONTRACT_H_

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "service/core/challenge_store.h"

namespace scepca::testing {

struct StoreFactory {
  std::string name;
  // True if the store forgets records by the real clock.
  bool real_time = false;
  // Returns a fresh, empty store.
  std::function<std::unique_ptr<ChallengeStore>()> make;
};

inline void PrintTo(const StoreFactory& factory, std::ostream* os) {
  *os << factory.name;
}

inline std::string StoreFactoryName(
    const ::testing::TestParamInfo<StoreFactory>& info) {
  return info.param.name;
}

class ChallengeStoreContractTest
    : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override {
    store_ = GetParam().make();
    ASSERT_NE(store_, nullptr);
  }
  // The suite's clock, truncated to microseconds like the authority's.
  absl::Time Now() const;
  void Advance(absl::Duration d);
  // Whether something written after `written_after` (a real absl::Now()
  // taken before the write, and before the Now() given to it) to live `ttl`
  // must still be there; call it after the check's call returned. Always
  // true for virtual-time stores; for real-time stores false once the test
  // ran too slowly (a stall on a loaded machine) to tell, so that only the
  // checks it can still make are made.
  bool StillLive(absl::Time written_after, absl::Duration ttl) const;
  // A pending record for `device` living `ttl` (forgotten `retention` later).
  ChallengeRecord MakeRecord(const std::string& id, const std::string& device,
                             const std::string& user, absl::Duration ttl,
                             absl::Duration retention = absl::Seconds(30));
  static std::string IdFor(int n);

  std::unique_ptr<ChallengeStore> store_;
  absl::Duration offset_ = absl::ZeroDuration();
};

}  // namespace scepca::testing

#endif  // SCEPCA_TESTS_CORE_CHALLENGE_STORE_CONTRACT_H_
