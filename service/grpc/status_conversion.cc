#include "service/grpc/status_conversion.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "service/core/log.h"

namespace scepca {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const int code = static_cast<int>(status.code());
  if (code < 0 || code > 16) {
    LogError(absl::StrCat("unknown status: ", status.ToString()));
    return grpc::Status(grpc::StatusCode::UNKNOWN, "internal error");
  }
  if (status.code() == absl::StatusCode::kInternal ||
      status.code() == absl::StatusCode::kUnknown ||
      status.code() == absl::StatusCode::kDataLoss) {
    LogError(absl::StrCat("internal error: ", status.ToString()));
    return grpc::Status(static_cast<grpc::StatusCode>(code),
                        "internal error (details in the server log)");
  }
  return grpc::Status(static_cast<grpc::StatusCode>(code),
                      std::string(status.message()));
}

}  // namespace scepca
