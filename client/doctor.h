// File: doctor.h
// `challengectl doctor`: probes a SCEP endpoint the way an Apple device does
// and reports a checklist.
//
// The probe fetches GetCACaps and GetCACert over HTTP(S) and, for https, the
// server's TLS certificate chain (even when it is not trusted: the rules are
// checked on the certificates themselves, and trust is a check of its own).
// Every check has a stable id, a status (PASS, WARN or FAIL), what it found
// and what to do:
//
//   endpoint.reachable       the endpoint answered at all
//   tls.handshake            a TLS handshake completed (https only)
//   tls.san-dns-name         the URL's host is a DNS name in the SAN
//   tls.validity             current, and <= 825 days (<= 398 days for
//                            certificates issued on or after 2020-09-01 under
//                            a public root)
//   tls.key-size             RSA keys of the chain are >= 2048 bits
//   tls.signature            the chain is signed with SHA-2
//   tls.eku-server-auth      the leaf has an EKU with id-kp-serverAuth
//   tls.trust                the chain verifies for the host against
//                            --scep-ca or the system store
//   caps.list                GetCACaps answered; lists the capabilities
//   caps.post-pki-operation  POSTPKIOperation is advertised
//   caps.sha-256             SHA-256 (or SHA-512) is advertised
//   caps.aes                 AES is advertised
//   caps.renewal             Renewal is advertised (WARN if not)
//   caps.get-next-ca-cert    GetNextCACert (informational)
//   ca.get-ca-cert           GetCACert answered with a certificate or a
//                            PKCS#7 certs-only message
//   ca.key-usage             the CA certificate may sign certificates
//   ca.validity              the CA (and RA) certificates are current
//   ca.fingerprint           the CA certificate's fingerprint, compared with
//                            --ca-fingerprint when given
//   ca.ra-cert               an RA certificate Apple devices can use, when the
//                            response is application/x-x509-ca-ra-cert
//   authority.challenge      with --challenge: the authority's dry-run verdict
//
// Example:
//   DoctorOptions options;
//   options.scep_url = "https://scep.example.com/scep";
//   absl::StatusOr<DoctorReport> report = RunDoctor(options);
//   std::cout << FormatDoctorText(*report);
//   return DoctorExitCode(*report);
#ifndef SCEPCA_CLIENT_DOCTOR_H_
#define SCEPCA_CLIENT_DOCTOR_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/challenge_client.h"

namespace scepca {

// The --help text of `challengectl doctor` (after its usage line).
inline constexpr char kDoctorHelp[] =
    "Probes a SCEP endpoint the way an Apple device does and prints a\n"
    "checklist: one line per check, 'PASS|WARN|FAIL <check-id> <what was\n"
    "found> \u2014 <what to do>', then a verdict.\n"
    "\n"
    "  GetCACaps    lists the capabilities; POSTPKIOperation, SHA-256 and AES\n"
    "               are what Apple and Windows clients look for (FAIL if\n"
    "               missing), Renewal is recommended (WARN), GetNextCACert\n"
    "               is noted.\n"
    "  GetCACert    the CA (and RA) certificates: key usage, validity, the\n"
    "               RA certificate Apple devices look for, and the CA's\n"
    "               fingerprint (compared with --ca-fingerprint).\n"
    "  TLS (https)  the server's certificate against Apple's rules for\n"
    "               trusted TLS certificates: DNS name in the subjectAltName\n"
    "               (not only in the CN), validity <= 825 days (<= 398 days\n"
    "               for public CAs since 2020-09-01), RSA >= 2048 bits, SHA-2\n"
    "               signatures, the serverAuth EKU; and whether the chain is\n"
    "               trusted (--scep-ca, or the system store). The rules are\n"
    "               checked even when the chain is not trusted.\n"
    "  --challenge  asks the authority (--server and the TLS flags before\n"
    "               'doctor') whether the challenge would be accepted: a dry\n"
    "               run that does not use it up.\n"
    "\n"
    "Check ids: endpoint.reachable tls.handshake tls.san-dns-name "
    "tls.validity\n"
    "tls.key-size tls.signature tls.eku-server-auth tls.trust caps.list\n"
    "caps.post-pki-operation caps.sha-256 caps.aes caps.renewal\n"
    "caps.get-next-ca-cert ca.get-ca-cert ca.key-usage ca.validity\n"
    "ca.fingerprint ca.ra-cert authority.challenge\n"
    "\n"
    "Exit codes: 0 no check failed (warnings allowed); 1 a check failed; 2\n"
    "usage error; 3 the endpoint could not be reached at all.\n"
    "See also 'challengectl explain' for the error codes devices report.";

enum class CheckStatus { kPass, kWarn, kFail };

// Returns "PASS", "WARN" or "FAIL".
absl::string_view CheckStatusName(CheckStatus status);

// One line of the checklist.
struct Check {
  std::string id;  // Stable, e.g. "tls.san-dns-name".
  CheckStatus status = CheckStatus::kPass;
  std::string message;  // What was found.
  std::string advice;   // What to do ("" when there is nothing to do).
};

struct DoctorReport {
  std::vector<Check> checks;
  // True if the endpoint could not be reached at all (no TCP connection).
  bool unreachable = false;
};

struct DoctorOptions {
  // http:// or https:// URL of the SCEP endpoint, as in a device's profile.
  std::string scep_url;
  // PEM file of trust anchors for an https endpoint; the system store if "".
  std::string scep_ca_file;
  // Expected fingerprint of the CA certificate: hex (colons and spaces are
  // ignored) of its SHA-256 (64 digits), SHA-1 (40) or MD5 (32).
  std::string ca_fingerprint;
  // Timeout of each connection and read.
  absl::Duration timeout = absl::Seconds(10);
};

// Runs every check against the endpoint. Returns kInvalidArgument for a bad
// URL, an unreadable --scep-ca file or a malformed fingerprint; anything the
// endpoint does is reported as checks, never as an error.
absl::StatusOr<DoctorReport> RunDoctor(const DoctorOptions& options);

// Asks the authority whether `challenge` would be accepted (a dry-run
// Validate) and returns the authority.challenge check.
Check CheckChallengeWithAuthority(ChallengeClient& client,
                                  const std::string& challenge);

// Returns the authority.challenge check for a Validate answer (or error).
Check ChallengeCheckFromValidate(
    const absl::StatusOr<scep::challenge::v1::ValidateResponse>& response);

// Returns "PASS", "WARN", "FAIL" or "UNREACHABLE".
std::string DoctorVerdict(const DoctorReport& report);
// The checklist, one line per check, and a verdict line.
std::string FormatDoctorText(const DoctorReport& report);
// {"checks":[{"id","status","message","advice"}...],"verdict":"..."}.
std::string FormatDoctorJson(const DoctorReport& report);
// 3 if unreachable, 1 if any check failed, else 0.
int DoctorExitCode(const DoctorReport& report);

// The pieces of RunDoctor, exposed for tests.
namespace doctor_internal {

struct ScepUrl {
  std::string scheme;  // "http" or "https".
  std::string host;    // Without brackets for IPv6 literals.
  int port = 0;
  std::string path;  // Begins with '/'; may carry a query.
};

// Parses an http(s) URL without user info. Returns kInvalidArgument.
absl::StatusOr<ScepUrl> ParseScepUrl(absl::string_view url);

// Parses the --ca-fingerprint hex into bytes. Returns kInvalidArgument
// unless it is 16, 20 or 32 bytes.
absl::StatusOr<std::string> ParseFingerprint(absl::string_view hex);

// Checks the TLS chain the server sent (DER, leaf first) for `host`.
// `scep_ca_file` as in DoctorOptions.
std::vector<Check> CheckTlsChain(const std::vector<std::string>& chain_der,
                                 const std::string& host,
                                 const std::string& scep_ca_file,
                                 absl::Time now);

// Checks a GetCACaps answer.
std::vector<Check> CheckCaCaps(int http_status, absl::string_view body);

// Checks a GetCACert answer; `fingerprint` is ParseFingerprint's output or
// "".
std::vector<Check> CheckGetCaCert(int http_status,
                                  absl::string_view content_type,
                                  absl::string_view body,
                                  absl::string_view fingerprint,
                                  absl::Time now);

// Quotes `text` as a JSON string.
std::string JsonQuote(absl::string_view text);

}  // namespace doctor_internal
}  // namespace scepca

#endif  // SCEPCA_CLIENT_DOCTOR_H_
