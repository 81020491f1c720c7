// challenge-verify: the CSR verifier for micromdm/scep's -csrverifierexec
// (see challenge_verify.h). Put its flags in a wrapper script: scepserver
// runs the verifier with no arguments.
#include <signal.h>
#include <sys/time.h>
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "client/challenge_verify.h"
#include "client/challengectl.h"

namespace {

// How long after the overall deadline the last-resort timer fires.
constexpr absl::Duration kBackstopGrace = absl::Seconds(1);

void OnBackstop(int /*signal*/) { _exit(scepca::kExitNoAnswer); }

// Arms a timer that ends the process with exit code 3 shortly after
// `deadline`, in case something the deadlines do not cover (a wedged name
// resolver, a log file on a hung file system) holds the verifier:
// scepserver would otherwise wait for it for ever. The process then leaves
// no log line.
void ArmBackstop(absl::Time deadline) {
  struct sigaction action = {};
  action.sa_handler = OnBackstop;
  sigemptyset(&action.sa_mask);
  if (sigaction(SIGALRM, &action, nullptr) != 0) return;
  const absl::Duration left = deadline + kBackstopGrace - absl::Now();
  itimerval timer = {};
  timer.it_value = absl::ToTimeval(
      left > absl::Milliseconds(1) ? left : absl::Milliseconds(1));
  setitimer(ITIMER_REAL, &timer, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  // A reader that closes stdin early must not kill the verifier.
  signal(SIGPIPE, SIG_IGN);
  return scepca::RunChallengeVerify(
      std::vector<std::string>(argv + 1, argv + argc),
      scepca::FdCsrReader(STDIN_FILENO), std::cout, std::cerr, ArmBackstop);
}
