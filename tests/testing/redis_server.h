// File: redis_server.h
// A real redis-server for tests: started from PATH in a private temporary
// directory, listening on a free loopback port and on a unix socket, and
// controllable (kill -9, SIGSTOP/SIGCONT, restart on the same port and data
// directory).
//
//   TEST(RedisSomethingTest, Works) {
//     SCEPCA_SKIP_WITHOUT_REDIS_SERVER();
//     auto server = RedisServer::Start();
//     ASSERT_TRUE(server.ok()) << server.status();
//     ... (*server)->tcp_url() ...
//   }
//
// Without redis-server in PATH, tests skip with a reason, or fail when the
// environment has SCEPCA_REQUIRE_REDIS=1 (CI).
#ifndef SCEPCA_TESTS_TESTING_REDIS_SERVER_H_
#define SCEPCA_TESTS_TESTING_REDIS_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "service/redis/redis_reply.h"
#include "tests/testing/subprocess.h"

namespace scepca::testing {

// Returns the absolute path of redis-server found in PATH, or "".
std::string FindRedisServer();

// Returns true if the environment has SCEPCA_REQUIRE_REDIS=1.
bool RedisRequired();

// In a test body or SetUp(): skips the test if redis-server is missing, or
// fails it if SCEPCA_REQUIRE_REDIS=1.
#define SCEPCA_SKIP_WITHOUT_REDIS_SERVER()                                  \
  do {                                                                      \
    if (::scepca::testing::FindRedisServer().empty()) {                     \
      if (::scepca::testing::RedisRequired()) {                             \
        FAIL() << "redis-server is not in PATH and SCEPCA_REQUIRE_REDIS=1"; \
      }                                                                     \
      GTEST_SKIP() << "redis-server is not in PATH (install redis-server; " \
                      "set SCEPCA_REQUIRE_REDIS=1 to fail instead)";        \
    }                                                                       \
  } while (0)

struct RedisServerOptions {
  // --appendonly yes (else no). The AOF lives in the server's directory, so
  // it survives Kill() + Restart().
  bool appendonly = false;
  // --appendfsync always (else everysec); only with appendonly.
  bool appendfsync_always = false;
  // A redis.conf to load first; the options above (and port, bind, sockets,
  // directory, logging) override what it says.
  std::string config_file;
  // More arguments for redis-server, each its own element, e.g.
  // {"--user", "app", "on", ">pw", "~k:*", "+get"}.
  std::vector<std::string> extra_args;
};

// One redis-server child process. Not thread-safe. Stopped on destruction,
// which also removes its directory.
class RedisServer {
 public:
  // Starts redis-server with `--port N --bind 127.0.0.1 --unixsocket
  // <dir>/r.sock --save "" --appendonly no --enable-debug-command local`
  // (adjusted by `options`) and waits until it answers PING (any answer,
  // also NOAUTH, counts). Returns
  // kNotFound if redis-server is not in PATH, kUnavailable (with its log) if
  // it does not answer within 10 s.
  static absl::StatusOr<std::unique_ptr<RedisServer>> Start(
      const RedisServerOptions& options = {});

  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;
  ~RedisServer();

  int port() const { return port_; }
  const std::string& dir() const { return dir_; }
  const std::string& socket_path() const { return socket_path_; }
  // "redis://127.0.0.1:<port>" and "unix://<dir>/r.sock".
  std::string tcp_url() const;
  std::string unix_url() const;

  // Sends SIGKILL and reaps the process (no shutdown, no final fsync).
  void Kill();
  // Sends SIGSTOP: the server keeps its sockets but answers nothing.
  void Pause();
  // Sends SIGCONT.
  void Resume();
  // Stops the server if it runs (SIGTERM), then starts it again with the same
  // port, directory and options, and waits for PING. Returns kUnavailable if
  // it does not come back within 10 s.
  absl::Status Restart();
  // Stops the server (SIGTERM, then SIGKILL after 5 s).
  void Stop();
  bool running() const { return process_ != nullptr && process_->running(); }

  // Runs one command on a fresh unix-socket connection (so it works while
  // store connections are broken). Returns the reply (error replies too), or
  // kUnavailable if the server does not answer within 2 s.
  absl::StatusOr<RedisReply> Command(const std::vector<std::string>& args);

  // Returns the server's log (stdout and stderr).
  std::string ReadLog() const;

 private:
  RedisServer(std::string binary, RedisServerOptions options, int port,
              std::string dir);
  absl::Status Launch();

  const std::string binary_;
  const RedisServerOptions options_;
  const int port_;
  const std::string dir_;
  const std::string socket_path_;
  std::unique_ptr<ChildProcess> process_;
};

// A global test environment with one RedisServer for the whole test binary:
//
//   ::testing::Environment* const kRedis =
//       ::testing::AddGlobalTestEnvironment(new SharedRedisServer());
//
// SetUp() starts it, or skips every test (fails with SCEPCA_REQUIRE_REDIS=1)
// if redis-server is missing.
class SharedRedisServer : public ::testing::Environment {
 public:
  void SetUp() override;
  void TearDown() override;
  // Returns the server, or null if it is not running.
  static RedisServer* Get();
};

}  // namespace scepca::testing

#endif  // SCEPCA_TESTS_TESTING_REDIS_SERVER_H_
