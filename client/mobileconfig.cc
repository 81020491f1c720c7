#include "client/mobileconfig.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/doctor.h"
#include "google/protobuf/util/time_util.h"
#include "service/core/random.h"
#include "service/flags/flag_set.h"

namespace scepca {
namespace {

namespace v1 = ::scep::challenge::v1;

// Apple's defaults for PENDING answers.
constexpr int kRetries = 3;
constexpr int kRetryDelaySeconds = 10;
// Apple's Key Usage: 1 signing, 4 encryption.
constexpr int kKeyUsageSignAndEncrypt = 5;

// True if `text` is UTF-8 without control characters (which XML 1.0 cannot
// carry).
bool IsCleanUtf8(absl::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f) return false;
      ++i;
      continue;
    }
    size_t n = 0;
    uint32_t cp = 0;
    if ((c & 0xe0) == 0xc0) {
      n = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= text.size()) return false;
    for (size_t j = 1; j <= n; ++j) {
      const unsigned char d = static_cast<unsigned char>(text[i + j]);
      if ((d & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    const uint32_t min = n == 1 ? 0x80 : n == 2 ? 0x800 : 0x10000;
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
        (cp >= 0x80 && cp < 0xa0)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

absl::Status CheckText(absl::string_view flag, absl::string_view value) {
  if (!IsCleanUtf8(value)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, " must be UTF-8 text without control characters"));
  }
  return absl::OkStatus();
}

std::string Indent(int depth) { return std::string(depth * 2, ' '); }

void Key(std::string* out, int depth, absl::string_view key) {
  absl::StrAppend(out, Indent(depth), "<key>", XmlEscape(key), "</key>\n");
}
void String(std::string* out, int depth, absl::string_view value) {
  absl::StrAppend(out, Indent(depth), "<string>", XmlEscape(value),
                  "</string>\n");
}
void Integer(std::string* out, int depth, int value) {
  absl::StrAppend(out, Indent(depth), "<integer>", value, "</integer>\n");
}

// The directory part of `path` ("." if none).
std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string BaseName(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// A private temporary file next to the output, renamed over it when
// complete; removed unless Commit() succeeds.
class PendingFile {
 public:
  PendingFile() = default;
  PendingFile(const PendingFile&) = delete;
  PendingFile& operator=(const PendingFile&) = delete;
  ~PendingFile() {
    if (fd_ >= 0) close(fd_);
    if (!temp_.empty()) unlink(temp_.c_str());
  }

  absl::Status Open(const std::string& path) {
    path_ = path;
    std::string temp =
        absl::StrCat(DirName(path), "/.", BaseName(path), ".XXXXXX");
    fd_ = mkstemp(temp.data());
    if (fd_ < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--out ", path, ": cannot create a file in ",
                       DirName(path), ": ", std::strerror(errno)));
    }
    temp_ = temp;
    if (fchmod(fd_, 0600) != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--out ", path, ": cannot make it private: ", std::strerror(errno)));
    }
    return absl::OkStatus();
  }

  absl::Status Commit(absl::string_view data) {
    size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = write(fd_, data.data() + done, data.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--out ", path_, ": write failed: ", std::strerror(errno)));
      }
      done += static_cast<size_t>(n);
    }
    if (fsync(fd_) != 0 || close(fd_) != 0) {
      fd_ = -1;
      return absl::InvalidArgumentError(absl::StrCat(
          "--out ", path_, ": write failed: ", std::strerror(errno)));
    }
    fd_ = -1;
    if (rename(temp_.c_str(), path_.c_str()) != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--out ", path_, ": cannot replace it: ", std::strerror(errno)));
    }
    temp_.clear();
    return absl::OkStatus();
  }

 private:
  std::string path_;
  std::string temp_;
  int fd_ = -1;
};

}  // namespace

std::string XmlEscape(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

absl::StatusOr<std::string> NewUuid() {
  absl::StatusOr<std::string> bytes = SecureRandomBytes(16);
  if (!bytes.ok()) return bytes.status();
  std::string& b = *bytes;
  b[6] = static_cast<char>((static_cast<unsigned char>(b[6]) & 0x0f) | 0x40);
  b[8] = static_cast<char>((static_cast<unsigned char>(b[8]) & 0x3f) | 0x80);
  std::string out;
  for (size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    absl::StrAppendFormat(&out, "%02X", static_cast<unsigned char>(b[i]));
  }
  return out;
}

std::string BuildMobileconfig(const ScepProfile& p) {
  const std::string profile_id =
      absl::StrCat("scepca.mobileconfig.", p.profile_uuid);
  std::string out =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
      "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
      "<plist version=\"1.0\">\n"
      "<dict>\n";
  Key(&out, 1, "PayloadContent");
  absl::StrAppend(&out, Indent(1), "<array>\n", Indent(2), "<dict>\n");
  {
    // The com.apple.security.scep payload.
    Key(&out, 3, "PayloadContent");
    absl::StrAppend(&out, Indent(3), "<dict>\n");
    Key(&out, 4, "URL");
    String(&out, 4, p.url);
    if (!p.ca_name.empty()) {
      Key(&out, 4, "Name");
      String(&out, 4, p.ca_name);
    }
    Key(&out, 4, "Subject");
    absl::StrAppend(&out, Indent(4), "<array>\n", Indent(5), "<array>\n",
                    Indent(6), "<array>\n");
    String(&out, 7, "CN");
    String(&out, 7, p.common_name);
    absl::StrAppend(&out, Indent(6), "</array>\n", Indent(5), "</array>\n",
                    Indent(4), "</array>\n");
    Key(&out, 4, "Challenge");
    String(&out, 4, p.challenge);
    Key(&out, 4, "Keysize");
    Integer(&out, 4, p.key_size);
    Key(&out, 4, "Key Type");
    String(&out, 4, "RSA");
    Key(&out, 4, "Key Usage");
    Integer(&out, 4, kKeyUsageSignAndEncrypt);
    if (!p.dns_names.empty()) {
      Key(&out, 4, "SubjectAltName");
      absl::StrAppend(&out, Indent(4), "<dict>\n");
      Key(&out, 5, "dNSName");
      absl::StrAppend(&out, Indent(5), "<array>\n");
      for (const std::string& d : p.dns_names) String(&out, 6, d);
      absl::StrAppend(&out, Indent(5), "</array>\n", Indent(4), "</dict>\n");
    }
    Key(&out, 4, "Retries");
    Integer(&out, 4, kRetries);
    Key(&out, 4, "RetryDelay");
    Integer(&out, 4, kRetryDelaySeconds);
    absl::StrAppend(&out, Indent(3), "</dict>\n");
    Key(&out, 3, "PayloadDescription");
    String(&out, 3,
           absl::StrCat("Requests a certificate for CN=", p.common_name,
                        " over SCEP"));
    Key(&out, 3, "PayloadDisplayName");
    String(&out, 3, absl::StrCat("SCEP: ", p.common_name));
    Key(&out, 3, "PayloadIdentifier");
    String(&out, 3, absl::StrCat(profile_id, ".scep"));
    Key(&out, 3, "PayloadType");
    String(&out, 3, "com.apple.security.scep");
    Key(&out, 3, "PayloadUUID");
    String(&out, 3, p.payload_uuid);
    Key(&out, 3, "PayloadVersion");
    Integer(&out, 3, 1);
  }
  absl::StrAppend(&out, Indent(2), "</dict>\n", Indent(1), "</array>\n");
  Key(&out, 1, "PayloadDescription");
  String(&out, 1, p.description);
  Key(&out, 1, "PayloadDisplayName");
  String(&out, 1, p.display_name);
  Key(&out, 1, "PayloadIdentifier");
  String(&out, 1, profile_id);
  Key(&out, 1, "PayloadType");
  String(&out, 1, "Configuration");
  Key(&out, 1, "PayloadUUID");
  String(&out, 1, p.profile_uuid);
  Key(&out, 1, "PayloadVersion");
  Integer(&out, 1, 1);
  absl::StrAppend(&out, "</dict>\n</plist>\n");
  return out;
}

absl::Status CheckMobileconfigOptions(const MobileconfigOptions& o) {
  if (o.scep_url.empty()) {
    return absl::InvalidArgumentError("--scep-url is required");
  }
  absl::StatusOr<doctor_internal::ScepUrl> url =
      doctor_internal::ParseScepUrl(o.scep_url);
  if (!url.ok()) return url.status();
  if (o.device_id.empty()) {
    return absl::InvalidArgumentError("--device is required");
  }
  if (o.out_path.empty()) {
    return absl::InvalidArgumentError("--out is required");
  }
  if (o.kind != "one-time" && o.kind != "signed") {
    return absl::InvalidArgumentError("--kind must be one-time or signed");
  }
  if (o.key_size != 2048 && o.key_size != 4096) {
    return absl::InvalidArgumentError(
        "--key-size must be 2048 or 4096 (Apple also documents 1024, which "
        "is too weak)");
  }
  if (!o.ttl.empty()) {
    absl::StatusOr<absl::Duration> ttl = ParseDurationFlag(o.ttl);
    if (!ttl.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--ttl: ", ttl.status().message()));
    }
  }
  const std::pair<absl::string_view, const std::string*> texts[] = {
      {"scep-url", &o.scep_url}, {"device", &o.device_id},
      {"user", &o.user_id},      {"cn", &o.common_name},
      {"name", &o.display_name}, {"ca-name", &o.ca_name}};
  for (const auto& [flag, value] : texts) {
    if (absl::Status st = CheckText(flag, *value); !st.ok()) return st;
  }
  for (const std::string& d : o.dns_names) {
    if (d.empty()) return absl::InvalidArgumentError("--dns must not be empty");
    if (absl::Status st = CheckText("dns", d); !st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::StatusOr<MobileconfigResult> WriteMobileconfig(
    ChallengeClient& client, const MobileconfigOptions& o) {
  if (absl::Status st = CheckMobileconfigOptions(o); !st.ok()) return st;
  const std::string cn = o.common_name.empty() ? o.device_id : o.common_name;
  absl::StatusOr<std::string> profile_uuid = NewUuid();
  if (!profile_uuid.ok()) return profile_uuid.status();
  absl::StatusOr<std::string> payload_uuid = NewUuid();
  if (!payload_uuid.ok()) return payload_uuid.status();

  // Make sure the profile can be written before a challenge is issued.
  PendingFile file;
  if (absl::Status st = file.Open(o.out_path); !st.ok()) return st;

  v1::IssueChallengeRequest request;
  request.set_device_id(o.device_id);
  request.set_user_id(o.user_id);
  request.set_kind(o.kind == "signed" ? v1::CHALLENGE_KIND_SIGNED
                                      : v1::CHALLENGE_KIND_ONE_TIME);
  if (!o.ttl.empty()) {
    const absl::Duration ttl = *ParseDurationFlag(o.ttl);
    const int64_t nanos = absl::ToInt64Nanoseconds(ttl);
    request.mutable_ttl()->set_seconds(nanos / 1'000'000'000);
    request.mutable_ttl()->set_nanos(
        static_cast<int32_t>(nanos % 1'000'000'000));
  }
  request.mutable_binding()->set_common_name(cn);
  for (const std::string& d : o.dns_names) {
    request.mutable_binding()->add_dns_names(d);
  }
  absl::StatusOr<v1::IssueChallengeResponse> issued =
      client.IssueChallenge(request);
  if (!issued.ok()) return issued.status();

  const std::string expires =
      google::protobuf::util::TimeUtil::ToString(issued->expires_at());
  ScepProfile p;
  p.url = o.scep_url;
  p.ca_name = o.ca_name.empty()
                  ? doctor_internal::ParseScepUrl(o.scep_url)->host
                  : o.ca_name;
  p.common_name = cn;
  p.dns_names = o.dns_names;
  p.challenge = issued->challenge();
  p.key_size = o.key_size;
  p.display_name = o.display_name.empty()
                       ? absl::StrCat("SCEP enrollment for ", o.device_id)
                       : o.display_name;
  p.description = absl::StrCat(
      "Enrolls a certificate for device ", o.device_id,
      o.user_id.empty() ? "" : absl::StrCat(" (user ", o.user_id, ")"),
      ". Its challenge (id ", issued->challenge_id(), ") expires at ", expires,
      ".");
  p.profile_uuid = *profile_uuid;
  p.payload_uuid = *payload_uuid;
  if (absl::Status st = file.Commit(BuildMobileconfig(p)); !st.ok()) {
    return st;
  }
  MobileconfigResult result;
  result.out_path = o.out_path;
  result.challenge_id = issued->challenge_id();
  result.expires_at = expires;
  result.profile_uuid = p.profile_uuid;
  result.payload_uuid = p.payload_uuid;
  result.common_name = cn;
  return result;
}

}  // namespace scepca
