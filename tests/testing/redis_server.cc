#include "tests/testing/redis_server.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "service/redis/redis_connection.h"
#include "service/redis/redis_url.h"

namespace scepca::testing {
namespace {

std::unique_ptr<RedisServer>& SharedInstance() {
  static auto* const instance = new std::unique_ptr<RedisServer>();
  return *instance;
}

}  // namespace

std::string FindRedisServer() {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return "";
  for (absl::string_view dir : absl::StrSplit(path, ':')) {
    if (dir.empty()) continue;
    std::string candidate = absl::StrCat(dir, "/redis-server");
    if (access(candidate.c_str(), X_OK) == 0) {
      return std::filesystem::absolute(candidate).string();
    }
  }
  return "";
}

bool RedisRequired() {
  const char* value = std::getenv("SCEPCA_REQUIRE_REDIS");
  return value != nullptr && std::string(value) == "1";
}

RedisServer::RedisServer(std::string binary, RedisServerOptions options,
                         int port, std::string dir)
    : binary_(std::move(binary)),
      options_(std::move(options)),
      port_(port),
      dir_(std::move(dir)),
      socket_path_(absl::StrCat(dir_, "/r.sock")) {}

RedisServer::~RedisServer() {
  Stop();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

absl::StatusOr<std::unique_ptr<RedisServer>> RedisServer::Start(
    const RedisServerOptions& options) {
  std::string binary = FindRedisServer();
  if (binary.empty()) {
    return absl::NotFoundError("redis-server is not in PATH");
  }
  auto server = absl::WrapUnique(new RedisServer(
      std::move(binary), options, PickFreePort(), MakeTempDir()));
  absl::Status launched = server->Launch();
  if (!launched.ok()) return launched;
  return server;
}

absl::Status RedisServer::Launch() {
  std::vector<std::string> argv = {binary_};
  if (!options_.config_file.empty()) argv.push_back(options_.config_file);
  const std::vector<std::string> overrides = {
      "--port",
      absl::StrCat(port_),
      "--bind",
      "127.0.0.1",
      "--unixsocket",
      socket_path_,
      "--unixsocketperm",
      "700",
      "--dir",
      dir_,
      "--save",
      "",
      "--appendonly",
      options_.appendonly ? "yes" : "no",
      "--appendfsync",
      options_.appendfsync_always ? "always" : "everysec",
      "--enable-debug-command",
      "local",
      "--daemonize",
      "no",
      "--logfile",
      "",
      "--loglevel",
      "warning",
      "--pidfile",
      absl::StrCat(dir_, "/redis.pid"),
      "--supervised",
      "no"};
  argv.insert(argv.end(), overrides.begin(), overrides.end());
  argv.insert(argv.end(), options_.extra_args.begin(),
              options_.extra_args.end());
  process_ = std::make_unique<ChildProcess>();
  absl::Status started =
      process_->Start(argv, absl::StrCat(dir_, "/redis.log"));
  if (!started.ok()) return started;
  const bool up = WaitFor(
      [this] {
        if (process_->Exited()) return true;
        // Any answer will do: with requirepass, PING answers NOAUTH.
        absl::StatusOr<RedisReply> pong = Command({"PING"});
        return pong.ok() && !absl::StartsWith(pong->str, "LOADING");
      },
      absl::Seconds(10));
  if (!up || !process_->running()) {
    Stop();
    return absl::UnavailableError(
        absl::StrCat("redis-server did not answer PING on port ", port_,
                     "; log:\n", ReadLog()));
  }
  return absl::OkStatus();
}

std::string RedisServer::tcp_url() const {
  return absl::StrCat("redis://127.0.0.1:", port_);
}

std::string RedisServer::unix_url() const {
  return absl::StrCat("unix://", socket_path_);
}

void RedisServer::Kill() {
  if (process_ == nullptr || !process_->running()) return;
  process_->Signal(SIGKILL);
  process_->Stop(absl::Seconds(5));  // Reaps it.
}

void RedisServer::Pause() {
  if (process_ != nullptr) process_->Signal(SIGSTOP);
}

void RedisServer::Resume() {
  if (process_ != nullptr) process_->Signal(SIGCONT);
}

absl::Status RedisServer::Restart() {
  Stop();
  return Launch();
}

void RedisServer::Stop() {
  if (process_ != nullptr && process_->running()) {
    process_->Stop(absl::Seconds(5));
  }
}

absl::StatusOr<RedisReply> RedisServer::Command(
    const std::vector<std::string>& args) {
  RedisConnectOptions options;
  options.url.transport = RedisUrl::Transport::kUnix;
  options.url.socket_path = socket_path_;
  options.connect_timeout = absl::Seconds(2);
  options.command_timeout = absl::Seconds(2);
  absl::StatusOr<std::unique_ptr<RedisConnection>> connection =
      RedisConnection::Connect(options);
  if (!connection.ok()) return connection.status();
  RedisArgs argv(args.begin(), args.end());
  return (*connection)->Command(argv);
}

std::string RedisServer::ReadLog() const {
  return ReadFile(absl::StrCat(dir_, "/redis.log"));
}

void SharedRedisServer::SetUp() {
  if (FindRedisServer().empty()) {
    if (RedisRequired()) {
      FAIL() << "redis-server is not in PATH and SCEPCA_REQUIRE_REDIS=1";
    }
    // gtest 1.12 reports tests skipped by an environment as passed; this line
    // lets ctest (SKIP_REGULAR_EXPRESSION of gtest_discover_tests) show them
    // as skipped.
    std::printf("[  SKIPPED ] redis-server is not in PATH\n");
    GTEST_SKIP() << "redis-server is not in PATH (install redis-server; set "
                    "SCEPCA_REQUIRE_REDIS=1 to fail instead)";
  }
  absl::StatusOr<std::unique_ptr<RedisServer>> server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  SharedInstance() = *std::move(server);
}

void SharedRedisServer::TearDown() { SharedInstance().reset(); }

RedisServer* SharedRedisServer::Get() { return SharedInstance().get(); }

}  // namespace scepca::testing
