#include "service/http/jamf_webhook.h"

#include "absl/strings/str_cat.h"
#include "scep/challenge/webhook/v1/webhooks.pb.h"
#include "service/core/log.h"
#include "service/http/basic_auth.h"
#include "service/http/http_common.h"

namespace scepca {
namespace {

void RespondText(httplib::Response& response, int status,
                 absl::string_view text) {
  response.status = status;
  response.set_content(absl::StrCat(text, "\n"), "text/plain");
}

}  // namespace

std::string JamfDeviceId(absl::string_view account,
                         absl::string_view payload_identifier) {
  if (payload_identifier.empty()) return absl::StrCat("jamf:", account);
  return absl::StrCat("jamf:", account, ":", payload_identifier);
}

void JamfWebhook::Handle(const httplib::Request& request,
                         httplib::Response& response) {
  SetNoStore(response);
  const AuthResult auth =
      AuthenticateRequest(request, *users_, /*allow_bearer=*/false);
  if (auth.outcome == AuthOutcome::kMissing) {
    // NTLM-negotiating clients (Fleet) send the first request anonymously.
    RespondUnauthorized(response);
    return;
  }
  if (auth.outcome != AuthOutcome::kAccepted) {
    LogWarning(absl::StrCat("Jamf webhook: refused ", DescribeAuthFailure(auth),
                            " from ", LogSafe(request.remote_addr)));
    RespondUnauthorized(response);
    return;
  }
  const HttpAccount& account = *auth.account;
  if (!account.may_issue) {
    LogInfo(absl::StrCat("Jamf webhook: account '", account.name,
                         "' has issue=no: refused"));
    RespondText(response, 403, "this account may not get challenges");
    return;
  }
  scep::challenge::webhook::v1::JamfScepChallengeRequest body;
  if (absl::Status parsed = ParseJsonBody(request.body, &body); !parsed.ok()) {
    LogWarning(absl::StrCat("Jamf webhook: refused for '", account.name,
                            "': ", parsed.message()));
    RespondText(response, 400, parsed.message());
    return;
  }
  if (!body.webhook().webhook_event().empty() &&
      body.webhook().webhook_event() != "SCEPChallenge") {
    LogWarning(absl::StrCat(
        "Jamf webhook: refused for '", account.name, "': webhookEvent '",
        LogSafe(body.webhook().webhook_event()), "' is not SCEPChallenge"));
    RespondText(response, 400, "webhookEvent must be SCEPChallenge");
    return;
  }
  IssueRequest issue;
  issue.device_id =
      JamfDeviceId(account.name, body.event().payload_identifier());
  issue.user_id = account.user_id;
  issue.ttl = account.ttl;
  issue.labels = account.labels;
  absl::StatusOr<IssueResult> issued = authority_->Issue(issue);
  if (!issued.ok()) {
    const absl::Status& st = issued.status();
    if (absl::IsInvalidArgument(st)) {
      LogWarning(absl::StrCat("Jamf webhook: refused for '", account.name,
                              "': ", st.message()));
      RespondText(response, 400, st.message());
      return;
    }
    LogError(absl::StrCat("Jamf webhook: cannot issue for '", account.name,
                          "': ", st.ToString()));
    const bool retry = absl::IsUnavailable(st) ||
                       absl::IsResourceExhausted(st) || absl::IsAborted(st);
    RespondText(response, retry ? 503 : 500,
                retry ? "the authority cannot answer now; retry"
                      : "the authority cannot issue a challenge for this "
                        "account (see its log)");
    return;
  }
  response.status = 200;
  response.set_content(issued->challenge, "text/plain");
  LogInfo(absl::StrCat("Jamf webhook: issued challenge id ",
                       issued->challenge_id, " to account '", account.name,
                       "' (device ", LogSafe(issue.device_id), "), expires ",
                       absl::FormatTime(absl::RFC3339_sec, issued->expires_at,
                                        absl::UTCTimeZone())));
}

}  // namespace scepca
