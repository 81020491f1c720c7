#include "service/core/key_ring.h"

#include <sys/stat.h>

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/base64.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"

namespace scepca {
namespace {

using ::scepca::testing::IsOk;
using ::scepca::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Secret(char fill, size_t n = 32) {
  return Base64Encode(std::string(n, fill));
}

std::string WriteFile(const std::string& text, mode_t mode) {
  static int counter = 0;
  const std::string path =
      absl::StrCat(scepca::testing::MakeTempDir(), "/keys", ++counter);
  FILE* f = fopen(path.c_str(), "w");
  fputs(text.c_str(), f);
  fclose(f);
  chmod(path.c_str(), mode);
  return path;
}

TEST(KeyRingTest, ParsesStatesAndFindsVerifiers) {
  const std::string text = absl::StrCat(
      "# comment\n\nkey 1 primary ", Secret('a'), "\nkey 2 enabled ",
      Secret('b', 48), "\nkey 3 disabled ", Secret('c'), "\n");
  absl::StatusOr<KeyRing> ring = KeyRing::Parse(text);
  ASSERT_THAT(ring, IsOk());
  ASSERT_NE(ring->primary(), nullptr);
  EXPECT_EQ(ring->primary()->id, 1u);
  EXPECT_NE(ring->FindVerifier(1), nullptr);
  EXPECT_NE(ring->FindVerifier(2), nullptr);
  EXPECT_EQ(ring->FindVerifier(3), nullptr);
  EXPECT_EQ(ring->FindVerifier(4), nullptr);
  absl::StatusOr<KeyRing> again = KeyRing::Parse(ring->Serialize());
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->keys().size(), 3u);
  EXPECT_EQ(again->keys()[1].secret->view(), std::string(48, 'b'));
}

TEST(KeyRingTest, RefusesBadKeyFiles) {
  const struct {
    std::string text;
    const char* error;
  } cases[] = {
      {"", "no keys"},
      {absl::StrCat("key 1 enabled ", Secret('a')), "exactly one primary"},
      {absl::StrCat("key 1 primary ", Secret('a'), "\nkey 2 primary ",
                    Secret('b')),
       "exactly one primary"},
      {absl::StrCat("key 1 primary ", Secret('a', 31)), "at least 32"},
      {absl::StrCat("key 1 primary ", Secret('a'), "\nkey 1 enabled ",
                    Secret('b')),
       "duplicate key id 1"},
      {absl::StrCat("key 0 primary ", Secret('a')), "key id"},
      {absl::StrCat("key 1 master ", Secret('a')), "state"},
      {"key 1 primary not-base64!", "base64"},
      {"hello", "expected"},
  };
  for (const auto& c : cases) {
    EXPECT_THAT(
        KeyRing::Parse(c.text),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.error)))
        << c.text;
  }
}

TEST(KeyRingTest, LoadFileRefusesGroupOrOtherAccess) {
  const std::string text = absl::StrCat("key 7 primary ", Secret('k'), "\n");
  EXPECT_THAT(KeyRing::LoadFile(WriteFile(text, 0600)), IsOk());
  EXPECT_THAT(KeyRing::LoadFile(WriteFile(text, 0400)), IsOk());
  EXPECT_THAT(
      KeyRing::LoadFile(WriteFile(text, 0640)),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("chmod 600")));
  EXPECT_THAT(KeyRing::LoadFile(WriteFile(text, 0604)),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(KeyRing::LoadFile("/nonexistent/keys"),
              StatusIs(absl::StatusCode::kNotFound));
  absl::StatusOr<KeyRing> bad =
      KeyRing::LoadFile(WriteFile("key 1 primary QUFB\n", 0600));
  EXPECT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument,
                            HasSubstr("at least 32")));
  EXPECT_THAT(bad.status().message(), Not(HasSubstr("QUFB")));
}

TEST(KeyRingTest, RotationEditsKeepOnePrimary) {
  absl::StatusOr<KeyRing> ring = KeyRing::ParseForEditing("");
  ASSERT_THAT(ring, IsOk());
  absl::StatusOr<uint32_t> first = ring->Generate();
  ASSERT_THAT(first, IsOk());
  EXPECT_EQ(ring->primary()->id, *first);
  absl::StatusOr<uint32_t> second = ring->Generate();
  ASSERT_THAT(second, IsOk());
  EXPECT_EQ(ring->primary()->id, *first);
  EXPECT_EQ(ring->primary()->secret->size(), 32u);
  EXPECT_THAT(ring->Disable(*first),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_THAT(ring->Promote(*second), IsOk());
  EXPECT_EQ(ring->primary()->id, *second);
  EXPECT_NE(ring->FindVerifier(*first), nullptr);
  ASSERT_THAT(ring->Disable(*first), IsOk());
  EXPECT_EQ(ring->FindVerifier(*first), nullptr);
  EXPECT_THAT(ring->Promote(12345), StatusIs(absl::StatusCode::kNotFound));

  const std::string path = WriteFile("", 0600);
  ASSERT_THAT(WriteKeyFile(path, *ring), IsOk());
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  absl::StatusOr<KeyRing> loaded = KeyRing::LoadFile(path);
  ASSERT_THAT(loaded, IsOk());
  EXPECT_EQ(loaded->primary()->id, *second);
}

TEST(KeyRingHolderTest, SwapsAtomically) {
  KeyRingHolder holder(
      *KeyRing::Parse(absl::StrCat("key 1 primary ", Secret('a'))));
  std::shared_ptr<const KeyRing> before = holder.Get();
  holder.Set(*KeyRing::Parse(absl::StrCat("key 2 primary ", Secret('b'))));
  EXPECT_EQ(before->primary()->id, 1u);  // Readers keep their snapshot.
  EXPECT_EQ(holder.Get()->primary()->id, 2u);
  EXPECT_EQ(holder.generation(), 1);
}

}  // namespace
}  // namespace scepca
