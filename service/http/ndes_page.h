// File: ndes_page.h
// An NDES-compatible challenge page, GET /certsrv/mscep_admin/ (with or
// without the trailing slash), for MDMs that fetch "dynamic" challenges from
// Microsoft NDES: Fleet, Workspace ONE, zentral, MaaS360 and others.
//
// It behaves as IIS in front of NDES does with Basic authentication:
//   - no Authorization: 401 with only WWW-Authenticate: Basic realm="...";
//   - a wrong name or password: 401 again;
//   - an account with issue=no: 200, "You do not have sufficient permission
//     to enroll with SCEP." page;
//   - an account with quota=N and N challenges outstanding (pending and
//     unexpired): 200, "The password cache is full." page;
//   - otherwise: 200 with a fresh one-time challenge in the NDES page.
// Pages are NDES's single-line HTML, encoded UTF-16LE with a BOM (FF FE) as
// NDES sends them (although the meta tag says UTF-8).
//
// NDES callers send no device identity, so the challenge is issued for
// device_id "ndes:<account name>", with the account's user, labels and ttl.
#ifndef SCEPCA_SERVICE_HTTP_NDES_PAGE_H_
#define SCEPCA_SERVICE_HTTP_NDES_PAGE_H_

#include <httplib.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "service/core/challenge_authority.h"
#include "service/core/clock.h"
#include "service/http/http_users.h"

namespace scepca {

// The device id of challenges issued to NDES account `account`.
std::string NdesDeviceId(absl::string_view account);

// The NDES page with `challenge` (ASCII). `thumbprint` is the CA thumbprint
// sentence's value (omitted if empty); `ttl_minutes` goes into "will expire
// within N minutes".
std::string NdesPasswordPage(absl::string_view challenge,
                             absl::string_view thumbprint, int64_t ttl_minutes);
// The "password cache is full" page; `quota` is the number of passwords.
std::string NdesCacheFullPage(int quota);
// The "You do not have sufficient permission to enroll with SCEP." page.
std::string NdesInsufficientPermissionPage();

// Encodes ASCII or UTF-8 text (BMP characters) as UTF-16LE with a BOM.
std::string EncodeUtf16LeWithBom(absl::string_view utf8);

// Returns the thumbprint NDES shows for a CA certificate (PEM or DER file):
// the SHA-1 of its DER in upper-case hex, in groups of 8 separated by
// spaces. Returns kNotFound if it cannot be read, kInvalidArgument if it is
// not a certificate.
absl::StatusOr<std::string> NdesThumbprintOfCertFile(const std::string& path);
// The same for DER or PEM bytes.
absl::StatusOr<std::string> NdesThumbprint(absl::string_view der_or_pem);

// The handler. Thread-safe; `authority`, `clock` and `users` must outlive
// it.
class NdesPage {
 public:
  NdesPage(ChallengeAuthority* authority, const Clock* clock,
           HttpUsersHolder* users, std::string ca_thumbprint);

  void Handle(const httplib::Request& request, httplib::Response& response);

 private:
  // Returns how many of the account's challenges are outstanding, counting
  // at most `limit`.
  absl::StatusOr<int> CountOutstanding(absl::string_view device_id, int limit);

  ChallengeAuthority* const authority_;
  const Clock* const clock_;
  HttpUsersHolder* const users_;
  const std::string ca_thumbprint_;
  // Makes count-then-issue atomic for quota accounts (in this process).
  absl::Mutex quota_mu_;
};

}  // namespace scepca

#endif  // SCEPCA_SERVICE_HTTP_NDES_PAGE_H_
