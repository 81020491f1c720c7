#include "service/http/http_common.h"

#include <google/protobuf/util/json_util.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace scepca {

std::string LogSafe(absl::string_view text) {
  constexpr size_t kMax = 128;
  const bool cut = text.size() > kMax;
  std::string out = absl::CHexEscape(text.substr(0, kMax));
  if (cut) absl::StrAppend(&out, "...");
  return out;
}

void SetNoStore(httplib::Response& response) {
  response.set_header("Cache-Control", "no-store");
}

std::string MessageToCompactJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = false;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options)
           .ok()) {
    return "{}";
  }
  return json;
}

absl::Status ParseJsonBody(absl::string_view json,
                           google::protobuf::Message* message) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  const auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), message,
      options);
  if (!status.ok()) {
    // The parser's message may quote the body, which may hold a secret.
    return absl::InvalidArgumentError("body is not JSON of the expected shape");
  }
  return absl::OkStatus();
}

}  // namespace scepca
