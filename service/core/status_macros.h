// File: status_macros.h
// Early-return helpers for absl::Status and absl::StatusOr (Debian's abseil
// 20220623 has no status_macros.h of its own).
#ifndef SCEPCA_SERVICE_CORE_STATUS_MACROS_H_
#define SCEPCA_SERVICE_CORE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define SCEPCA_INTERNAL_CONCAT_(a, b) a##b
#define SCEPCA_INTERNAL_CONCAT(a, b) SCEPCA_INTERNAL_CONCAT_(a, b)

// Returns `expr` from the current function if it is not OK.
#define SCEPCA_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::absl::Status scepca_status_ = (expr);          \
    if (!scepca_status_.ok()) return scepca_status_; \
  } while (0)

// Evaluates `rexpr` (a StatusOr); returns its status if not OK, otherwise
// assigns its value to `lhs` (which may be a declaration).
#define SCEPCA_ASSIGN_OR_RETURN(lhs, rexpr) \
  SCEPCA_INTERNAL_ASSIGN_OR_RETURN(         \
      SCEPCA_INTERNAL_CONCAT(scepca_statusor_, __LINE__), lhs, rexpr)

#define SCEPCA_INTERNAL_ASSIGN_OR_RETURN(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                     \
  if (!statusor.ok()) return std::move(statusor).status();     \
  lhs = *std::move(statusor)

#endif  // SCEPCA_SERVICE_CORE_STATUS_MACROS_H_
