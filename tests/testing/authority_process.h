// File: authority_process.h
// Runs the real challenge-authority binary for end-to-end tests.
#ifndef SCEPCA_TESTS_TESTING_AUTHORITY_PROCESS_H_
#define SCEPCA_TESTS_TESTING_AUTHORITY_PROCESS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "tests/testing/subprocess.h"

namespace scepca::testing {

// A challenge-authority process on 127.0.0.1 with a port picked for it.
class AuthorityProcess {
 public:
  // Starts the server with `extra_flags` and waits until it logs that it is
  // listening (or fails with its log in the message).
  absl::Status Start(const std::vector<std::string>& extra_flags = {});
  // SIGTERM and wait; returns the exit code.
  int Stop() { return child_.Stop(); }
  // Restarts on the same port with the same flags.
  absl::Status Restart();

  const std::string& address() const { return address_; }
  int port() const { return port_; }
  ChildProcess& child() { return child_; }
  std::string Log() const { return child_.ReadLog(); }

 private:
  ChildProcess child_;
  std::string dir_;
  std::string address_;
  int port_ = 0;
  std::vector<std::string> flags_;
};

// Runs the challengectl binary against `server` with `args`.
CommandResult RunChallengectl(const std::string& server,
                              const std::vector<std::string>& args,
                              absl::Duration timeout = absl::Seconds(20));

}  // namespace scepca::testing

#endif  // SCEPCA_TESTS_TESTING_AUTHORITY_PROCESS_H_
