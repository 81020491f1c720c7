#include "service/http/http_users.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "service/core/base64.h"
#include "service/core/hashing.h"
#include "service/core/random.h"
#include "service/core/status_macros.h"
#include "service/flags/flag_set.h"

namespace scepca {
namespace {

constexpr absl::string_view kScheme = "scrypt";
constexpr size_t kSaltBytes = 16;
constexpr size_t kKeyBytes = 32;
constexpr size_t kMaxNameLength = 64;
constexpr int kMinLogN = 10;
constexpr int kMaxLogN = 20;
constexpr int kMaxR = 32;
constexpr int kMaxP = 16;
constexpr int kMaxQuota = 1'000'000;

absl::Status CheckParams(const ScryptParams& params) {
  if (params.log_n < kMinLogN || params.log_n > kMaxLogN) {
    return absl::InvalidArgumentError(absl::StrCat(
        "scrypt ln must be between ", kMinLogN, " and ", kMaxLogN));
  }
  if (params.r < 1 || params.r > kMaxR) {
    return absl::InvalidArgumentError(
        absl::StrCat("scrypt r must be between 1 and ", kMaxR));
  }
  if (params.p < 1 || params.p > kMaxP) {
    return absl::InvalidArgumentError(
        absl::StrCat("scrypt p must be between 1 and ", kMaxP));
  }
  return absl::OkStatus();
}

// Derives the key; `params` must have passed CheckParams.
absl::StatusOr<std::string> Scrypt(absl::string_view password,
                                   absl::string_view salt,
                                   const ScryptParams& params) {
  const uint64_t n = uint64_t{1} << params.log_n;
  const uint64_t r = static_cast<uint64_t>(params.r);
  const uint64_t p = static_cast<uint64_t>(params.p);
  // OpenSSL refuses unless B (128 r p) + V (128 r (N + 2)) fit in maxmem.
  const uint64_t maxmem = 128 * r * (n + 2 + p) + 65536;
  std::string key(kKeyBytes, '\0');
  if (EVP_PBE_scrypt(password.data(), password.size(),
                     reinterpret_cast<const unsigned char*>(salt.data()),
                     salt.size(), n, r, p, maxmem,
                     reinterpret_cast<unsigned char*>(key.data()),
                     key.size()) != 1) {
    return absl::InternalError("EVP_PBE_scrypt failed");
  }
  return key;
}

struct DecodedHash {
  ScryptParams params;
  std::string salt;
  std::string key;
};

absl::StatusOr<DecodedHash> DecodeHash(absl::string_view encoded) {
  const std::vector<absl::string_view> parts = absl::StrSplit(encoded, '$');
  if (parts.size() != 4 || parts[0] != kScheme) {
    return absl::InvalidArgumentError(
        "password hash is not scrypt$ln=N,r=R,p=P$<salt>$<key>");
  }
  DecodedHash out;
  const std::vector<absl::string_view> params = absl::StrSplit(parts[1], ',');
  auto read = [](absl::string_view field, absl::string_view name, int* value) {
    return absl::ConsumePrefix(&field, name) && !field.empty() &&
           absl::ascii_isdigit(static_cast<unsigned char>(field[0])) &&
           absl::SimpleAtoi(field, value);
  };
  if (params.size() != 3 || !read(params[0], "ln=", &out.params.log_n) ||
      !read(params[1], "r=", &out.params.r) ||
      !read(params[2], "p=", &out.params.p)) {
    return absl::InvalidArgumentError(
        "password hash parameters are not ln=N,r=R,p=P");
  }
  SCEPCA_RETURN_IF_ERROR(CheckParams(out.params));
  absl::StatusOr<std::string> salt = Base64Decode(parts[2]);
  absl::StatusOr<std::string> key = Base64Decode(parts[3]);
  if (!salt.ok() || salt->size() != kSaltBytes) {
    return absl::InvalidArgumentError(
        "password hash salt is not base64 of 16 bytes");
  }
  if (!key.ok() || key->size() != kKeyBytes) {
    return absl::InvalidArgumentError(
        "password hash key is not base64 of 32 bytes");
  }
  out.salt = *std::move(salt);
  out.key = *std::move(key);
  return out;
}

bool IsNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' ||
         c == '_' || c == '@' || c == '-';
}

absl::Status CheckValue(absl::string_view value, absl::string_view what) {
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (absl::ascii_isspace(u) || u < 0x20 || u == 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " contains whitespace or a control character"));
    }
  }
  return absl::OkStatus();
}

bool IsSkippedLine(absl::string_view line) {
  line = absl::StripAsciiWhitespace(line);
  return line.empty() || line[0] == '#';
}

// Parses one account line (not a comment).
absl::StatusOr<HttpAccount> ParseAccountLine(absl::string_view line,
                                             const UsersFileOptions& options) {
  const std::vector<absl::string_view> fields =
      absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
  if (fields.size() < 3 || fields[0] != "user") {
    return absl::InvalidArgumentError(
        "expected 'user <name> <password hash> [option]...'");
  }
  HttpAccount account;
  account.name = std::string(fields[1]);
  account.password_hash = std::string(fields[2]);
  std::set<std::string> seen;
  for (size_t i = 3; i < fields.size(); ++i) {
    const absl::string_view field = fields[i];
    const size_t eq = field.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("option '", field, "' is not KEY=VALUE"));
    }
    const std::string key(field.substr(0, eq));
    const absl::string_view value = field.substr(eq + 1);
    if (key != "label" && !seen.insert(key).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("option '", key, "' is given twice"));
    }
    if (key == "issue") {
      if (value == "yes") {
        account.may_issue = true;
      } else if (value == "no") {
        account.may_issue = false;
      } else {
        return absl::InvalidArgumentError("issue must be yes or no");
      }
    } else if (key == "ttl") {
      absl::StatusOr<absl::Duration> ttl = ParseDurationFlag(value);
      if (!ttl.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("ttl: ", ttl.status().message()));
      }
      account.ttl = *ttl;
    } else if (key == "user") {
      account.user_id = std::string(value);
    } else if (key == "label") {
      const size_t label_eq = value.find('=');
      if (label_eq == absl::string_view::npos || label_eq == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("label '", value, "' is not label=KEY=VALUE"));
      }
      const std::string label_key(value.substr(0, label_eq));
      if (!account.labels
               .emplace(label_key, std::string(value.substr(label_eq + 1)))
               .second) {
        return absl::InvalidArgumentError(
            absl::StrCat("label '", label_key, "' is given twice"));
      }
    } else if (key == "quota") {
      if (!absl::SimpleAtoi(value, &account.quota)) {
        return absl::InvalidArgumentError("quota must be a number");
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown option '", key, "' (issue, ttl, user, label, quota)"));
    }
  }
  SCEPCA_RETURN_IF_ERROR(CheckAccount(account, options.min_scrypt_log_n));
  return account;
}

// Splits text into lines (without their "\n").
std::vector<absl::string_view> Lines(absl::string_view text) {
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

// The account name of an account line, or "" for a comment or blank line.
absl::string_view LineName(absl::string_view line) {
  if (IsSkippedLine(line)) return "";
  const std::vector<absl::string_view> fields =
      absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
  return fields.size() >= 2 ? fields[1] : "";
}

}  // namespace

absl::StatusOr<std::string> HashPassword(absl::string_view password,
                                         const ScryptParams& params) {
  SCEPCA_RETURN_IF_ERROR(CheckParams(params));
  if (password.size() > kMaxHttpPasswordLength) {
    return absl::InvalidArgumentError(absl::StrCat(
        "password is longer than ", kMaxHttpPasswordLength, " bytes"));
  }
  SCEPCA_ASSIGN_OR_RETURN(std::string salt, SecureRandomBytes(kSaltBytes));
  SCEPCA_ASSIGN_OR_RETURN(std::string key, Scrypt(password, salt, params));
  std::string out = absl::StrCat(kScheme, "$ln=", params.log_n, ",r=", params.r,
                                 ",p=", params.p, "$", Base64Encode(salt), "$",
                                 Base64Encode(key));
  OPENSSL_cleanse(key.data(), key.size());
  return out;
}

absl::StatusOr<ScryptParams> CheckPasswordHash(absl::string_view encoded) {
  SCEPCA_ASSIGN_OR_RETURN(DecodedHash decoded, DecodeHash(encoded));
  return decoded.params;
}

bool VerifyPassword(absl::string_view password, absl::string_view encoded) {
  absl::StatusOr<DecodedHash> decoded = DecodeHash(encoded);
  if (!decoded.ok()) return false;
  // An over-long password is still hashed (truncated) so that its timing
  // matches, and then refused.
  const bool too_long = password.size() > kMaxHttpPasswordLength;
  absl::StatusOr<std::string> key =
      Scrypt(password.substr(0, kMaxHttpPasswordLength), decoded->salt,
             decoded->params);
  if (!key.ok()) return false;
  const bool equal = ConstantTimeEquals(*key, decoded->key);
  OPENSSL_cleanse(key->data(), key->size());
  return equal && !too_long;
}

absl::Status CheckAccount(const HttpAccount& account, int min_scrypt_log_n) {
  if (account.name.empty() || account.name.size() > kMaxNameLength) {
    return absl::InvalidArgumentError(absl::StrCat(
        "account name must be 1 to ", kMaxNameLength, " characters"));
  }
  for (char c : account.name) {
    if (!IsNameChar(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat("account name '", account.name,
                       "' may only contain A-Z a-z 0-9 . _ @ -"));
    }
  }
  absl::StatusOr<ScryptParams> params =
      CheckPasswordHash(account.password_hash);
  if (!params.ok()) return params.status();
  if (params->log_n < min_scrypt_log_n) {
    return absl::InvalidArgumentError(
        absl::StrCat("password hash cost ln=", params->log_n,
                     " is below the minimum ln=", min_scrypt_log_n));
  }
  if (account.ttl.has_value() && *account.ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("ttl must be positive");
  }
  if (account.quota < 0 || account.quota > kMaxQuota) {
    return absl::InvalidArgumentError(
        absl::StrCat("quota must be between 0 and ", kMaxQuota));
  }
  SCEPCA_RETURN_IF_ERROR(CheckValue(account.user_id, "user"));
  for (const auto& [key, value] : account.labels) {
    if (key.empty()) return absl::InvalidArgumentError("label key is empty");
    SCEPCA_RETURN_IF_ERROR(CheckValue(key, "label key"));
    if (key.find('=') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("label key '", key, "' contains '='"));
    }
    SCEPCA_RETURN_IF_ERROR(CheckValue(value, absl::StrCat("label ", key)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<HttpAccount>> ParseUsersFile(
    absl::string_view text, const UsersFileOptions& options) {
  std::vector<HttpAccount> accounts;
  std::set<std::string> names;
  int line_number = 0;
  for (absl::string_view line : Lines(text)) {
    ++line_number;
    if (IsSkippedLine(line)) continue;
    absl::StatusOr<HttpAccount> account = ParseAccountLine(line, options);
    if (!account.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_number, ": ", account.status().message()));
    }
    if (!names.insert(account->name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_number, ": account '", account->name,
                       "' appears twice"));
    }
    accounts.push_back(*std::move(account));
  }
  return accounts;
}

std::string FormatAccountLine(const HttpAccount& account) {
  std::string line =
      absl::StrCat("user ", account.name, " ", account.password_hash);
  if (!account.may_issue) absl::StrAppend(&line, " issue=no");
  if (account.ttl.has_value()) {
    absl::StrAppend(&line, " ttl=", absl::FormatDuration(*account.ttl));
  }
  if (!account.user_id.empty()) {
    absl::StrAppend(&line, " user=", account.user_id);
  }
  for (const auto& [key, value] : account.labels) {
    absl::StrAppend(&line, " label=", key, "=", value);
  }
  if (account.quota != 0) absl::StrAppend(&line, " quota=", account.quota);
  return line;
}

absl::StatusOr<std::string> ReadPrivateFile(const std::string& path,
                                            absl::string_view what) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    const int err = errno;
    const std::string msg =
        absl::StrCat("cannot open ", what, " ", path, ": ", std::strerror(err));
    if (err == ENOENT) return absl::NotFoundError(msg);
    if (err == EACCES) return absl::PermissionDeniedError(msg);
    return absl::FailedPreconditionError(msg);
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat(what, " ", path, " is not a regular file"));
  }
  if ((st.st_mode & 077) != 0) {
    close(fd);
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s %s has mode %04o; it must not be accessible to group or "
        "others (chmod 600)",
        what, path, st.st_mode & 07777));
  }
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) {
    text.append(buf, static_cast<size_t>(n));
  }
  const int err = errno;
  close(fd);
  if (n < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot read ", what, " ", path, ": ", std::strerror(err)));
  }
  return text;
}

absl::StatusOr<std::string> ReadUsersFile(const std::string& path) {
  return ReadPrivateFile(path, "users file");
}

absl::StatusOr<std::vector<HttpAccount>> LoadUsersFile(
    const std::string& path, const UsersFileOptions& options) {
  SCEPCA_ASSIGN_OR_RETURN(std::string text, ReadUsersFile(path));
  absl::StatusOr<std::vector<HttpAccount>> accounts =
      ParseUsersFile(text, options);
  if (!accounts.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", accounts.status().message()));
  }
  return accounts;
}

absl::StatusOr<std::string> UpsertAccountLine(absl::string_view text,
                                              const HttpAccount& account,
                                              bool replace, bool* replaced) {
  *replaced = false;
  // Any cost is fine for editing: the server applies its own minimum.
  SCEPCA_RETURN_IF_ERROR(
      ParseUsersFile(text, {.min_scrypt_log_n = kMinLogN}).status());
  SCEPCA_RETURN_IF_ERROR(CheckAccount(account, kMinLogN));
  std::vector<std::string> out;
  for (absl::string_view line : Lines(text)) {
    if (LineName(line) == account.name) {
      if (!replace) {
        return absl::AlreadyExistsError(
            absl::StrCat("account '", account.name,
                         "' exists (use --replace to change it)"));
      }
      out.push_back(FormatAccountLine(account));
      *replaced = true;
    } else {
      out.emplace_back(line);
    }
  }
  if (!*replaced) {
    if (out.empty()) {
      out.emplace_back(
          "# scepca http users v1: user <name> <password hash> [option]...");
    }
    out.push_back(FormatAccountLine(account));
  }
  return absl::StrCat(absl::StrJoin(out, "\n"), "\n");
}

absl::StatusOr<std::string> RemoveAccountLine(absl::string_view text,
                                              absl::string_view name) {
  SCEPCA_RETURN_IF_ERROR(
      ParseUsersFile(text, {.min_scrypt_log_n = kMinLogN}).status());
  std::vector<absl::string_view> out;
  bool found = false;
  for (absl::string_view line : Lines(text)) {
    if (LineName(line) == name) {
      found = true;
    } else {
      out.push_back(line);
    }
  }
  if (!found) {
    return absl::NotFoundError(absl::StrCat("no account '", name, "'"));
  }
  return out.empty() ? std::string()
                     : absl::StrCat(absl::StrJoin(out, "\n"), "\n");
}

absl::Status WriteUsersFile(const std::string& path, absl::string_view text) {
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  const int fd =
      open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create ", tmp, ": ", std::strerror(errno)));
  }
  size_t off = 0;
  bool ok = fchmod(fd, 0600) == 0;
  while (ok && off < text.size()) {
    const ssize_t n = write(fd, text.data() + off, text.size() - off);
    if (n <= 0) {
      ok = false;
    } else {
      off += static_cast<size_t>(n);
    }
  }
  ok = ok && fsync(fd) == 0;
  const int err = errno;
  close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    const int rename_err = ok ? errno : err;
    unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("cannot write users file ", path,
                                            ": ", std::strerror(rename_err)));
  }
  return absl::OkStatus();
}

HttpUsers::HttpUsers(std::vector<HttpAccount> accounts, const Clock* clock,
                     Options options)
    : accounts_(std::move(accounts)), clock_(clock), options_(options) {
  // The dummy costs what the accounts' hashes cost (the first one's
  // parameters; the default if there is none).
  ScryptParams params;
  if (!accounts_.empty()) {
    absl::StatusOr<ScryptParams> first =
        CheckPasswordHash(accounts_.front().password_hash);
    if (first.ok()) params = *first;
  }
  dummy_hash_ = absl::StrCat(kScheme, "$ln=", params.log_n, ",r=", params.r,
                             ",p=", params.p, "$",
                             Base64Encode(std::string(kSaltBytes, '\0')), "$",
                             Base64Encode(std::string(kKeyBytes, '\0')));
}

int64_t HttpUsers::hash_evaluations() const {
  absl::MutexLock lock(&mu_);
  return hash_evaluations_;
}

bool HttpUsers::VerifyLimited(absl::string_view password,
                              absl::string_view encoded) {
  {
    mu_.LockWhen(absl::Condition(
        +[](HttpUsers* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
          return self->hashes_in_flight_ < self->options_.max_concurrent_hashes;
        },
        this));
    ++hashes_in_flight_;
    ++hash_evaluations_;
    mu_.Unlock();
  }
  const bool ok = VerifyPassword(password, encoded);
  absl::MutexLock lock(&mu_);
  --hashes_in_flight_;
  return ok;
}

absl::optional<HttpAccount> HttpUsers::Authenticate(
    absl::string_view name, absl::string_view password) {
  const HttpAccount* account = nullptr;
  for (const HttpAccount& a : accounts_) {
    if (a.name == name) account = &a;
  }
  const std::string cache_key =
      Sha256Parts({"scepca/http-user-cache/v1", name, password});
  const absl::Time now = clock_->Now();
  if (account != nullptr) {
    absl::MutexLock lock(&mu_);
    auto it = cache_.find(cache_key);
    if (it != cache_.end()) {
      if (now < it->second) return *account;
      cache_.erase(it);
    }
  }
  const bool ok = VerifyLimited(
      password, account != nullptr ? absl::string_view(account->password_hash)
                                   : absl::string_view(dummy_hash_));
  if (!ok || account == nullptr) return absl::nullopt;
  absl::MutexLock lock(&mu_);
  if (cache_.size() >= options_.max_cache_entries) {
    absl::erase_if(cache_,
                   [now](const auto& entry) { return entry.second <= now; });
    if (cache_.size() >= options_.max_cache_entries) cache_.clear();
  }
  if (options_.cache_ttl > absl::ZeroDuration()) {
    cache_[cache_key] = now + options_.cache_ttl;
  }
  return *account;
}

absl::StatusOr<std::unique_ptr<HttpUsersHolder>> HttpUsersHolder::Load(
    std::string path, UsersFileOptions file_options, HttpUsers::Options options,
    const Clock* clock) {
  std::unique_ptr<HttpUsersHolder> holder(
      new HttpUsersHolder(std::move(path), file_options, options, clock));
  SCEPCA_RETURN_IF_ERROR(holder->Reload());
  return holder;
}

absl::Status HttpUsersHolder::Reload() {
  SCEPCA_ASSIGN_OR_RETURN(std::vector<HttpAccount> accounts,
                          LoadUsersFile(path_, file_options_));
  auto next =
      std::make_shared<HttpUsers>(std::move(accounts), clock_, options_);
  absl::MutexLock lock(&mu_);
  users_ = std::move(next);
  return absl::OkStatus();
}

std::shared_ptr<HttpUsers> HttpUsersHolder::Get() const {
  absl::MutexLock lock(&mu_);
  return users_;
}

}  // namespace scepca
