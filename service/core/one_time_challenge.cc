#include "service/core/one_time_challenge.h"

#include "absl/strings/str_cat.h"
#include "service/core/base32.h"
#include "service/core/hashing.h"
#include "service/core/random.h"
#include "service/core/status_macros.h"

namespace scepca {

absl::StatusOr<std::string> GenerateOneTimeChallenge() {
  SCEPCA_ASSIGN_OR_RETURN(std::string bytes,
                          SecureRandomBytes(kOneTimeChallengeBytes));
  return Base32Encode(bytes);
}

bool IsOneTimeChallengeFormat(absl::string_view challenge) {
  if (challenge.size() != kOneTimeChallengeLength) return false;
  return Base32Decode(challenge).ok();
}

std::string ChallengeIdOf(absl::string_view challenge) {
  return HexEncode(Sha256Parts({"scepca/challenge-id/v1", challenge}))
      .substr(0, kChallengeIdLength);
}

bool IsChallengeIdFormat(absl::string_view id) {
  if (id.size() != kChallengeIdLength) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

absl::Status CheckPresentedChallenge(absl::string_view challenge,
                                     absl::string_view field) {
  if (challenge.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is required"));
  }
  if (challenge.size() > kMaxChallengeLength) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is ", challenge.size(),
                     " bytes; a challenge is at most ", kMaxChallengeLength));
  }
  for (unsigned char c : challenge) {
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, " contains a control character"));
    }
  }
  return absl::OkStatus();
}

}  // namespace scepca
