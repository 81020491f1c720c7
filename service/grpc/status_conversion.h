// File: status_conversion.h
// absl::Status -> grpc::Status. The codes are the same numbers; an internal
// error's detail is logged and replaced by a generic message.
#ifndef SCEPCA_SERVICE_GRPC_STATUS_CONVERSION_H_
#define SCEPCA_SERVICE_GRPC_STATUS_CONVERSION_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace scepca {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace scepca

#endif  // SCEPCA_SERVICE_GRPC_STATUS_CONVERSION_H_
