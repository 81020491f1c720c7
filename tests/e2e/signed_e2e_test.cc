// End-to-end: signed challenges through the real binaries: key management
// with challengectl, rotation with SIGHUP, key-file refusals, replay across
// instances sharing Redis.
#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/challenge_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/base64.h"
#include "tests/testing/authority_process.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/status_matchers.h"

namespace scepca::testing {
namespace {

namespace v1 = ::scep::challenge::v1;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

// Runs "challengectl keys ..." (no server needed) and returns the last line.
std::string Keys(const std::vector<std::string>& args, int* exit_code) {
  std::vector<std::string> argv = {BinaryPath("client/challengectl"), "keys"};
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<CommandResult> r = RunCommand(argv);
  if (!r.ok()) {
    *exit_code = -1;
    return "";
  }
  *exit_code = r->exit_code;
  std::vector<std::string> lines =
      absl::StrSplit(absl::StripSuffix(r->out, "\n"), '\n');
  return lines.empty() ? "" : lines.back();
}

std::string WriteFile(const std::string& path, const std::string& text,
                      mode_t mode) {
  FILE* f = fopen(path.c_str(), "w");
  fputs(text.c_str(), f);
  fclose(f);
  chmod(path.c_str(), mode);
  return path;
}

std::string IssueSigned(const AuthorityProcess& server,
                        const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"issue", "--device", "dev-s", "--kind",
                                   "signed"};
  args.insert(args.end(), extra.begin(), extra.end());
  CommandResult r = RunChallengectl(server.address(), args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return std::string(absl::StripSuffix(r.out, "\n"));
}

CommandResult Validate(const AuthorityProcess& server, const std::string& c,
                       bool dry_run = false) {
  std::vector<std::string> args = {"validate", "--challenge", c};
  if (dry_run) args.push_back("--dry-run");
  return RunChallengectl(server.address(), args);
}

void Reload(AuthorityProcess& server, int* reloads) {
  const std::string marker = absl::StrCat("generation ", ++*reloads);
  server.child().Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(server.Log(), marker); },
                      absl::Seconds(10)))
      << server.Log();
}

TEST(SignedE2eTest, RotationSequenceEndToEnd) {
  const std::string file = absl::StrCat(MakeTempDir(), "/keys");
  int rc = 0;
  const std::string old_id = Keys({"generate", "--file", file}, &rc);
  ASSERT_EQ(rc, 0);
  ASSERT_THAT(old_id, MatchesRegex("[0-9]+"));
  struct stat st;
  ASSERT_EQ(stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  AuthorityProcess server;
  ASSERT_THAT(server.Start({"--hmac-keys", file}), IsOk());
  int reloads = 0;
  const std::string old_token = IssueSigned(server, {"--multi-use"});
  ASSERT_THAT(old_token, MatchesRegex("A[A-Za-z0-9+/=]+"));
  EXPECT_EQ(Validate(server, old_token).exit_code, 0);

  const std::string new_id = Keys({"generate", "--file", file}, &rc);
  ASSERT_EQ(rc, 0);
  Keys({"promote", "--file", file, "--id", new_id}, &rc);
  ASSERT_EQ(rc, 0);
  Reload(server, &reloads);
  const std::string new_token = IssueSigned(server, {"--multi-use"});
  EXPECT_EQ(Validate(server, old_token).exit_code, 0);
  EXPECT_EQ(Validate(server, new_token).exit_code, 0);

  Keys({"disable", "--file", file, "--id", old_id}, &rc);
  ASSERT_EQ(rc, 0);
  Reload(server, &reloads);
  CommandResult refused = Validate(server, old_token);
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.out, HasSubstr("bad_signature"));
  EXPECT_EQ(Validate(server, new_token).exit_code, 0);

  // list shows ids and states, never secrets.
  std::vector<std::string> argv = {BinaryPath("client/challengectl"), "keys",
                                   "list", "--file", file};
  absl::StatusOr<CommandResult> list = RunCommand(argv);
  ASSERT_THAT(list, IsOk());
  EXPECT_THAT(list->out, HasSubstr(absl::StrCat(old_id)));
  EXPECT_THAT(list->out, HasSubstr("disabled"));
  EXPECT_THAT(list->out, HasSubstr("primary"));
  EXPECT_EQ(list->out.find('='), std::string::npos);
  // The server never logged a key or a token.
  EXPECT_FALSE(absl::StrContains(server.Log(), new_token));
}

TEST(SignedE2eTest, SingleUseTokenIsRefusedOnReplay) {
  const std::string file = absl::StrCat(MakeTempDir(), "/keys");
  int rc = 0;
  Keys({"generate", "--file", file}, &rc);
  AuthorityProcess server;
  ASSERT_THAT(server.Start({"--hmac-keys", file}), IsOk());
  CommandResult json = RunChallengectl(
      server.address(),
      {"--json", "issue", "--device", "dev-s", "--kind", "signed"});
  EXPECT_THAT(json.out, HasSubstr("CHALLENGE_KIND_SIGNED"));
  const std::string token = IssueSigned(server);
  EXPECT_EQ(Validate(server, token, /*dry_run=*/true).exit_code, 0);
  EXPECT_EQ(Validate(server, token).exit_code, 0);
  CommandResult replay = Validate(server, token);
  EXPECT_EQ(replay.exit_code, 1);
  EXPECT_THAT(replay.out, HasSubstr("already_used"));
}

TEST(SignedE2eTest, KeyFileRefusalsStopTheServer) {
  const std::string dir = MakeTempDir();
  const std::string good = Base64Encode(std::string(32, 'k'));
  const struct {
    std::string text;
    mode_t mode;
    const char* error;
  } cases[] = {
      {absl::StrCat("key 1 primary ", Base64Encode(std::string(16, 'k'))), 0600,
       "at least 32"},
      {absl::StrCat("key 1 primary ", good, "\nkey 1 enabled ", good), 0600,
       "duplicate key id"},
      {absl::StrCat("key 1 enabled ", good), 0600, "exactly one primary"},
      {"# empty\n", 0600, "no keys"},
      {absl::StrCat("key 1 primary ", good), 0644, "chmod 600"},
  };
  int n = 0;
  for (const auto& c : cases) {
    const std::string path =
        WriteFile(absl::StrCat(dir, "/keys", ++n), c.text, c.mode);
    absl::StatusOr<CommandResult> r =
        RunCommand({BinaryPath("service/challenge-authority"), "--listen",
                    "127.0.0.1:0", "--hmac-keys", path});
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->exit_code, 2) << c.error;
    EXPECT_THAT(r->err, HasSubstr(c.error));
    EXPECT_FALSE(absl::StrContains(r->err, good));
  }
}

TEST(SignedE2eTest, SighupReloadDuringLoadFailsNoCall) {
  const std::string file = absl::StrCat(MakeTempDir(), "/keys");
  int rc = 0;
  Keys({"generate", "--file", file}, &rc);
  AuthorityProcess server;
  ASSERT_THAT(server.Start({"--hmac-keys", file}), IsOk());
  std::atomic<bool> stop{false};
  std::atomic<int> calls{0}, failures{0};
  std::vector<std::thread> load;
  for (int t = 0; t < 4; ++t) {
    load.emplace_back([&] {
      ClientOptions options;
      options.target = server.address();
      auto client = *ChallengeClient::Create(options);
      while (!stop.load()) {
        v1::IssueChallengeRequest issue;
        issue.set_device_id("dev-load");
        issue.set_kind(v1::CHALLENGE_KIND_SIGNED);
        auto issued = client->IssueChallenge(issue);
        bool ok = issued.ok();
        if (ok) {
          v1::ValidateRequest validate;
          validate.set_challenge(issued->challenge());
          auto v = client->Validate(validate);
          ok = v.ok() && v->valid();
        }
        ++calls;
        if (!ok) ++failures;
      }
    });
  }
  int reloads = 0;
  for (int i = 0; i < 10; ++i) {
    // Each reload adds and promotes a key; the old ones stay enabled.
    const std::string id = Keys({"generate", "--file", file}, &rc);
    Keys({"promote", "--file", file, "--id", id}, &rc);
    Reload(server, &reloads);
  }
  stop = true;
  for (auto& t : load) t.join();
  EXPECT_GT(calls.load(), 20);
  EXPECT_EQ(failures.load(), 0);
}

TEST(SignedE2eTest, ReplayAcrossTwoInstancesSharingRedis) {
  SCEPCA_SKIP_WITHOUT_REDIS_SERVER();
  auto redis = RedisServer::Start();
  ASSERT_THAT(redis, IsOk());
  const std::string file = absl::StrCat(MakeTempDir(), "/keys");
  int rc = 0;
  Keys({"generate", "--file", file}, &rc);
  AuthorityProcess a, b;
  ASSERT_THAT(a.Start({"--hmac-keys", file, "--store", (*redis)->tcp_url()}),
              IsOk());
  ASSERT_THAT(b.Start({"--hmac-keys", file, "--store", (*redis)->tcp_url()}),
              IsOk());
  const std::string token = IssueSigned(a);
  EXPECT_EQ(Validate(b, token).exit_code, 0);
  CommandResult replay = Validate(a, token);
  EXPECT_EQ(replay.exit_code, 1);
  EXPECT_THAT(replay.out, HasSubstr("already_used"));

  const std::string other = IssueSigned(b, {"--user", "carol"});
  absl::SleepFor(absl::Seconds(1));
  CommandResult revoke =
      RunChallengectl(a.address(), {"revoke", "--user", "carol"});
  EXPECT_EQ(revoke.exit_code, 0) << revoke.err;
  CommandResult revoked = Validate(b, other);
  EXPECT_EQ(revoked.exit_code, 1);
  EXPECT_THAT(revoked.out, HasSubstr("revoked"));
}

}  // namespace
}  // namespace scepca::testing
