#include "service/core/signed_token.h"

#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "service/core/base64.h"
#include "service/core/hashing.h"
#include "service/core/hmac_sha256.h"
#include "service/core/status_macros.h"

namespace scepca {
namespace {

constexpr char kDomain[] = "scepca/signed-challenge/v1";
constexpr size_t kMinTokenBytes = kTokenHeaderBytes + 2 + kTagBytes;

enum FieldType : uint8_t {
  kDevice = 1,
  kUser = 2,
  kCommonName = 3,
  kDns = 4,
  kEmail = 5,
  kUri = 6,
  kLabel = 7,
};

void PutU32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

uint32_t GetU32(absl::string_view in, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) {
    v = (v << 8) | static_cast<unsigned char>(in[at + i]);
  }
  return v;
}

// HMAC-SHA256 over the domain (with its NUL) and the body, truncated.
absl::StatusOr<std::string> Tag(const KeyRing::Key& key,
                                absl::string_view body) {
  std::shared_ptr<const HmacSha256> mac = key.mac;
  if (mac == nullptr) {
    SCEPCA_ASSIGN_OR_RETURN(mac, HmacSha256::Create(key.secret->view()));
  }
  SCEPCA_ASSIGN_OR_RETURN(
      std::string tag,
      mac->Compute({absl::string_view(kDomain, sizeof(kDomain)), body}));
  tag.resize(kTagBytes);
  return tag;
}

bool PutField(std::string* out, uint8_t type, absl::string_view value) {
  if (value.size() > 255) return false;
  out->push_back(static_cast<char>(type));
  out->push_back(static_cast<char>(value.size()));
  out->append(value.data(), value.size());
  return true;
}

absl::Status TooLong(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(
      what,
      " makes the signed challenge longer than 255 characters; device_id, "
      "user_id, binding and labels together may use at most ",
      kMaxTokenBytes - kTokenHeaderBytes - kTagBytes,
      " bytes (2 bytes per value plus the value); shorten them or use kind "
      "ONE_TIME"));
}

absl::Status Malformed(absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("not a valid signed challenge: ", why));
}

}  // namespace

std::string SignedChallengeId(absl::string_view token_id) {
  return absl::StrCat("s", HexEncode(token_id));
}

bool IsSignedChallengeId(absl::string_view id) {
  if (id.size() != 1 + 2 * kTokenIdBytes || id[0] != 's') return false;
  for (char c : id.substr(1)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool LooksLikeSignedToken(absl::string_view text) {
  // The first 12 bits of the text are the version byte 0x01 and the top
  // nibble of the key id: "A" then one of the base64 digits 16..31.
  return text.size() > 26 && text[0] == 'A' &&
         ((text[1] >= 'Q' && text[1] <= 'Z') ||
          (text[1] >= 'a' && text[1] <= 'f'));
}

absl::StatusOr<std::string> EncodeSignedToken(const SignedToken& token,
                                              const KeyRing::Key& key) {
  if (token.token_id.size() != kTokenIdBytes) {
    return absl::InvalidArgumentError("token id must be 16 bytes");
  }
  if (token.device_id.empty()) {
    return absl::InvalidArgumentError("device_id is required");
  }
  std::string body;
  body.reserve(kMaxTokenBytes);
  body.push_back(static_cast<char>(kSignedTokenVersion));
  PutU32(&body, key.id);
  body.append(token.token_id);
  PutU32(&body, static_cast<uint32_t>(absl::ToUnixSeconds(token.issued_at)));
  PutU32(&body, static_cast<uint32_t>(absl::ToUnixSeconds(token.expires_at)));
  body.push_back(token.multi_use ? 1 : 0);
  bool ok = PutField(&body, kDevice, token.device_id);
  if (!token.user_id.empty()) ok = ok && PutField(&body, kUser, token.user_id);
  if (!token.binding.common_name.empty()) {
    ok = ok && PutField(&body, kCommonName, token.binding.common_name);
  }
  for (const auto& v : token.binding.dns_names)
    ok = ok && PutField(&body, kDns, v);
  for (const auto& v : token.binding.email_addresses) {
    ok = ok && PutField(&body, kEmail, v);
  }
  for (const auto& v : token.binding.uris) ok = ok && PutField(&body, kUri, v);
  for (const auto& [k, v] : token.labels) {
    if (k.size() > 255) ok = false;
    std::string label(1, static_cast<char>(k.size()));
    label += k;
    label += v;
    ok = ok && PutField(&body, kLabel, label);
  }
  if (!ok || body.size() + kTagBytes > kMaxTokenBytes) {
    return TooLong("the identity");
  }
  SCEPCA_ASSIGN_OR_RETURN(std::string tag, Tag(key, body));
  body += tag;
  return Base64Encode(body);
}

absl::StatusOr<SignedToken> DecodeSignedToken(absl::string_view text,
                                              const KeyRing& ring) {
  if (text.size() > 4 * ((kMaxTokenBytes + 2) / 3)) {
    return Malformed("too long");
  }
  absl::StatusOr<std::string> raw = Base64Decode(text);
  if (!raw.ok()) return Malformed("not canonical base64");
  const absl::string_view bytes = *raw;
  if (bytes.size() < kMinTokenBytes) return Malformed("too short");
  if (static_cast<uint8_t>(bytes[0]) != kSignedTokenVersion) {
    return Malformed("unknown version");
  }
  const uint32_t key_id = GetU32(bytes, 1);
  const KeyRing::Key* key = ring.FindVerifier(key_id);
  if (key == nullptr) {
    return absl::UnauthenticatedError(absl::StrCat(
        "signed with key ", key_id, ", which is unknown or disabled"));
  }
  const absl::string_view body = bytes.substr(0, bytes.size() - kTagBytes);
  const absl::string_view tag = bytes.substr(bytes.size() - kTagBytes);
  SCEPCA_ASSIGN_OR_RETURN(std::string expected, Tag(*key, body));
  if (!ConstantTimeEquals(expected, tag)) {
    return absl::UnauthenticatedError("signature does not verify");
  }
  SignedToken token;
  token.key_id = key_id;
  token.token_id = std::string(bytes.substr(5, kTokenIdBytes));
  token.issued_at = absl::FromUnixSeconds(GetU32(bytes, 21));
  token.expires_at = absl::FromUnixSeconds(GetU32(bytes, 25));
  const uint8_t flags = static_cast<uint8_t>(bytes[29]);
  if ((flags & ~1u) != 0) return Malformed("unknown flags");
  token.multi_use = (flags & 1u) != 0;
  size_t at = kTokenHeaderBytes;
  uint8_t last_type = 0;
  int devices = 0;
  std::string last_label_key;
  bool have_label = false;
  while (at < body.size()) {
    if (at + 2 > body.size()) return Malformed("truncated field");
    const uint8_t type = static_cast<uint8_t>(body[at]);
    const size_t len = static_cast<unsigned char>(body[at + 1]);
    if (at + 2 + len > body.size()) return Malformed("truncated field");
    const absl::string_view value = body.substr(at + 2, len);
    at += 2 + len;
    if (type < last_type || type < kDevice || type > kLabel) {
      return Malformed("fields out of order");
    }
    if ((type == kUser || type == kCommonName || type == kDevice) &&
        type == last_type) {
      return Malformed("repeated field");
    }
    last_type = type;
    // One encoding per token: no empty optional fields, labels in
    // increasing key order (as EncodeSignedToken writes them).
    if ((type == kUser || type == kCommonName) && value.empty()) {
      return Malformed("empty field");
    }
    switch (type) {
      case kDevice:
        ++devices;
        token.device_id = std::string(value);
        break;
      case kUser:
        token.user_id = std::string(value);
        break;
      case kCommonName:
        token.binding.common_name = std::string(value);
        break;
      case kDns:
        token.binding.dns_names.emplace_back(value);
        break;
      case kEmail:
        token.binding.email_addresses.emplace_back(value);
        break;
      case kUri:
        token.binding.uris.emplace_back(value);
        break;
      case kLabel: {
        if (value.empty() ||
            static_cast<unsigned char>(value[0]) + 1u > value.size()) {
          return Malformed("bad label");
        }
        const size_t klen = static_cast<unsigned char>(value[0]);
        std::string label_key(value.substr(1, klen));
        if (have_label && label_key <= last_label_key) {
          return Malformed("labels out of order");
        }
        have_label = true;
        last_label_key = label_key;
        token.labels[std::move(label_key)] =
            std::string(value.substr(1 + klen));
        break;
      }
    }
  }
  if (devices != 1 || token.device_id.empty()) {
    return Malformed("no device id");
  }
  return token;
}

}  // namespace scepca
