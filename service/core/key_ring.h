// File: key_ring.h
// HMAC-SHA256 keys for signed challenges, identified by 32-bit key ids, with a
// state each: exactly one primary (signs and verifies), any number enabled
// (verify only, e.g. the previous primary during a rotation) or disabled
// (kept in the file, refused everywhere).
//
// Key file format (text, one key per line, "#" comments):
//
//   # scepca key ring v1
//   key 3735928559 primary 7dG1o0VJ...base64 of >= 32 secret bytes...=
//   key 2271560481 enabled Qm9vZ3Vz...
//
// i.e. "key <id 1..4294967295> <primary|enabled|disabled> <base64 secret>".
// A file readable or writable by group or others is refused.
#ifndef SCEPCA_SERVICE_CORE_KEY_RING_H_
#define SCEPCA_SERVICE_CORE_KEY_RING_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "service/core/hmac_sha256.h"
#include "service/core/secret_bytes.h"

namespace scepca {

enum class KeyState { kPrimary, kEnabled, kDisabled };

absl::string_view KeyStateName(KeyState state);

inline constexpr size_t kMinKeyBytes = 32;

// An immutable set of keys. Thread-safe (const).
class KeyRing {
 public:
  struct Key {
    uint32_t id = 0;
    KeyState state = KeyState::kEnabled;
    std::shared_ptr<const SecretBytes> secret;
    // `secret` set up for signing and verifying (see hmac_sha256.h).
    std::shared_ptr<const HmacSha256> mac;
  };

  // Parses the key file format. Returns kInvalidArgument (with the line
  // number) for a syntax error, a key shorter than 32 bytes, a duplicate key
  // id, no key at all, or not exactly one primary key.
  static absl::StatusOr<KeyRing> Parse(absl::string_view text);

  // Reads and parses `path`. Returns kFailedPrecondition if the file is
  // accessible to group or others (it must be 0600 or stricter), kNotFound /
  // kPermissionDenied if it cannot be read.
  static absl::StatusOr<KeyRing> LoadFile(const std::string& path);
  // LoadFile for the key management commands: a missing file is an empty
  // ring, and a ring without a primary is accepted.
  static absl::StatusOr<KeyRing> LoadFileForEditing(const std::string& path);

  // Like Parse but accepts an empty ring or one without a primary (for the
  // key management commands, which are building one).
  static absl::StatusOr<KeyRing> ParseForEditing(absl::string_view text);

  // The key file text.
  std::string Serialize() const;

  // Returns the primary key (signing), or null if there is none.
  const Key* primary() const;
  // Returns the key with `id` if it may verify (primary or enabled).
  const Key* FindVerifier(uint32_t id) const;
  const std::vector<Key>& keys() const { return keys_; }

  // Key management (on a copy being edited).
  // Adds a new random key; primary if it is the first key. Returns its id.
  absl::StatusOr<uint32_t> Generate();
  // Makes `id` primary; the old primary becomes enabled.
  absl::Status Promote(uint32_t id);
  // Disables `id`; the primary cannot be disabled.
  absl::Status Disable(uint32_t id);

 private:
  static absl::StatusOr<KeyRing> ParseImpl(absl::string_view text,
                                           bool for_editing);
  static absl::StatusOr<KeyRing> LoadFileImpl(const std::string& path,
                                              bool for_editing);
  std::vector<Key> keys_;
};

// Writes `ring` to `path` atomically (a temporary file renamed over it) with
// mode 0600.
absl::Status WriteKeyFile(const std::string& path, const KeyRing& ring);

// Holds the current key ring for readers while a reload swaps it.
// Thread-safe.
class KeyRingHolder {
 public:
  explicit KeyRingHolder(KeyRing ring)
      : ring_(std::make_shared<const KeyRing>(std::move(ring))) {}
  std::shared_ptr<const KeyRing> Get() const {
    absl::MutexLock lock(&mu_);
    return ring_;
  }
  void Set(KeyRing ring) {
    auto next = std::make_shared<const KeyRing>(std::move(ring));
    absl::MutexLock lock(&mu_);
    ring_ = std::move(next);
    ++generation_;
  }
  // How many times the ring was replaced.
  int64_t generation() const {
    absl::MutexLock lock(&mu_);
    return generation_;
  }

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<const KeyRing> ring_ ABSL_GUARDED_BY(mu_);
  int64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace scepca

#endif  // SCEPCA_SERVICE_CORE_KEY_RING_H_
