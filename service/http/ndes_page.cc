#include "service/http/ndes_page.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/types/optional.h"
#include "service/core/hashing.h"
#include "service/core/log.h"
#include "service/http/basic_auth.h"
#include "service/http/http_common.h"

namespace scepca {
namespace {

// NDES's page, up to and including the title paragraph.
constexpr absl::string_view kPageHead =
    "<HTML><Head><Meta HTTP-Equiv=\"Content-Type\" Content=\"text/html; "
    "charset=UTF-8\"><Title>Network Device Enrollment Service</Title></Head>"
    "<Body BgColor=#FFFFFF><Font ID=locPageFont Face=\"Arial\"><Table "
    "Border=0 CellSpacing=0 CellPadding=4 Width=100% BgColor=#008080><TR><TD>"
    "<Font ID=locPageTitleFont Face=\"Arial\" Size=-1 Color=#FFFFFF><LocID "
    "ID=locMSCertSrv>Network Device Enrollment Service</LocID></Font></TD>"
    "</TR></Table><P ID=locPageTitle> Network Device Enrollment Service "
    "allows you to obtain certificates for routers or other network devices "
    "using the Simple Certificate Enrollment Protocol (SCEP). </P>";

// NDES's page after the message.
constexpr absl::string_view kPageTail =
    " <P ID=locPageDesc> For more information see  <A "
    "HREF=http://go.microsoft.com/fwlink/?LinkId=67852>Using Network Device "
    "Enrollment Service </A>. </P></Font></Body></HTML>";

constexpr char kHtmlUtf16[] = "text/html; charset=utf-16";

int64_t TtlMinutes(absl::Duration ttl) {
  const int64_t minutes =
      absl::ToInt64Minutes(ttl + absl::Minutes(1) - absl::Nanoseconds(1));
  return minutes < 1 ? 1 : minutes;
}

void RespondPage(httplib::Response& response, const std::string& html) {
  response.status = 200;
  response.set_content(EncodeUtf16LeWithBom(html), kHtmlUtf16);
}

void RespondText(httplib::Response& response, int status,
                 absl::string_view text) {
  response.status = status;
  response.set_content(absl::StrCat(text, "\n"), "text/plain");
}

}  // namespace

std::string NdesDeviceId(absl::string_view account) {
  return absl::StrCat("ndes:", account);
}

std::string NdesPasswordPage(absl::string_view challenge,
                             absl::string_view thumbprint,
                             int64_t ttl_minutes) {
  std::string page(kPageHead);
  absl::StrAppend(&page,
                  "<P> To complete certificate enrollment for your network "
                  "device you will need the following information: ");
  if (!thumbprint.empty()) {
    absl::StrAppend(&page,
                    "<P> The thumbprint (hash value) for the CA certificate "
                    "is: <B> ",
                    thumbprint, " </B> ");
  }
  absl::StrAppend(&page, "<P> The enrollment challenge password is: <B> ",
                  challenge,
                  " </B> <P> This password can be used only once and will "
                  "expire within ",
                  ttl_minutes,
                  " minutes. <P> Each enrollment requires a new challenge "
                  "password. You can refresh this web page to obtain a new "
                  "challenge password. </P>",
                  kPageTail);
  return page;
}

std::string NdesCacheFullPage(int quota) {
  return absl::StrCat(
      kPageHead,
      "<P> The password cache is full. <P> Network Device Enrollment Service "
      "stores unused password for later use. By default, passwords are "
      "stored for 60 minutes.<P>Use one of the existing passwords. If you "
      "cannot use an existing password: <UL> <LI> Wait until one or more "
      "existing passwords expire (by default passwords expire 60 minutes "
      "after they are created). </LI> <LI> Restart Internet Information "
      "Services (IIS). </LI> <LI> Configure the service to cache more than ",
      quota, " passwords. </LI> </UL> </P>", kPageTail);
}

std::string NdesInsufficientPermissionPage() {
  return absl::StrCat(kPageHead,
                      "<P> You do not have sufficient permission to enroll "
                      "with SCEP.  Please contact your system administrator. "
                      "</P>",
                      kPageTail);
}

std::string EncodeUtf16LeWithBom(absl::string_view utf8) {
  std::string out = "\xFF\xFE";
  out.reserve(2 + 2 * utf8.size());
  auto put = [&out](uint32_t unit) {
    out.push_back(static_cast<char>(unit & 0xFF));
    out.push_back(static_cast<char>((unit >> 8) & 0xFF));
  };
  size_t i = 0;
  while (i < utf8.size()) {
    const auto b0 = static_cast<unsigned char>(utf8[i]);
    uint32_t cp = 0xFFFD;
    size_t len = 1;
    if (b0 < 0x80) {
      cp = b0;
    } else if ((b0 & 0xE0) == 0xC0) {
      len = 2;
    } else if ((b0 & 0xF0) == 0xE0) {
      len = 3;
    } else if ((b0 & 0xF8) == 0xF0) {
      len = 4;
    }
    if (len > 1) {
      bool valid = i + len <= utf8.size();
      uint32_t value = b0 & (0x7F >> len);
      for (size_t k = 1; valid && k < len; ++k) {
        const auto b = static_cast<unsigned char>(utf8[i + k]);
        valid = (b & 0xC0) == 0x80;
        value = (value << 6) | (b & 0x3F);
      }
      if (valid) {
        cp = value;
      } else {
        len = 1;
      }
    }
    if (cp >= 0x10000 && cp <= 0x10FFFF) {
      cp -= 0x10000;
      put(0xD800 + (cp >> 10));
      put(0xDC00 + (cp & 0x3FF));
    } else {
      put(cp > 0xFFFF ? 0xFFFD : cp);
    }
    i += len;
  }
  return out;
}

absl::StatusOr<std::string> NdesThumbprint(absl::string_view der_or_pem) {
  std::unique_ptr<X509, decltype(&X509_free)> cert(nullptr, &X509_free);
  if (absl::StrContains(der_or_pem, "-----BEGIN")) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(
        BIO_new_mem_buf(der_or_pem.data(), static_cast<int>(der_or_pem.size())),
        &BIO_free);
    if (bio != nullptr) {
      cert.reset(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    }
  } else {
    const unsigned char* p =
        reinterpret_cast<const unsigned char*>(der_or_pem.data());
    cert.reset(d2i_X509(nullptr, &p, static_cast<long>(der_or_pem.size())));
  }
  if (cert == nullptr) {
    return absl::InvalidArgumentError("not a PEM or DER X.509 certificate");
  }
  unsigned char digest[20];
  unsigned int digest_len = sizeof(digest);
  if (X509_digest(cert.get(), EVP_sha1(), digest, &digest_len) != 1) {
    return absl::InternalError("X509_digest failed");
  }
  const std::string hex = absl::AsciiStrToUpper(HexEncode(
      absl::string_view(reinterpret_cast<const char*>(digest), digest_len)));
  std::vector<std::string> groups;
  for (size_t i = 0; i < hex.size(); i += 8) groups.push_back(hex.substr(i, 8));
  return absl::StrJoin(groups, " ");
}

absl::StatusOr<std::string> NdesThumbprintOfCertFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  absl::StatusOr<std::string> thumbprint = NdesThumbprint(ss.str());
  if (!thumbprint.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", thumbprint.status().message()));
  }
  return thumbprint;
}

NdesPage::NdesPage(ChallengeAuthority* authority, const Clock* clock,
                   HttpUsersHolder* users, std::string ca_thumbprint)
    : authority_(authority),
      clock_(clock),
      users_(users),
      ca_thumbprint_(std::move(ca_thumbprint)) {}

absl::StatusOr<int> NdesPage::CountOutstanding(absl::string_view device_id,
                                               int limit) {
  int count = 0;
  std::string token;
  do {
    absl::StatusOr<ChallengePage> page =
        authority_->List(device_id, "", /*page_size=*/1000, token);
    if (!page.ok()) return page.status();
    for (const ChallengeRecord& record : page->records) {
      if (record.state == ChallengeState::kPending &&
          record.expires_at > clock_->Now()) {
        ++count;
      }
    }
    token = page->next_page_token;
  } while (!token.empty() && count < limit);
  return count;
}

void NdesPage::Handle(const httplib::Request& request,
                      httplib::Response& response) {
  SetNoStore(response);
  const AuthResult auth =
      AuthenticateRequest(request, *users_, /*allow_bearer=*/false);
  if (auth.outcome == AuthOutcome::kMissing) {
    // What NTLM/Negotiate clients send first; they retry with Basic.
    RespondUnauthorized(response);
    return;
  }
  if (auth.outcome != AuthOutcome::kAccepted) {
    LogWarning(absl::StrCat("NDES page: refused ", DescribeAuthFailure(auth),
                            " from ", LogSafe(request.remote_addr)));
    RespondUnauthorized(response);
    return;
  }
  const HttpAccount& account = *auth.account;
  if (!account.may_issue) {
    LogInfo(absl::StrCat("NDES page: account '", account.name,
                         "' has issue=no: insufficient permission page"));
    RespondPage(response, NdesInsufficientPermissionPage());
    return;
  }
  IssueRequest issue;
  issue.device_id = NdesDeviceId(account.name);
  issue.user_id = account.user_id;
  issue.ttl = account.ttl;
  issue.labels = account.labels;
  absl::optional<absl::MutexLock> quota_lock;
  if (account.quota > 0) {
    quota_lock.emplace(&quota_mu_);
    absl::StatusOr<int> outstanding =
        CountOutstanding(issue.device_id, account.quota);
    if (!outstanding.ok()) {
      LogError(absl::StrCat("NDES page: cannot count the challenges of '",
                            account.name,
                            "': ", outstanding.status().ToString()));
      RespondText(response, 503, "the authority cannot answer now; retry");
      return;
    }
    if (*outstanding >= account.quota) {
      LogWarning(absl::StrCat("NDES page: account '", account.name, "' has ",
                              *outstanding, " challenges outstanding (quota ",
                              account.quota, "): password cache is full page"));
      RespondPage(response, NdesCacheFullPage(account.quota));
      return;
    }
  }
  absl::StatusOr<IssueResult> issued = authority_->Issue(issue);
  if (!issued.ok()) {
    LogError(absl::StrCat("NDES page: cannot issue for '", account.name,
                          "': ", issued.status().ToString()));
    const bool retry = absl::IsUnavailable(issued.status()) ||
                       absl::IsResourceExhausted(issued.status()) ||
                       absl::IsAborted(issued.status());
    RespondText(response, retry ? 503 : 500,
                retry ? "the authority cannot answer now; retry"
                      : "the authority cannot issue a challenge for this "
                        "account (see its log)");
    return;
  }
  const absl::Duration ttl =
      account.ttl.value_or(authority_->options().default_ttl);
  RespondPage(response, NdesPasswordPage(issued->challenge, ca_thumbprint_,
                                         TtlMinutes(ttl)));
  LogInfo(absl::StrCat("NDES page: issued challenge id ", issued->challenge_id,
                       " to account '", account.name, "' (device ",
                       issue.device_id, "), expires ",
                       absl::FormatTime(absl::RFC3339_sec, issued->expires_at,
                                        absl::UTCTimeZone())));
}

}  // namespace scepca
