// File: http_common.h
// Small helpers shared by the HTTP endpoints: log-safe text, response
// headers, and JSON through protobuf's JSON mapping.
#ifndef SCEPCA_SERVICE_HTTP_HTTP_COMMON_H_
#define SCEPCA_SERVICE_HTTP_HTTP_COMMON_H_

#include <httplib.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace scepca {

// Returns `text` fit for a log line: at most 128 bytes, with control and
// non-ASCII bytes C-escaped, so a caller cannot forge log lines. Never pass a
// secret (a password, a challenge, a webhook secret).
std::string LogSafe(absl::string_view text);

// Marks a response that carries a secret (a challenge) as not cacheable.
void SetNoStore(httplib::Response& response);

// Returns `message` as compact JSON in protobuf's mapping, with fields at
// their default value printed too (so {"allow":false} shows "allow").
std::string MessageToCompactJson(const google::protobuf::Message& message);

// Parses `json` into `message`, skipping unknown fields. Returns
// kInvalidArgument if it is not JSON of that shape.
absl::Status ParseJsonBody(absl::string_view json,
                           google::protobuf::Message* message);

}  // namespace scepca

#endif  // SCEPCA_SERVICE_HTTP_HTTP_COMMON_H_
