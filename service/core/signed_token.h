// File: signed_token.h
// Signed challenges: an HMAC-SHA256-tagged token that carries the identity it
// was issued for, so it can be checked without a store lookup.
//
// Wire format (version 1), then standard base64 with padding:
//
//   offset size  field
//   0      1     version = 0x01
//   1      4     key id, big-endian
//   5      16    token id (128 random bits)
//   21     4     issued at, Unix seconds, big-endian
//   25     4     expires at, Unix seconds, big-endian
//   29     1     flags: bit 0 = multi-use; other bits must be 0
//   30     ...   fields: type(1) length(1) value, in non-decreasing type order:
//                1 device id (exactly one), 2 user id (at most one),
//                3 subject CN (at most one), 4 DNS SAN, 5 e-mail SAN,
//                6 URI SAN, 7 label (value = key length(1) key value)
//   end-16 16    tag = first 16 bytes of
//                HMAC-SHA256(key, "scepca/signed-challenge/v1" 0x00 ||
//                            every byte before the tag)
//
// The text is at most 255 characters (a PKCS#9 challengePassword's bound):
// 189 bytes, so the fields may use at most 143 bytes (each costs 2 bytes
// plus its value). docs: tests/core/signed_token_test.cc holds the
// known-answer vectors.
#ifndef SCEPCA_SERVICE_CORE_SIGNED_TOKEN_H_
#define SCEPCA_SERVICE_CORE_SIGNED_TOKEN_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "service/core/challenge_record.h"
#include "service/core/key_ring.h"

namespace scepca {

inline constexpr uint8_t kSignedTokenVersion = 1;
inline constexpr size_t kTokenIdBytes = 16;
inline constexpr size_t kTagBytes = 16;
inline constexpr size_t kTokenHeaderBytes = 30;
inline constexpr size_t kMaxTokenBytes = 189;  // 252 base64 characters.

struct SignedToken {
  uint32_t key_id = 0;
  std::string token_id;   // 16 bytes.
  absl::Time issued_at;   // Whole seconds.
  absl::Time expires_at;  // Whole seconds.
  bool multi_use = false;
  std::string device_id;  // Required.
  std::string user_id;
  IdentityBinding binding;
  std::map<std::string, std::string> labels;
};

// Serializes `token` with the key `key_id` of `ring` (which must be able to
// sign: the primary) and returns its text. Returns kInvalidArgument naming
// what is too long if the text would exceed 255 characters.
absl::StatusOr<std::string> EncodeSignedToken(const SignedToken& token,
                                              const KeyRing::Key& key);

// Decodes and verifies `text`. Returns kInvalidArgument if it is not a
// well-formed version 1 token, kUnauthenticated if its key is unknown or
// disabled or its tag does not verify. Does not look at the times.
absl::StatusOr<SignedToken> DecodeSignedToken(absl::string_view text,
                                              const KeyRing& ring);

// Returns true if `text` has the outward shape of a signed token (it may
// still fail to decode): base64 of a version 1 header.
bool LooksLikeSignedToken(absl::string_view text);

// The challenge id of a signed token: "s" + 32 hex characters of its token
// id.
std::string SignedChallengeId(absl::string_view token_id);
bool IsSignedChallengeId(absl::string_view id);

}  // namespace scepca

#endif  // SCEPCA_SERVICE_CORE_SIGNED_TOKEN_H_
