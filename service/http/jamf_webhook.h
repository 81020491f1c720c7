// File: jamf_webhook.h
// A Jamf Pro-style challenge URL, POST /jamf/scepchallenge, as Jamf Pro's
// "SCEPChallenge" webhook, Okta's dynamic SCEP challenge URL and Fleet's
// "Smallstep" certificate authority call it: HTTP Basic credentials and a
// JSON body
//
//   {"webhook":{"webhookEvent":"SCEPChallenge","id":1,
//               "eventTimestamp":1757435578,"name":"SCEPChallenge"},
//    "event":{"scepServerUrl":"https://...","payloadIdentifier":"<uuid>",
//             "payloadTypes":["com.apple.security.scep"]}}
//
// answered with HTTP 200 and the challenge alone as the body (text/plain, no
// quotes, no newline).
//
// Other answers: 401 (with WWW-Authenticate: Basic) without or with bad
// credentials; 403 for an account with issue=no; 400 for a body that is not
// such JSON or whose webhookEvent is not "SCEPChallenge"; 503 when the
// authority cannot answer.
//
// The body names no device, so the challenge is issued for device_id
// "jamf:<account>:<payloadIdentifier>" ("jamf:<account>" without one), with
// the account's user, labels and ttl.
#ifndef SCEPCA_SERVICE_HTTP_JAMF_WEBHOOK_H_
#define SCEPCA_SERVICE_HTTP_JAMF_WEBHOOK_H_

#include <httplib.h>

#include <string>

#include "absl/strings/string_view.h"
#include "service/core/challenge_authority.h"
#include "service/http/http_users.h"

namespace scepca {

// The device id of a challenge issued to `account` for `payload_identifier`.
std::string JamfDeviceId(absl::string_view account,
                         absl::string_view payload_identifier);

// The handler. Thread-safe; `authority` and `users` must outlive it.
class JamfWebhook {
 public:
  JamfWebhook(ChallengeAuthority* authority, HttpUsersHolder* users)
      : authority_(authority), users_(users) {}

  void Handle(const httplib::Request& request, httplib::Response& response);

 private:
  ChallengeAuthority* const authority_;
  HttpUsersHolder* const users_;
};

}  // namespace scepca

#endif  // SCEPCA_SERVICE_HTTP_JAMF_WEBHOOK_H_
