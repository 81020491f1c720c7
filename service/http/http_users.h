// File: http_users.h
// The accounts that may call the HTTP endpoints (the NDES page, the
// Jamf-style webhook, and optionally the step-ca webhooks), read from the
// users file, with a salted slow hash of each password.
//
// Users file (text, one account per line; lines starting with "#" and blank
// lines are ignored; it must be mode 0600 or stricter):
//
//   # scepca http users v1
//   user fleet scrypt$ln=15,r=8,p=1$<salt>$<key> ttl=60m label=template=wifi
//   user jamf  scrypt$ln=15,r=8,p=1$<salt>$<key> user=jamf-pro quota=0
//
// i.e. "user <name> <password hash> [option]...", where the options are
//   issue=yes|no  whether the account may get challenges (default yes)
//   ttl=D         lifetime of the challenges it gets (e.g. 15m, 1h, 7d;
//                 default: the server's --default-ttl)
//   user=ID       user_id of the challenges it gets
//   label=K=V     a label on the challenges it gets (repeatable)
//   quota=N       NDES page only: "password cache is full" once N of the
//                 account's challenges are outstanding (default 0: no limit)
// A name is 1-64 characters of A-Z a-z 0-9 . _ @ -; no value may contain
// whitespace. The password hash is
//   scrypt$ln=<log2 N>,r=<r>,p=<p>$<base64 16-byte salt>$<base64 32-byte key>
// made by OpenSSL's EVP_PBE_scrypt (N=2^15, r=8, p=1 by default). Write the
// file with 'challengectl http-user add', which reads the password on stdin.
#ifndef SCEPCA_SERVICE_HTTP_HTTP_USERS_H_
#define SCEPCA_SERVICE_HTTP_HTTP_USERS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "service/core/clock.h"

namespace scepca {

// scrypt cost parameters: N = 2^log_n.
struct ScryptParams {
  int log_n = 15;
  int r = 8;
  int p = 1;
};

// The shortest password 'challengectl http-user add' accepts.
inline constexpr size_t kMinHttpPasswordLength = 12;
// The longest password hashed or verified (longer ones never match).
inline constexpr size_t kMaxHttpPasswordLength = 1024;

// Returns a new salted hash of `password` in the users-file format. Returns
// kInvalidArgument for parameters outside the accepted range (log_n 10-20,
// r 1-32, p 1-16) or an over-long password, kInternal if OpenSSL fails.
absl::StatusOr<std::string> HashPassword(absl::string_view password,
                                         const ScryptParams& params = {});

// Checks the syntax of an encoded hash and returns its parameters; returns
// kInvalidArgument if it is not a well-formed scrypt hash of this format.
absl::StatusOr<ScryptParams> CheckPasswordHash(absl::string_view encoded);

// Returns true iff `password` hashes to `encoded` (compared in constant
// time). A malformed `encoded` never matches.
bool VerifyPassword(absl::string_view password, absl::string_view encoded);

// One account of the users file. Copyable value type.
struct HttpAccount {
  std::string name;
  std::string password_hash;
  bool may_issue = true;
  absl::optional<absl::Duration> ttl;  // Unset: the server's default.
  std::string user_id;
  std::map<std::string, std::string> labels;
  int quota = 0;  // 0: no limit.
};

// Returns kInvalidArgument naming the rule an account breaks (name syntax,
// a value with whitespace, ttl <= 0, quota < 0, a malformed hash, or a hash
// cheaper than 2^`min_scrypt_log_n`).
absl::Status CheckAccount(const HttpAccount& account,
                          int min_scrypt_log_n = 15);

struct UsersFileOptions {
  // The cheapest scrypt cost accepted in the file. Production keeps 15; tests
  // lower it to keep hashing fast.
  int min_scrypt_log_n = 15;
};

// Parses users-file text. Returns kInvalidArgument with the line number for a
// syntax error, an unknown option, a repeated option or label, a duplicate
// account name, or an account CheckAccount refuses.
absl::StatusOr<std::vector<HttpAccount>> ParseUsersFile(
    absl::string_view text, const UsersFileOptions& options = {});

// Returns the users-file line of `account`, without a newline.
std::string FormatAccountLine(const HttpAccount& account);

// Reads a file that holds secrets (`what` names it in errors). Returns
// kNotFound if it does not exist, kPermissionDenied if it cannot be read, and
// kFailedPrecondition if it is not a regular file or is accessible to group
// or others (it must be mode 0600 or stricter).
absl::StatusOr<std::string> ReadPrivateFile(const std::string& path,
                                            absl::string_view what);

// Reads the users file at `path`. Returns kNotFound if it does not exist,
// kPermissionDenied if it cannot be read, and kFailedPrecondition if it is
// not a regular file or is accessible to group or others.
absl::StatusOr<std::string> ReadUsersFile(const std::string& path);

// ReadUsersFile, then ParseUsersFile (errors name the path).
absl::StatusOr<std::vector<HttpAccount>> LoadUsersFile(
    const std::string& path, const UsersFileOptions& options = {});

// Returns `text` with a line for `account` appended, or, if an account of
// that name exists and `replace` is set, with its line replaced. Other lines
// (comments included) are kept. Returns kAlreadyExists if the name exists
// and !replace, and parse errors as ParseUsersFile. Sets `*replaced`.
absl::StatusOr<std::string> UpsertAccountLine(absl::string_view text,
                                              const HttpAccount& account,
                                              bool replace, bool* replaced);

// Returns `text` without the line of account `name`; kNotFound if absent.
absl::StatusOr<std::string> RemoveAccountLine(absl::string_view text,
                                              absl::string_view name);

// Writes `text` to `path` atomically (a temporary file renamed over it) with
// mode 0600.
absl::Status WriteUsersFile(const std::string& path, absl::string_view text);

// The accounts of one users file plus a short-lived cache of successful
// verifications, so that the slow hash is paid about once a minute per
// client rather than on every request. Thread-safe.
class HttpUsers {
 public:
  struct Options {
    // How long a successful verification is remembered (keyed by SHA-256 of
    // name and password, never the password itself).
    absl::Duration cache_ttl = absl::Seconds(60);
    size_t max_cache_entries = 4096;
    // At most this many hashes are computed at once (each takes 32 MiB at
    // the default cost); further requests wait.
    int max_concurrent_hashes = 4;
  };

  // `clock` must outlive this object.
  HttpUsers(std::vector<HttpAccount> accounts, const Clock* clock,
            Options options);
  HttpUsers(const HttpUsers&) = delete;
  HttpUsers& operator=(const HttpUsers&) = delete;

  // Returns the account if `password` is the password of account `name`,
  // else absl::nullopt. An unknown name costs a hash too, so that timing does
  // not tell which names exist.
  absl::optional<HttpAccount> Authenticate(absl::string_view name,
                                           absl::string_view password);

  const std::vector<HttpAccount>& accounts() const { return accounts_; }
  // How many hashes Authenticate computed (for tests of the cache).
  int64_t hash_evaluations() const;

 private:
  bool VerifyLimited(absl::string_view password, absl::string_view encoded);

  const std::vector<HttpAccount> accounts_;
  const Clock* const clock_;
  const Options options_;
  // Verified against when the name is unknown (never matches).
  std::string dummy_hash_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, absl::Time> cache_ ABSL_GUARDED_BY(mu_);
  int hashes_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t hash_evaluations_ ABSL_GUARDED_BY(mu_) = 0;
};

// Holds the current HttpUsers of a users file while SIGHUP reloads it.
// Thread-safe.
class HttpUsersHolder {
 public:
  // Loads `path` (see LoadUsersFile). `clock` must outlive the holder.
  static absl::StatusOr<std::unique_ptr<HttpUsersHolder>> Load(
      std::string path, UsersFileOptions file_options,
      HttpUsers::Options options, const Clock* clock);

  // Re-reads the file; on error the current accounts stay and the error is
  // returned. A reload empties the verification cache.
  absl::Status Reload();

  // The current accounts; callers keep the snapshot for one request.
  std::shared_ptr<HttpUsers> Get() const;
  const std::string& path() const { return path_; }

 private:
  HttpUsersHolder(std::string path, UsersFileOptions file_options,
                  HttpUsers::Options options, const Clock* clock)
      : path_(std::move(path)),
        file_options_(file_options),
        options_(options),
        clock_(clock) {}

  const std::string path_;
  const UsersFileOptions file_options_;
  const HttpUsers::Options options_;
  const Clock* const clock_;
  mutable absl::Mutex mu_;
  std::shared_ptr<HttpUsers> users_ ABSL_GUARDED_BY(mu_);
};

}  // namespace scepca

#endif  // SCEPCA_SERVICE_HTTP_HTTP_USERS_H_
