// File: signed_challenge_verifier.h
// Offline checking of signed challenges for a C++ SCEP server that holds the
// authority's key file.
//
// WHAT IT CANNOT CHECK: replay (a single-use token presented twice) and
// revocation (of the token, its device or its user) live in the authority's
// store. A token this verifier accepts may already be used or revoked. Use it
// to refuse forged, foreign and expired tokens cheaply, before (not instead
// of) calling the authority's Validate.
//
// Example:
//   auto verifier = SignedChallengeVerifier::FromKeyFile("/etc/scepca/keys");
//   absl::StatusOr<SignedChallengeClaims> claims =
//       (*verifier)->Verify(challenge_password);
//   if (!claims.ok()) { /* refuse: claims.status().message() says why */ }
#ifndef SCEPCA_CLIENT_SIGNED_CHALLENGE_VERIFIER_H_
#define SCEPCA_CLIENT_SIGNED_CHALLENGE_VERIFIER_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "service/core/clock.h"
#include "service/core/key_ring.h"

namespace scepca {

// What a verified token says.
struct SignedChallengeClaims {
  std::string challenge_id;  // "s" + 32 hex characters.
  std::string device_id;
  std::string user_id;
  std::string common_name;  // Expected CSR subject CN, if bound.
  std::vector<std::string> dns_names, email_addresses, uris;
  std::map<std::string, std::string> labels;
  absl::Time issued_at;
  absl::Time expires_at;
  bool multi_use = false;
  uint32_t key_id = 0;
};

// Thread-safe (immutable).
class SignedChallengeVerifier {
 public:
  // Loads the key file (the same file and checks as the server's
  // --hmac-keys).
  static absl::StatusOr<std::unique_ptr<SignedChallengeVerifier>> FromKeyFile(
      const std::string& path, absl::Duration clock_leeway = absl::Minutes(2),
      const Clock* clock = RealClock::Get());
  SignedChallengeVerifier(KeyRing ring, absl::Duration clock_leeway,
                          const Clock* clock)
      : ring_(std::move(ring)), leeway_(clock_leeway), clock_(clock) {}

  // Checks the tag and the times. Returns kUnauthenticated for a forged
  // token or one whose key is unknown or disabled, kInvalidArgument for text
  // that is no signed challenge, kDeadlineExceeded if it expired (beyond the
  // leeway) or is issued in the future.
  absl::StatusOr<SignedChallengeClaims> Verify(absl::string_view token) const;

 private:
  const KeyRing ring_;
  const absl::Duration leeway_;
  const Clock* const clock_;
};

}  // namespace scepca

#endif  // SCEPCA_CLIENT_SIGNED_CHALLENGE_VERIFIER_H_
