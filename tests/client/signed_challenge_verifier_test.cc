#include "client/signed_challenge_verifier.h"

#include <sys/stat.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/base64.h"
#include "service/core/challenge_authority.h"
#include "service/core/in_memory_challenge_store.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"

namespace scepca {
namespace {

using ::scepca::testing::FakeClock;
using ::scepca::testing::IsOk;
using ::scepca::testing::StatusIs;

TEST(SignedChallengeVerifierTest, ChecksTagAndTimesOffline) {
  const std::string text =
      absl::StrCat("key 5 primary ", Base64Encode(std::string(32, 'v')), "\n");
  const std::string path =
      absl::StrCat(scepca::testing::MakeTempDir(), "/keys");
  FILE* f = fopen(path.c_str(), "w");
  fputs(text.c_str(), f);
  fclose(f);
  chmod(path.c_str(), 0600);

  FakeClock clock;
  InMemoryChallengeStore store;
  KeyRingHolder keys(*KeyRing::Parse(text));
  auto authority =
      *ChallengeAuthority::Create(AuthorityOptions(), &store, &clock, &keys);
  IssueRequest request;
  request.device_id = "dev-v";
  request.user_id = "u";
  request.kind = ChallengeKind::kSigned;
  request.ttl = absl::Minutes(5);
  request.binding.common_name = "dev-v.example.org";
  absl::StatusOr<IssueResult> issued = authority->Issue(request);
  ASSERT_THAT(issued, IsOk());

  auto verifier =
      SignedChallengeVerifier::FromKeyFile(path, absl::Minutes(2), &clock);
  ASSERT_THAT(verifier, IsOk());
  absl::StatusOr<SignedChallengeClaims> claims =
      (*verifier)->Verify(issued->challenge);
  ASSERT_THAT(claims, IsOk());
  EXPECT_EQ(claims->device_id, "dev-v");
  EXPECT_EQ(claims->user_id, "u");
  EXPECT_EQ(claims->common_name, "dev-v.example.org");
  EXPECT_EQ(claims->challenge_id, issued->challenge_id);
  EXPECT_EQ(claims->key_id, 5u);
  // It cannot see replays: a second Verify still passes.
  EXPECT_THAT((*verifier)->Verify(issued->challenge), IsOk());

  std::string forged = issued->challenge;
  forged[10] = forged[10] == 'A' ? 'B' : 'A';
  EXPECT_FALSE((*verifier)->Verify(forged).ok());
  EXPECT_THAT((*verifier)->Verify("not a token"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  clock.Advance(absl::Minutes(8));
  EXPECT_THAT((*verifier)->Verify(issued->challenge),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  chmod(path.c_str(), 0644);
  EXPECT_THAT(SignedChallengeVerifier::FromKeyFile(path),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace scepca
