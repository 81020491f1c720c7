// File: challenge_verify.h
// challenge-verify: the CSR verifier for micromdm/scep's -csrverifierexec.
//
// scepserver runs the verifier with no arguments, its own environment and
// working directory, stdout and stderr discarded, and the raw DER PKCS#10 on
// stdin; exit code 0 accepts the request and anything else refuses it. The
// verifier sends the CSR to the authority's Validate (the authority reads the
// challengePassword from the CSR) and turns the verdict into an exit code:
//
//   0  allowed: Validate answered OK with valid=true;
//   1  denied: Validate answered valid=false (not_found, already_used,
//      identity_mismatch, csr_invalid, ...);
//   2  refused: a usage error, no CSR or too large a CSR on stdin, or an RPC
//      error such as INVALID_ARGUMENT (as challengectl's exit code 2);
//   3  no answer: the authority is unreachable, or answered UNAVAILABLE,
//      DEADLINE_EXCEEDED or INTERNAL, or the overall deadline (which covers
//      reading stdin) expired.
//
// Every run that gets past flag parsing writes exactly one log line, e.g.
//
//   2026-11-25T23:00:00Z challenge-verify decision=allow reason=valid
//   challenge_id=5c0e... device=iphone-0042 user=alice cn=iphone-0042
//   csr_bytes=681 latency_ms=12
//
// (on one line). The line never holds the challenge or the CSR bytes: any
// value that contains the CSR's challengePassword has it replaced by
// "[redacted]".
//
// Example (what challenge_verify_main.cc does):
//
//   return RunChallengeVerify(args, FdCsrReader(STDIN_FILENO), std::cout,
//                             std::cerr);
#ifndef SCEPCA_CLIENT_CHALLENGE_VERIFY_H_
#define SCEPCA_CLIENT_CHALLENGE_VERIFY_H_

#include <cstddef>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace scepca {

// Reads the whole CSR from wherever stdin is. Returns the bytes read up to
// end of input, or as soon as more than `limit` bytes were read (then the
// result is longer than `limit` and the rest is left unread). Returns
// kDeadlineExceeded if the input has not ended by `deadline`, and
// kInvalidArgument if it cannot be read.
using CsrReader = std::function<absl::StatusOr<std::string>(
    size_t limit, absl::Time deadline)>;

// Returns a CsrReader of file descriptor `fd` (not closed; not retained
// beyond the reader's life). Reads with poll(), so a writer that never closes
// its end cannot hold the verifier past its deadline.
CsrReader FdCsrReader(int fd);

// Returns a CsrReader that yields `data` at once (for in-process tests).
CsrReader StringCsrReader(std::string data);

// Runs challenge-verify with `args` (without the program name), reading the
// CSR through `stdin_data`. `out` gets only --help; `err` gets usage errors
// and, without --log-file, the log line. If `on_deadline` is set, it is
// called once the overall deadline is known, before stdin is read (the
// binary arms a last-resort timer with it). Returns the exit code above.
int RunChallengeVerify(
    const std::vector<std::string>& args, const CsrReader& stdin_data,
    std::ostream& out, std::ostream& err,
    const std::function<void(absl::Time deadline)>& on_deadline = nullptr);

}  // namespace scepca

#endif  // SCEPCA_CLIENT_CHALLENGE_VERIFY_H_
