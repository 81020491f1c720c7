// File: subprocess.h
// Runs programs from tests: a long-lived child (a server) or a command whose
// exit code and output are checked.
#ifndef SCEPCA_TESTS_TESTING_SUBPROCESS_H_
#define SCEPCA_TESTS_TESTING_SUBPROCESS_H_

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace scepca::testing {

// Returns $SCEPCA_BIN_DIR (set by CTest) joined with `relative`, e.g.
// BinaryPath("client/challengectl").
std::string BinaryPath(const std::string& relative);

// Makes a fresh private temporary directory; never fails silently (aborts).
// It is removed with its contents when the process exits normally, unless
// $SCEPCA_KEEP_TEST_DIRS is set.
std::string MakeTempDir();

// Returns a TCP port on 127.0.0.1 that was free a moment ago.
int PickFreePort();

struct CommandResult {
  int exit_code = -1;  // 128+signal if killed by a signal.
  std::string out;
  std::string err;
};

// Runs argv[0] with `argv`, feeding `stdin_data`, and waits at most
// `timeout` (then kills it and returns kDeadlineExceeded).
absl::StatusOr<CommandResult> RunCommand(
    const std::vector<std::string>& argv, const std::string& stdin_data = "",
    absl::Duration timeout = absl::Seconds(30));

// A child process that runs until Stop() or destruction (SIGTERM, then
// SIGKILL after a grace period). Its stdout and stderr go to `log_path`.
class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() { Stop(); }

  absl::Status Start(const std::vector<std::string>& argv,
                     const std::string& log_path);
  // Sends `signal`.
  void Signal(int signal);
  // Sends SIGTERM, waits up to `grace`, then SIGKILL. Returns the exit code
  // (128+signal if killed).
  int Stop(absl::Duration grace = absl::Seconds(10));
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  // Returns true if the child has exited (reaping it).
  bool Exited();
  const std::string& log_path() const { return log_path_; }
  std::string ReadLog() const;

 private:
  pid_t pid_ = -1;
  int exit_code_ = -1;
  std::string log_path_;
};

// Reads a whole file ("" if missing).
std::string ReadFile(const std::string& path);

// Polls `predicate` every 20 ms until true or `timeout`.
bool WaitFor(const std::function<bool()>& predicate, absl::Duration timeout);

}  // namespace scepca::testing

#endif  // SCEPCA_TESTS_TESTING_SUBPROCESS_H_
