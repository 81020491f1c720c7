#include "service/core/challenge_store.h"

#include <algorithm>

#include "service/core/status_macros.h"

namespace scepca {

absl::StatusOr<absl::Time> ChallengeStore::InsertAndReadRevokedBefore(
    const ChallengeRecord& record, absl::Time now) {
  SCEPCA_RETURN_IF_ERROR(Insert(record, now));
  return RevokedBeforeEither(record.device_id, record.user_id, now);
}

absl::StatusOr<absl::Time> ChallengeStore::RevokedBeforeEither(
    absl::string_view device_id, absl::string_view user_id, absl::Time now) {
  SCEPCA_ASSIGN_OR_RETURN(absl::Time device,
                          RevokedBefore(SubjectType::kDevice, device_id, now));
  if (user_id.empty()) return device;
  SCEPCA_ASSIGN_OR_RETURN(absl::Time user,
                          RevokedBefore(SubjectType::kUser, user_id, now));
  return std::max(device, user);
}

}  // namespace scepca
