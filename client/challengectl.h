// File: challengectl.h
// The challengectl command line (admin and MDM CLI), as a function so tests
// can run it in-process as well as through the binary.
#ifndef SCEPCA_CLIENT_CHALLENGECTL_H_
#define SCEPCA_CLIENT_CHALLENGECTL_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace scepca {

// Exit codes of challengectl.
inline constexpr int kExitOk = 0;       // Success, or the challenge is valid.
inline constexpr int kExitDenied = 1;   // A denial: the challenge is not valid.
inline constexpr int kExitRefused = 2;  // Usage error or request refused.
inline constexpr int kExitNoAnswer =
    3;  // Unreachable / unavailable / internal.

// Returns the exit code for an RPC that failed with `status`.
int ExitCodeForStatus(const absl::Status& status);

// Runs challengectl with `args` (without the program name).
int RunChallengectl(const std::vector<std::string>& args, std::ostream& out,
                    std::ostream& err);

}  // namespace scepca

#endif  // SCEPCA_CLIENT_CHALLENGECTL_H_
