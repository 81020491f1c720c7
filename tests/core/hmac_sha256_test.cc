#include "service/core/hmac_sha256.h"

#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/hashing.h"
#include "tests/testing/status_matchers.h"

namespace scepca {
namespace {

using ::scepca::testing::IsOk;

std::string Hex(const absl::StatusOr<std::string>& mac) {
  return mac.ok() ? HexEncode(*mac) : std::string(mac.status().message());
}

// RFC 4231, test cases 1, 2 and 6 (a key longer than the block size).
TEST(HmacSha256Test, MatchesRfc4231) {
  auto one = HmacSha256::Create(std::string(20, '\x0b'));
  ASSERT_THAT(one, IsOk());
  EXPECT_EQ(Hex((*one)->Compute({"Hi There"})),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  auto two = HmacSha256::Create("Jefe");
  ASSERT_THAT(two, IsOk());
  EXPECT_EQ(Hex((*two)->Compute({"what do ya want for nothing?"})),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  auto six = HmacSha256::Create(std::string(131, '\xaa'));
  ASSERT_THAT(six, IsOk());
  EXPECT_EQ(Hex((*six)->Compute(
                {"Test Using Larger Than Block-Size Key - Hash Key First"})),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(HmacSha256Test, PartsAreConcatenatedAndTheKeyIsReusable) {
  auto mac = HmacSha256::Create("Jefe");
  ASSERT_THAT(mac, IsOk());
  const std::string whole =
      Hex((*mac)->Compute({"what do ya want for nothing?"}));
  EXPECT_EQ(Hex((*mac)->Compute({"what do ya ", "", "want for nothing?"})),
            whole);
  // Computing does not change the keyed state.
  EXPECT_EQ(Hex((*mac)->Compute({"what do ya want for nothing?"})), whole);
  EXPECT_NE(Hex((*mac)->Compute({"what do ya want for nothing!"})), whole);
}

TEST(HmacSha256Test, EmptyKeyAndMessageWork) {
  auto mac = HmacSha256::Create("");
  ASSERT_THAT(mac, IsOk());
  EXPECT_EQ(Hex((*mac)->Compute({})),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(HmacSha256Test, ConcurrentComputesAgree) {
  auto mac = HmacSha256::Create(std::string(32, 'k'));
  ASSERT_THAT(mac, IsOk());
  const std::string expected = Hex((*mac)->Compute({"message"}));
  std::vector<std::thread> threads;
  std::vector<int> mismatches(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        if (Hex((*mac)->Compute({"message"})) != expected) ++mismatches[t];
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int n : mismatches) EXPECT_EQ(n, 0);
}

}  // namespace
}  // namespace scepca
