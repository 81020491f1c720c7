#include "service/core/key_ring.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "service/core/base64.h"
#include "service/core/random.h"
#include "service/core/status_macros.h"

namespace scepca {
namespace {

absl::StatusOr<KeyState> ParseState(absl::string_view s) {
  if (s == "primary") return KeyState::kPrimary;
  if (s == "enabled") return KeyState::kEnabled;
  if (s == "disabled") return KeyState::kDisabled;
  return absl::InvalidArgumentError(
      absl::StrCat("state '", s, "' is not primary, enabled or disabled"));
}

}  // namespace

absl::string_view KeyStateName(KeyState state) {
  switch (state) {
    case KeyState::kPrimary:
      return "primary";
    case KeyState::kEnabled:
      return "enabled";
    case KeyState::kDisabled:
      return "disabled";
  }
  return "unknown";
}

absl::StatusOr<KeyRing> KeyRing::Parse(absl::string_view text) {
  return ParseImpl(text, /*for_editing=*/false);
}

absl::StatusOr<KeyRing> KeyRing::ParseForEditing(absl::string_view text) {
  return ParseImpl(text, /*for_editing=*/true);
}

absl::StatusOr<KeyRing> KeyRing::ParseImpl(absl::string_view text,
                                           bool for_editing) {
  KeyRing ring;
  std::set<uint32_t> ids;
  int primaries = 0;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> f =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    auto error = [line_no](absl::string_view what) {
      return absl::InvalidArgumentError(
          absl::StrCat("key file line ", line_no, ": ", what));
    };
    if (f.size() != 4 || f[0] != "key") {
      return error("expected 'key <id> <state> <base64 secret>'");
    }
    uint32_t id = 0;
    if (!absl::SimpleAtoi(f[1], &id) || id == 0) {
      return error("key id must be a number from 1 to 4294967295");
    }
    if (!ids.insert(id).second) {
      return error(absl::StrCat("duplicate key id ", id));
    }
    absl::StatusOr<KeyState> state = ParseState(f[2]);
    if (!state.ok()) return error(state.status().message());
    absl::StatusOr<std::string> secret = Base64Decode(f[3]);
    if (!secret.ok()) return error("secret is not valid base64");
    if (secret->size() < kMinKeyBytes) {
      return error(absl::StrCat("key ", id, " is ", secret->size(),
                                " bytes; at least ", kMinKeyBytes,
                                " are required"));
    }
    if (*state == KeyState::kPrimary) ++primaries;
    absl::StatusOr<std::shared_ptr<const HmacSha256>> mac =
        HmacSha256::Create(*secret);
    if (!mac.ok()) return mac.status();
    ring.keys_.push_back(
        {id, *state, std::make_shared<const SecretBytes>(*std::move(secret)),
         *std::move(mac)});
  }
  if (!for_editing) {
    if (ring.keys_.empty()) {
      return absl::InvalidArgumentError("key file has no keys");
    }
    if (primaries != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "key file must have exactly one primary key; it has ", primaries));
    }
  } else if (primaries > 1) {
    return absl::InvalidArgumentError("key file has more than one primary key");
  }
  return ring;
}

absl::StatusOr<KeyRing> KeyRing::LoadFile(const std::string& path) {
  return LoadFileImpl(path, /*for_editing=*/false);
}

absl::StatusOr<KeyRing> KeyRing::LoadFileForEditing(const std::string& path) {
  absl::StatusOr<KeyRing> ring = LoadFileImpl(path, /*for_editing=*/true);
  if (absl::IsNotFound(ring.status())) return KeyRing();
  return ring;
}

absl::StatusOr<KeyRing> KeyRing::LoadFileImpl(const std::string& path,
                                              bool for_editing) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    const int err = errno;
    const std::string msg =
        absl::StrCat("cannot open key file ", path, ": ", std::strerror(err));
    if (err == ENOENT) return absl::NotFoundError(msg);
    if (err == EACCES) return absl::PermissionDeniedError(msg);
    return absl::FailedPreconditionError(msg);
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("key file ", path, " is not a regular file"));
  }
  if ((st.st_mode & 077) != 0) {
    close(fd);
    return absl::FailedPreconditionError(absl::StrFormat(
        "key file %s has mode %04o; it must not be accessible to group or "
        "others (chmod 600)",
        path, st.st_mode & 07777));
  }
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) text.append(buf, n);
  close(fd);
  absl::StatusOr<KeyRing> ring = ParseImpl(text, for_editing);
  OPENSSL_cleanse(text.data(), text.size());
  if (!ring.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", ring.status().message()));
  }
  return ring;
}

std::string KeyRing::Serialize() const {
  std::string out = "# scepca key ring v1: key <id> <state> <base64 secret>\n";
  for (const Key& k : keys_) {
    absl::StrAppend(&out, "key ", k.id, " ", KeyStateName(k.state), " ",
                    Base64Encode(k.secret->view()), "\n");
  }
  return out;
}

const KeyRing::Key* KeyRing::primary() const {
  for (const Key& k : keys_) {
    if (k.state == KeyState::kPrimary) return &k;
  }
  return nullptr;
}

const KeyRing::Key* KeyRing::FindVerifier(uint32_t id) const {
  for (const Key& k : keys_) {
    if (k.id == id) return k.state == KeyState::kDisabled ? nullptr : &k;
  }
  return nullptr;
}

absl::StatusOr<uint32_t> KeyRing::Generate() {
  uint32_t id = 0;
  while (true) {
    SCEPCA_ASSIGN_OR_RETURN(std::string raw, SecureRandomBytes(4));
    id = (static_cast<uint32_t>(static_cast<unsigned char>(raw[0])) << 24) |
         (static_cast<uint32_t>(static_cast<unsigned char>(raw[1])) << 16) |
         (static_cast<uint32_t>(static_cast<unsigned char>(raw[2])) << 8) |
         static_cast<uint32_t>(static_cast<unsigned char>(raw[3]));
    bool taken = id == 0;
    for (const Key& k : keys_) taken = taken || k.id == id;
    if (!taken) break;
  }
  SCEPCA_ASSIGN_OR_RETURN(std::string secret, SecureRandomBytes(kMinKeyBytes));
  SCEPCA_ASSIGN_OR_RETURN(std::shared_ptr<const HmacSha256> mac,
                          HmacSha256::Create(secret));
  keys_.push_back({id, keys_.empty() ? KeyState::kPrimary : KeyState::kEnabled,
                   std::make_shared<const SecretBytes>(std::move(secret)),
                   std::move(mac)});
  return id;
}

absl::Status KeyRing::Promote(uint32_t id) {
  Key* target = nullptr;
  for (Key& k : keys_) {
    if (k.id == id) target = &k;
  }
  if (target == nullptr) {
    return absl::NotFoundError(absl::StrCat("no key with id ", id));
  }
  for (Key& k : keys_) {
    if (k.state == KeyState::kPrimary) k.state = KeyState::kEnabled;
  }
  target->state = KeyState::kPrimary;
  return absl::OkStatus();
}

absl::Status KeyRing::Disable(uint32_t id) {
  for (Key& k : keys_) {
    if (k.id != id) continue;
    if (k.state == KeyState::kPrimary) {
      return absl::FailedPreconditionError(absl::StrCat(
          "key ", id, " is primary; promote another key before disabling it"));
    }
    k.state = KeyState::kDisabled;
    return absl::OkStatus();
  }
  return absl::NotFoundError(absl::StrCat("no key with id ", id));
}

absl::Status WriteKeyFile(const std::string& path, const KeyRing& ring) {
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create ", tmp, ": ", std::strerror(errno)));
  }
  std::string text = ring.Serialize();
  size_t off = 0;
  bool ok = fchmod(fd, 0600) == 0;
  while (ok && off < text.size()) {
    ssize_t n = write(fd, text.data() + off, text.size() - off);
    if (n <= 0)
      ok = false;
    else
      off += static_cast<size_t>(n);
  }
  ok = ok && fsync(fd) == 0;
  close(fd);
  OPENSSL_cleanse(text.data(), text.size());
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("cannot write key file ", path,
                                            ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace scepca
