#include "service/core/in_memory_challenge_store.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/challenge_store_contract.h"
#include "tests/testing/status_matchers.h"

namespace scepca::testing {
namespace {

INSTANTIATE_TEST_SUITE_P(
    Memory, ChallengeStoreContractTest,
    ::testing::Values(StoreFactory{
        "memory", false,
        [] { return std::make_unique<InMemoryChallengeStore>(); }}),
    StoreFactoryName);

TEST(InMemoryChallengeStoreTest, SweepsForgottenRecords) {
  InMemoryChallengeStore store;
  const absl::Time t0 = absl::FromUnixSeconds(1'800'000'000);
  for (int i = 0; i < 100; ++i) {
    ChallengeRecord r;
    r.id = absl::StrCat("id", i);
    r.device_id = "dev";
    r.created_at = t0;
    r.expires_at = t0 + absl::Minutes(1);
    r.forget_at = t0 + absl::Minutes(2);
    ASSERT_THAT(store.Insert(r, t0), IsOk());
  }
  EXPECT_EQ(store.RecordCountForTesting(), 100u);
  ChallengeRecord late;
  late.id = "late";
  late.device_id = "dev";
  late.created_at = t0 + absl::Minutes(3);
  late.expires_at = late.created_at + absl::Minutes(1);
  late.forget_at = late.expires_at;
  ASSERT_THAT(store.Insert(late, t0 + absl::Minutes(3)), IsOk());
  EXPECT_EQ(store.RecordCountForTesting(), 1u);
}

}  // namespace
}  // namespace scepca::testing
