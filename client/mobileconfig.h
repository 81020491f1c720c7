// File: mobileconfig.h
// `challengectl mobileconfig`: issues a challenge bound to a device's
// identity and writes an unsigned Apple configuration profile with a
// com.apple.security.scep payload that enrolls exactly that identity. This is
// what an MDM does for every device; the command lets an admin test an
// enrollment end to end and shows MDM developers the exact payload.
//
// Example:
//   MobileconfigOptions options;
//   options.scep_url = "https://scep.example.com/scep";
//   options.device_id = "iphone-0042";
//   options.out_path = "iphone-0042.mobileconfig";
//   absl::StatusOr<MobileconfigResult> written =
//       WriteMobileconfig(*client, options);
#ifndef SCEPCA_CLIENT_MOBILECONFIG_H_
#define SCEPCA_CLIENT_MOBILECONFIG_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/challenge_client.h"

namespace scepca {

// The --help text of `challengectl mobileconfig` (after its usage line).
inline constexpr char kMobileconfigHelp[] =
    "Issues a challenge bound to a device's identity and writes an unsigned\n"
    "Apple configuration profile (XML plist) with a com.apple.security.scep\n"
    "payload that enrolls that identity: URL, Name, Subject CN=--cn, the\n"
    "Challenge, Keysize, Key Type RSA, Key Usage 5 (signing and encryption),\n"
    "SubjectAltName dNSName=--dns..., Retries 3, RetryDelay 10, and fresh\n"
    "PayloadUUIDs. The challenge is bound to the CN and the DNS names, so the\n"
    "authority accepts it only in a CSR that asks for exactly them.\n"
    "\n"
    "Install it with Apple Configurator or by opening it on the device; MDM\n"
    "developers can read it as the payload to send. The file holds the\n"
    "challenge: it is written with mode 0600, and only its challenge id and\n"
    "expiry are printed. The authority is --server (and the TLS flags)\n"
    "before 'mobileconfig'.";

struct MobileconfigOptions {
  std::string scep_url;   // Required: the SCEP URL devices use.
  std::string device_id;  // Required.
  std::string user_id;
  // The subject CN the device asks for; the device id if "".
  std::string common_name;
  std::vector<std::string> dns_names;
  std::string kind = "one-time";  // "one-time" or "signed".
  int key_size = 2048;            // 2048 or 4096.
  // PayloadDisplayName of the profile; "SCEP enrollment for <device>" if "".
  std::string display_name;
  // The payload's Name (sent to the server as message=, for servers that
  // host several CAs); the URL's host if "".
  std::string ca_name;
  // Lifetime of the challenge, e.g. "7d"; the server's default if "".
  std::string ttl;
  std::string out_path;  // Required.
};

// What was written (no secret).
struct MobileconfigResult {
  std::string out_path;
  std::string challenge_id;
  std::string expires_at;  // RFC 3339.
  std::string profile_uuid;
  std::string payload_uuid;
  std::string common_name;
};

// Returns kInvalidArgument naming the flag if the options are unusable.
absl::Status CheckMobileconfigOptions(const MobileconfigOptions& options);

// Issues the challenge through `client` and writes the profile to
// options.out_path (mode 0600, replaced atomically). Returns
// kInvalidArgument for bad options or an unwritable --out (checked before
// the challenge is issued), or the IssueChallenge error.
absl::StatusOr<MobileconfigResult> WriteMobileconfig(
    ChallengeClient& client, const MobileconfigOptions& options);

// The SCEP payload's values, for BuildMobileconfig.
struct ScepProfile {
  std::string url;
  std::string ca_name;
  std::string common_name;
  std::vector<std::string> dns_names;
  std::string challenge;
  int key_size = 2048;
  std::string display_name;
  std::string description;
  std::string profile_uuid;
  std::string payload_uuid;
};

// Returns the profile as an XML property list (UTF-8); every string is
// XML-escaped.
std::string BuildMobileconfig(const ScepProfile& profile);

// Returns a random (version 4) UUID in upper case, from RAND_bytes.
absl::StatusOr<std::string> NewUuid();

// Escapes & < > " ' for XML text and attribute values.
std::string XmlEscape(absl::string_view text);

}  // namespace scepca

#endif  // SCEPCA_CLIENT_MOBILECONFIG_H_
