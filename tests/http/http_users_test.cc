#include "service/http/http_users.h"

#include <sys/stat.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/http/http_test_util.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"

namespace scepca::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::Pair;

constexpr ScryptParams kCheap{.log_n = 10, .r = 8, .p = 1};

std::string CheapHash(const std::string& password) {
  absl::StatusOr<std::string> hash = HashPassword(password, kCheap);
  EXPECT_THAT(hash, IsOk());
  return hash.ok() ? *hash : "";
}

TEST(PasswordHashTest, HashThenVerifyRoundTrips) {
  const std::string hash = CheapHash("correct horse battery");
  EXPECT_TRUE(VerifyPassword("correct horse battery", hash));
  EXPECT_FALSE(VerifyPassword("correct horse batterY", hash));
  EXPECT_FALSE(VerifyPassword("", hash));
}

TEST(PasswordHashTest, HashHasTheDocumentedFormatAndAFreshSalt) {
  const std::string a = CheapHash("same password");
  const std::string b = CheapHash("same password");
  EXPECT_THAT(a, MatchesRegex("scrypt\\$ln=10,r=8,p=1\\$[A-Za-z0-9+/]{22}=="
                              "\\$[A-Za-z0-9+/]{43}="));
  EXPECT_NE(a, b);
  EXPECT_TRUE(VerifyPassword("same password", b));
}

TEST(PasswordHashTest, DefaultCostIsTwoToTheFifteen) {
  absl::StatusOr<std::string> hash = HashPassword("production password");
  ASSERT_THAT(hash, IsOk());
  EXPECT_THAT(*hash, ::testing::StartsWith("scrypt$ln=15,r=8,p=1$"));
  absl::StatusOr<ScryptParams> params = CheckPasswordHash(*hash);
  ASSERT_THAT(params, IsOk());
  EXPECT_EQ(params->log_n, 15);
}

TEST(PasswordHashTest, HashRefusesOutOfRangeParameters) {
  EXPECT_THAT(HashPassword("x", {.log_n = 9, .r = 8, .p = 1}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(HashPassword("x", {.log_n = 21, .r = 8, .p = 1}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(HashPassword("x", {.log_n = 10, .r = 0, .p = 1}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(HashPassword(std::string(2000, 'x'), kCheap),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(PasswordHashTest, MalformedHashesNeverVerify) {
  const std::string good = CheapHash("pw");
  const std::string salt_and_key = good.substr(good.find("$", 7));
  for (const std::string& bad : std::vector<std::string>{
           "",
           "pw",
           "plain$pw",
           absl::StrCat("pbkdf2$ln=10,r=8,p=1", salt_and_key),
           absl::StrCat("scrypt$ln=10,r=8", salt_and_key),
           absl::StrCat("scrypt$ln=10,r=8,p=1,x=1", salt_and_key),
           absl::StrCat("scrypt$ln=+10,r=8,p=1", salt_and_key),
           absl::StrCat("scrypt$ln=30,r=8,p=1", salt_and_key),
           absl::StrCat(good, "$extra"),
           good.substr(0, good.size() - 4),
           "scrypt$ln=10,r=8,p=1$c2FsdA==$a2V5",
       }) {
    EXPECT_FALSE(VerifyPassword("pw", bad)) << bad;
    EXPECT_THAT(CheckPasswordHash(bad),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << bad;
  }
}

TEST(UsersFileTest, ParsesEveryOption) {
  const std::string hash = CheapHash("pw");
  const std::string text = absl::StrCat(
      "# comment\n\n  # indented comment\n", "user fleet ", hash,
      " ttl=90m user=alice label=template=wifi label=a=b=c quota=7\n",
      "user viewer\t", hash, "   issue=no\n", "user a.b_c@d-e ", hash,
      " issue=yes\n");
  absl::StatusOr<std::vector<HttpAccount>> accounts =
      ParseUsersFile(text, {.min_scrypt_log_n = 10});
  ASSERT_THAT(accounts, IsOk());
  ASSERT_EQ(accounts->size(), 3u);
  const HttpAccount& fleet = (*accounts)[0];
  EXPECT_EQ(fleet.name, "fleet");
  EXPECT_EQ(fleet.password_hash, hash);
  EXPECT_TRUE(fleet.may_issue);
  EXPECT_EQ(fleet.ttl, absl::Minutes(90));
  EXPECT_EQ(fleet.user_id, "alice");
  EXPECT_THAT(fleet.labels,
              ElementsAre(Pair("a", "b=c"), Pair("template", "wifi")));
  EXPECT_EQ(fleet.quota, 7);
  EXPECT_FALSE((*accounts)[1].may_issue);
  EXPECT_FALSE((*accounts)[1].ttl.has_value());
  EXPECT_EQ((*accounts)[1].quota, 0);
  EXPECT_EQ((*accounts)[2].name, "a.b_c@d-e");
}

TEST(UsersFileTest, FormatErrorsNameTheLineAndTheRule) {
  const std::string hash = CheapHash("pw");
  struct Case {
    std::string line;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"user fleet", "expected 'user <name> <password hash>"},
           {"account fleet " + hash, "expected 'user <name>"},
           {"user fleet " + hash + " colour=blue", "unknown option 'colour'"},
           {"user fleet " + hash + " issue=maybe", "issue must be yes or no"},
           {"user fleet " + hash + " ttl=soon", "ttl:"},
           {"user fleet " + hash + " ttl=0s", "ttl must be positive"},
           {"user fleet " + hash + " quota=-1", "quota must be between"},
           {"user fleet " + hash + " quota=lots", "quota must be a number"},
           {"user fleet " + hash + " ttl=1m ttl=2m", "given twice"},
           {"user fleet " + hash + " label=x", "is not label=KEY=VALUE"},
           {"user fleet " + hash + " label==x", "is not label=KEY=VALUE"},
           {"user fleet " + hash + " label=k=1 label=k=2", "given twice"},
           {"user fleet " + hash + " noequals", "is not KEY=VALUE"},
           {"user fle:et " + hash, "may only contain"},
           {"user " + std::string(65, 'a') + " " + hash, "1 to 64"},
           {"user fleet not-a-hash", "password hash"},
       }) {
    const std::string text = absl::StrCat("# header\n", c.line, "\n");
    EXPECT_THAT(
        ParseUsersFile(text, {.min_scrypt_log_n = 10}),
        StatusIs(absl::StatusCode::kInvalidArgument,
                 ::testing::AllOf(HasSubstr("line 2: "), HasSubstr(c.message))))
        << c.line;
  }
  EXPECT_THAT(
      ParseUsersFile(absl::StrCat("user a ", hash, "\nuser a ", hash, "\n"),
                     {.min_scrypt_log_n = 10}),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("line 2: account 'a' appears twice")));
}

TEST(UsersFileTest, RefusesAHashCheaperThanTheMinimum) {
  const std::string text = absl::StrCat("user fleet ", CheapHash("pw"), "\n");
  EXPECT_THAT(ParseUsersFile(text),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("ln=10 is below the minimum ln=15")));
  EXPECT_THAT(ParseUsersFile(text, {.min_scrypt_log_n = 10}), IsOk());
}

TEST(UsersFileTest, FormatAccountLineRoundTrips) {
  HttpAccount account;
  account.name = "fleet";
  account.password_hash = CheapHash("pw");
  account.may_issue = false;
  account.ttl = absl::Minutes(90);
  account.user_id = "alice";
  account.labels = {{"template", "wifi"}, {"k", "v=w"}};
  account.quota = 3;
  absl::StatusOr<std::vector<HttpAccount>> parsed = ParseUsersFile(
      absl::StrCat(FormatAccountLine(account), "\n"), {.min_scrypt_log_n = 10});
  ASSERT_THAT(parsed, IsOk());
  ASSERT_EQ(parsed->size(), 1u);
  const HttpAccount& back = (*parsed)[0];
  EXPECT_EQ(back.name, account.name);
  EXPECT_EQ(back.password_hash, account.password_hash);
  EXPECT_EQ(back.may_issue, account.may_issue);
  EXPECT_EQ(back.ttl, account.ttl);
  EXPECT_EQ(back.user_id, account.user_id);
  EXPECT_EQ(back.labels, account.labels);
  EXPECT_EQ(back.quota, account.quota);
}

TEST(UsersFileTest, LoadRefusesAFileGroupOrOthersCanRead) {
  const std::string dir = MakeTempDir();
  const std::string text = absl::StrCat("user fleet ", CheapHash("pw"), "\n");
  for (int mode : {0640, 0604, 0660, 0602}) {
    const std::string path = WriteTestFile(dir, "users", text, mode);
    EXPECT_THAT(
        LoadUsersFile(path, {.min_scrypt_log_n = 10}),
        StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("chmod 600")))
        << std::oct << mode;
  }
  const std::string path = WriteTestFile(dir, "users", text, 0600);
  EXPECT_THAT(LoadUsersFile(path, {.min_scrypt_log_n = 10}), IsOk());
  chmod(path.c_str(), 0400);
  EXPECT_THAT(LoadUsersFile(path, {.min_scrypt_log_n = 10}), IsOk());
  EXPECT_THAT(LoadUsersFile(absl::StrCat(dir, "/missing")),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(LoadUsersFile(dir),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(UsersFileTest, LoadNamesThePathAndLineOfAFormatError) {
  const std::string dir = MakeTempDir();
  const std::string path = WriteTestFile(dir, "users", "user x\n", 0600);
  EXPECT_THAT(LoadUsersFile(path),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(absl::StrCat(path, ": line 1: "))));
}

TEST(UsersFileTest, WriteIsPrivateAndAtomic) {
  const std::string dir = MakeTempDir();
  const std::string path = WriteTestFile(dir, "users", "old\n", 0644);
  ASSERT_THAT(WriteUsersFile(path, "# new\n"), IsOk());
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(ReadFile(path), "# new\n");
  EXPECT_THAT(ReadFile(absl::StrCat(path, ".tmp.", getpid())), "");
}

TEST(UsersFileTest, UpsertKeepsOtherLinesAndRefusesDuplicatesUnlessReplace) {
  HttpAccount fleet;
  fleet.name = "fleet";
  fleet.password_hash = CheapHash("pw1");
  bool replaced = true;
  absl::StatusOr<std::string> text =
      UpsertAccountLine("", fleet, /*replace=*/false, &replaced);
  ASSERT_THAT(text, IsOk());
  EXPECT_FALSE(replaced);
  EXPECT_THAT(*text, ::testing::StartsWith("# scepca http users v1"));
  const std::string with_comment = absl::StrCat(*text, "# keep me\n");
  HttpAccount jamf = fleet;
  jamf.name = "jamf";
  text = UpsertAccountLine(with_comment, jamf, false, &replaced);
  ASSERT_THAT(text, IsOk());
  EXPECT_THAT(*text, HasSubstr("# keep me\nuser jamf "));
  EXPECT_THAT(
      UpsertAccountLine(*text, fleet, false, &replaced),
      StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("--replace")));
  fleet.password_hash = CheapHash("pw2");
  fleet.quota = 4;
  absl::StatusOr<std::string> edited =
      UpsertAccountLine(*text, fleet, /*replace=*/true, &replaced);
  ASSERT_THAT(edited, IsOk());
  EXPECT_TRUE(replaced);
  absl::StatusOr<std::vector<HttpAccount>> accounts =
      ParseUsersFile(*edited, {.min_scrypt_log_n = 10});
  ASSERT_THAT(accounts, IsOk());
  ASSERT_EQ(accounts->size(), 2u);
  EXPECT_EQ((*accounts)[0].name, "fleet");
  EXPECT_EQ((*accounts)[0].quota, 4);
  EXPECT_TRUE(VerifyPassword("pw2", (*accounts)[0].password_hash));
  EXPECT_THAT(*edited, HasSubstr("# keep me"));

  absl::StatusOr<std::string> removed = RemoveAccountLine(*edited, "fleet");
  ASSERT_THAT(removed, IsOk());
  EXPECT_THAT(*removed, Not(HasSubstr("user fleet")));
  EXPECT_THAT(*removed, HasSubstr("user jamf"));
  EXPECT_THAT(RemoveAccountLine(*removed, "fleet"),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(UsersFileTest, UpsertRefusesAnInvalidAccount) {
  HttpAccount bad;
  bad.name = "has space";
  bad.password_hash = CheapHash("pw");
  bool replaced = false;
  EXPECT_THAT(UpsertAccountLine("", bad, false, &replaced),
              StatusIs(absl::StatusCode::kInvalidArgument));
  bad.name = "ok";
  bad.user_id = "two words";
  EXPECT_THAT(
      UpsertAccountLine("", bad, false, &replaced),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("whitespace")));
}

class HttpUsersTest : public ::testing::Test {
 protected:
  HttpUsersTest() {
    HttpAccount fleet;
    fleet.name = "fleet";
    fleet.password_hash = CheapHash("right password");
    fleet.labels = {{"template", "wifi"}};
    users_ = std::make_unique<HttpUsers>(std::vector<HttpAccount>{fleet},
                                         &clock_, HttpUsers::Options());
  }
  FakeClock clock_;
  std::unique_ptr<HttpUsers> users_;
};

TEST_F(HttpUsersTest, AuthenticateAcceptsOnlyTheRightPassword) {
  absl::optional<HttpAccount> account =
      users_->Authenticate("fleet", "right password");
  ASSERT_TRUE(account.has_value());
  EXPECT_EQ(account->name, "fleet");
  EXPECT_EQ(account->labels.at("template"), "wifi");
  EXPECT_FALSE(users_->Authenticate("fleet", "wrong password").has_value());
  EXPECT_FALSE(users_->Authenticate("Fleet", "right password").has_value());
  EXPECT_FALSE(users_->Authenticate("fleet", "").has_value());
}

TEST_F(HttpUsersTest, UnknownNameCostsAHashToo) {
  const int64_t before = users_->hash_evaluations();
  EXPECT_FALSE(users_->Authenticate("nobody", "right password").has_value());
  EXPECT_EQ(users_->hash_evaluations(), before + 1);
}

TEST_F(HttpUsersTest, CachesASuccessForItsTtlOnly) {
  ASSERT_TRUE(users_->Authenticate("fleet", "right password").has_value());
  EXPECT_EQ(users_->hash_evaluations(), 1);
  clock_.Advance(absl::Seconds(59));
  ASSERT_TRUE(users_->Authenticate("fleet", "right password").has_value());
  EXPECT_EQ(users_->hash_evaluations(), 1);
  clock_.Advance(absl::Seconds(2));
  ASSERT_TRUE(users_->Authenticate("fleet", "right password").has_value());
  EXPECT_EQ(users_->hash_evaluations(), 2);
}

TEST_F(HttpUsersTest, NeverCachesAFailure) {
  EXPECT_FALSE(users_->Authenticate("fleet", "wrong").has_value());
  EXPECT_FALSE(users_->Authenticate("fleet", "wrong").has_value());
  EXPECT_EQ(users_->hash_evaluations(), 2);
  // A cached success does not let another password in.
  ASSERT_TRUE(users_->Authenticate("fleet", "right password").has_value());
  EXPECT_FALSE(users_->Authenticate("fleet", "wrong").has_value());
}

TEST(HttpUsersHolderTest, ReloadSwapsAccountsAndKeepsThemOnABadFile) {
  const std::string dir = MakeTempDir();
  const std::string path = WriteTestFile(
      dir, "users", absl::StrCat("user a ", CheapHash("password-a"), "\n"));
  FakeClock clock;
  absl::StatusOr<std::unique_ptr<HttpUsersHolder>> holder =
      HttpUsersHolder::Load(path, {.min_scrypt_log_n = 10}, {}, &clock);
  ASSERT_THAT(holder, IsOk());
  EXPECT_TRUE((*holder)->Get()->Authenticate("a", "password-a").has_value());
  WriteTestFile(dir, "users",
                absl::StrCat("user b ", CheapHash("password-b"), "\n"));
  ASSERT_THAT((*holder)->Reload(), IsOk());
  EXPECT_FALSE((*holder)->Get()->Authenticate("a", "password-a").has_value());
  EXPECT_TRUE((*holder)->Get()->Authenticate("b", "password-b").has_value());
  WriteTestFile(dir, "users", "user broken\n");
  EXPECT_THAT((*holder)->Reload(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE((*holder)->Get()->Authenticate("b", "password-b").has_value());
  chmod(path.c_str(), 0644);
  EXPECT_THAT((*holder)->Reload(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace scepca::testing
