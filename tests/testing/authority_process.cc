#include "tests/testing/authority_process.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace scepca::testing {

absl::Status AuthorityProcess::Start(
    const std::vector<std::string>& extra_flags) {
  if (dir_.empty()) dir_ = MakeTempDir();
  if (port_ == 0) port_ = PickFreePort();
  flags_ = extra_flags;
  address_ = absl::StrCat("127.0.0.1:", port_);
  return Restart();
}

absl::Status AuthorityProcess::Restart() {
  if (child_.running()) child_.Stop();
  const std::string log = absl::StrCat(dir_, "/authority.log");
  std::vector<std::string> argv = {BinaryPath("service/challenge-authority"),
                                   "--listen", address_};
  argv.insert(argv.end(), flags_.begin(), flags_.end());
  const size_t log_offset = ReadFile(log).size();
  if (absl::Status st = child_.Start(argv, log); !st.ok()) return st;
  const bool up = WaitFor(
      [&] {
        return absl::StrContains(ReadFile(log).substr(log_offset),
                                 "listening on") ||
               child_.Exited();
      },
      absl::Seconds(20));
  if (!up || !child_.running()) {
    return absl::UnavailableError(
        absl::StrCat("challenge-authority did not start:\n", ReadFile(log)));
  }
  return absl::OkStatus();
}

CommandResult RunChallengectl(const std::string& server,
                              const std::vector<std::string>& args,
                              absl::Duration timeout) {
  std::vector<std::string> argv = {BinaryPath("client/challengectl"),
                                   "--server", server};
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<CommandResult> r = RunCommand(argv, "", timeout);
  if (!r.ok()) {
    CommandResult failed;
    failed.exit_code = -1;
    failed.err = std::string(r.status().message());
    return failed;
  }
  return *r;
}

}  // namespace scepca::testing
