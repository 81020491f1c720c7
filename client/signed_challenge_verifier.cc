#include "client/signed_challenge_verifier.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "service/core/signed_token.h"

namespace scepca {

absl::StatusOr<std::unique_ptr<SignedChallengeVerifier>>
SignedChallengeVerifier::FromKeyFile(const std::string& path,
                                     absl::Duration clock_leeway,
                                     const Clock* clock) {
  absl::StatusOr<KeyRing> ring = KeyRing::LoadFile(path);
  if (!ring.ok()) return ring.status();
  return std::make_unique<SignedChallengeVerifier>(*std::move(ring),
                                                   clock_leeway, clock);
}

absl::StatusOr<SignedChallengeClaims> SignedChallengeVerifier::Verify(
    absl::string_view text) const {
  absl::StatusOr<SignedToken> token = DecodeSignedToken(text, ring_);
  if (!token.ok()) return token.status();
  const absl::Time now = clock_->Now();
  if (now > token->expires_at + leeway_) {
    return absl::DeadlineExceededError(absl::StrCat(
        "signed challenge expired at ", absl::FormatTime(token->expires_at)));
  }
  if (token->issued_at > now + leeway_) {
    return absl::DeadlineExceededError(
        "signed challenge is issued in the future; check the clocks");
  }
  SignedChallengeClaims claims;
  claims.challenge_id = SignedChallengeId(token->token_id);
  claims.device_id = token->device_id;
  claims.user_id = token->user_id;
  claims.common_name = token->binding.common_name;
  claims.dns_names = token->binding.dns_names;
  claims.email_addresses = token->binding.email_addresses;
  claims.uris = token->binding.uris;
  claims.labels = token->labels;
  claims.issued_at = token->issued_at;
  claims.expires_at = token->expires_at;
  claims.multi_use = token->multi_use;
  claims.key_id = token->key_id;
  return claims;
}

}  // namespace scepca
