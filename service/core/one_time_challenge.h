// File: one_time_challenge.h
// One-time challenges: 128 random bits as 26 base32 characters (A-Z2-7), and
// the non-secret id under which a challenge's record is stored.
#ifndef SCEPCA_SERVICE_CORE_ONE_TIME_CHALLENGE_H_
#define SCEPCA_SERVICE_CORE_ONE_TIME_CHALLENGE_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace scepca {

inline constexpr size_t kOneTimeChallengeBytes = 16;   // 128 bits.
inline constexpr size_t kOneTimeChallengeLength = 26;  // base32 chars.
inline constexpr size_t kMaxChallengeLength = 255;     // PKCS#9 bound.
inline constexpr size_t kChallengeIdLength = 32;       // hex chars.

// Returns a fresh one-time challenge from OpenSSL's DRBG.
absl::StatusOr<std::string> GenerateOneTimeChallenge();

// Returns true if `challenge` has the shape of a one-time challenge (26
// characters of A-Z2-7 with zero trailing bits). Case and padding are not
// normalised: "abc..." is not a challenge of ours.
bool IsOneTimeChallengeFormat(absl::string_view challenge);

// Returns the id of a challenge: the first 128 bits of
// SHA-256("scepca/challenge-id/v1" || challenge), as 32 lower-case hex chars.
// One-way: the id never reveals the challenge, and the store only knows ids.
std::string ChallengeIdOf(absl::string_view challenge);

// Returns true if `id` has the shape of a challenge id.
bool IsChallengeIdFormat(absl::string_view id);

// Checks what every presented challenge must satisfy before it is even looked
// at: 1..255 bytes, no control characters. Returns kInvalidArgument naming
// the field `field` otherwise.
absl::Status CheckPresentedChallenge(absl::string_view challenge,
                                     absl::string_view field);

}  // namespace scepca

#endif  // SCEPCA_SERVICE_CORE_ONE_TIME_CHALLENGE_H_
