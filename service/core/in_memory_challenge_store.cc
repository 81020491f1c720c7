#include "service/core/in_memory_challenge_store.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace scepca {

std::string InMemoryChallengeStore::SubjectKey(SubjectType type,
                                               absl::string_view subject) {
  return absl::StrCat(type == SubjectType::kDevice ? "d:" : "u:", subject);
}

ChallengeRecord* InMemoryChallengeStore::FindLive(absl::string_view id,
                                                  absl::Time now) {
  auto it = records_.find(id);
  if (it == records_.end() || it->second.forget_at <= now) return nullptr;
  return &it->second;
}

void InMemoryChallengeStore::ScheduleForget(absl::Time at, EntryType type,
                                            const std::string& key) {
  sweep_queue_.emplace(at, std::make_pair(type, key));
}

void InMemoryChallengeStore::Sweep(absl::Time now) {
  while (!sweep_queue_.empty() && sweep_queue_.begin()->first <= now) {
    auto node = sweep_queue_.extract(sweep_queue_.begin());
    const auto& [type, key] = node.mapped();
    switch (type) {
      case EntryType::kRecord: {
        auto it = records_.find(key);
        if (it != records_.end() && it->second.forget_at <= now) {
          records_.erase(it);
        }
        break;
      }
      case EntryType::kIndex: {
        auto it = indexes_.find(key);
        if (it == indexes_.end()) break;
        Index& index = it->second;
        index.erase(index.begin(),
                    index.upper_bound({now, std::string(1, '\x7f')}));
        if (index.empty()) indexes_.erase(it);
        break;
      }
      case EntryType::kMarker: {
        auto it = markers_.find(key);
        if (it != markers_.end() && it->second.forget_at <= now) {
          markers_.erase(it);
        }
        break;
      }
      case EntryType::kTransaction: {
        auto it = transactions_.find(key);
        if (it != transactions_.end() && it->second.forget_at <= now) {
          transactions_.erase(it);
        }
        break;
      }
      case EntryType::kFailures: {
        auto it = failures_.find(key);
        if (it != failures_.end() && it->second.ends <= now) {
          failures_.erase(it);
        }
        break;
      }
      case EntryType::kIdempotency: {
        auto it = idempotency_.find(key);
        if (it != idempotency_.end() && it->second.expires_at <= now) {
          idempotency_.erase(it);
        }
        break;
      }
    }
  }
}

absl::Status InMemoryChallengeStore::Insert(const ChallengeRecord& record,
                                            absl::Time now) {
  absl::MutexLock lock(&mu_);
  Sweep(now);
  if (FindLive(record.id, now) != nullptr) {
    return absl::AlreadyExistsError("challenge id exists");
  }
  Put(record);
  for (auto [type, subject] :
       {std::make_pair(SubjectType::kDevice, &record.device_id),
        std::make_pair(SubjectType::kUser, &record.user_id)}) {
    if (subject->empty()) continue;
    std::string key = SubjectKey(type, *subject);
    indexes_[key].emplace(record.forget_at, record.id);
    ScheduleForget(record.forget_at, EntryType::kIndex, key);
  }
  return absl::OkStatus();
}

absl::StatusOr<ChallengeRecord> InMemoryChallengeStore::Get(
    absl::string_view id, absl::Time now) {
  absl::MutexLock lock(&mu_);
  const ChallengeRecord* record = FindLive(id, now);
  if (record == nullptr) return absl::NotFoundError("no such challenge");
  return *record;
}

absl::StatusOr<ConsumeResult> InMemoryChallengeStore::Consume(
    absl::string_view id, const UseInfo& use, absl::Time now) {
  absl::MutexLock lock(&mu_);
  ConsumeResult result;
  ChallengeRecord* record = FindLive(id, now);
  if (record == nullptr) {
    result.outcome = ConsumeResult::Outcome::kNotFound;
    return result;
  }
  switch (record->state) {
    case ChallengeState::kUsed:
      result.outcome = ConsumeResult::Outcome::kAlreadyUsed;
      break;
    case ChallengeState::kRevoked:
      result.outcome = ConsumeResult::Outcome::kRevoked;
      break;
    default:
      if (now >= record->expires_at) {
        result.outcome = ConsumeResult::Outcome::kExpired;
      } else if (use.unbound_only && !record->binding.empty()) {
        result.outcome = ConsumeResult::Outcome::kBound;
      } else {
        record->state = ChallengeState::kUsed;
        record->used_at = now;
        record->used_transaction_id = use.transaction_id;
        record->used_public_key_sha256 = use.public_key_sha256;
        result.outcome = ConsumeResult::Outcome::kConsumed;
      }
  }
  result.record = *record;
  return result;
}

void InMemoryChallengeStore::Put(const ChallengeRecord& record) {
  records_[record.id] = record;
  ScheduleForget(record.forget_at, EntryType::kRecord, record.id);
}

absl::StatusOr<ConsumeResult> InMemoryChallengeStore::ConsumeToken(
    const ChallengeRecord& token, bool multi_use, const UseInfo& use,
    absl::Time now) {
  absl::MutexLock lock(&mu_);
  Sweep(now);
  ConsumeResult result;
  ChallengeRecord* record = FindLive(token.id, now);
  if (record != nullptr && record->state == ChallengeState::kRevoked) {
    result.outcome = ConsumeResult::Outcome::kRevoked;
    result.record = *record;
    return result;
  }
  if (record != nullptr && record->state == ChallengeState::kUsed) {
    result.outcome = multi_use ? ConsumeResult::Outcome::kConsumed
                               : ConsumeResult::Outcome::kAlreadyUsed;
    result.record = *record;
    return result;
  }
  result.outcome = ConsumeResult::Outcome::kConsumed;
  result.record = token;
  if (!multi_use) {
    result.record.state = ChallengeState::kUsed;
    result.record.used_at = now;
    result.record.used_transaction_id = use.transaction_id;
    result.record.used_public_key_sha256 = use.public_key_sha256;
    Put(result.record);
  }
  return result;
}

absl::StatusOr<bool> InMemoryChallengeStore::RevokeToken(
    const ChallengeRecord& token, absl::string_view reason, absl::Time now) {
  absl::MutexLock lock(&mu_);
  Sweep(now);
  ChallengeRecord* record = FindLive(token.id, now);
  if (record != nullptr && record->state != ChallengeState::kPending) {
    return false;
  }
  ChallengeRecord revoked = record != nullptr ? *record : token;
  revoked.state = ChallengeState::kRevoked;
  revoked.revoked_at = now;
  revoked.revoke_reason = std::string(reason);
  Put(revoked);
  return true;
}

absl::StatusOr<bool> InMemoryChallengeStore::Revoke(absl::string_view id,
                                                    absl::string_view reason,
                                                    absl::Time now) {
  absl::MutexLock lock(&mu_);
  ChallengeRecord* record = FindLive(id, now);
  if (record == nullptr) return absl::NotFoundError("no such challenge");
  if (record->state != ChallengeState::kPending) return false;
  record->state = ChallengeState::kRevoked;
  record->revoked_at = now;
  record->revoke_reason = std::string(reason);
  return true;
}

absl::StatusOr<int64_t> InMemoryChallengeStore::RevokeSubject(
    SubjectType type, absl::string_view subject, absl::string_view reason,
    absl::Time now, absl::Time marker_forget_at) {
  absl::MutexLock lock(&mu_);
  Sweep(now);
  const std::string key = SubjectKey(type, subject);
  Marker& marker = markers_[key];
  marker.revoked_before = std::max(marker.revoked_before, now);
  if (marker_forget_at > marker.forget_at) {
    marker.forget_at = marker_forget_at;
    ScheduleForget(marker_forget_at, EntryType::kMarker, key);
  }
  int64_t revoked = 0;
  auto it = indexes_.find(key);
  if (it == indexes_.end()) return revoked;
  for (const auto& [forget_at, id] : it->second) {
    ChallengeRecord* record = FindLive(id, now);
    if (record == nullptr || record->state != ChallengeState::kPending) {
      continue;
    }
    record->state = ChallengeState::kRevoked;
    record->revoked_at = now;
    record->revoke_reason = std::string(reason);
    ++revoked;
  }
  return revoked;
}

absl::StatusOr<absl::Time> InMemoryChallengeStore::RevokedBefore(
    SubjectType type, absl::string_view subject, absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto it = markers_.find(SubjectKey(type, subject));
  if (it == markers_.end() || it->second.forget_at <= now) {
    return absl::InfinitePast();
  }
  return it->second.revoked_before;
}

absl::StatusOr<ChallengePage> InMemoryChallengeStore::List(
    SubjectType type, absl::string_view subject, int page_size,
    absl::string_view page_token, absl::Time now) {
  size_t offset = 0;
  if (!page_token.empty() && !absl::SimpleAtoi(page_token, &offset)) {
    return absl::InvalidArgumentError("page_token is not valid");
  }
  absl::MutexLock lock(&mu_);
  ChallengePage page;
  auto it = indexes_.find(SubjectKey(type, subject));
  if (it == indexes_.end()) return page;
  size_t position = 0;
  for (const auto& [forget_at, id] : it->second) {
    if (forget_at <= now) continue;
    const ChallengeRecord* record = FindLive(id, now);
    if (record == nullptr) continue;
    if (position++ < offset) continue;
    if (page.records.size() == static_cast<size_t>(page_size)) {
      page.next_page_token = absl::StrCat(offset + page.records.size());
      break;
    }
    page.records.push_back(*record);
  }
  return page;
}

absl::StatusOr<absl::optional<IdempotencyEntry>>
InMemoryChallengeStore::PutIdempotencyIfAbsent(absl::string_view key,
                                               const IdempotencyEntry& entry,
                                               absl::Time now) {
  absl::MutexLock lock(&mu_);
  Sweep(now);
  auto it = idempotency_.find(key);
  if (it != idempotency_.end() && it->second.expires_at > now) {
    return absl::optional<IdempotencyEntry>(it->second);
  }
  idempotency_[key] = entry;
  ScheduleForget(entry.expires_at, EntryType::kIdempotency, std::string(key));
  return absl::optional<IdempotencyEntry>();
}

absl::Status InMemoryChallengeStore::IndexTransaction(
    absl::string_view transaction_id, absl::string_view id,
    absl::Time forget_at, absl::Time now) {
  absl::MutexLock lock(&mu_);
  Sweep(now);
  const std::string key(transaction_id);
  transactions_[key] = {std::string(id), forget_at};
  ScheduleForget(forget_at, EntryType::kTransaction, key);
  return absl::OkStatus();
}

absl::StatusOr<std::string> InMemoryChallengeStore::FindByTransaction(
    absl::string_view transaction_id, absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto it = transactions_.find(transaction_id);
  if (it == transactions_.end() || it->second.forget_at <= now) {
    return absl::NotFoundError("no challenge with that transaction id");
  }
  return it->second.id;
}

absl::Status InMemoryChallengeStore::AppendOutcome(absl::string_view id,
                                                   const OutcomeEvent& event,
                                                   absl::Time now) {
  absl::MutexLock lock(&mu_);
  ChallengeRecord* record = FindLive(id, now);
  if (record == nullptr) return absl::NotFoundError("no such challenge");
  record->outcomes.push_back(event);
  if (record->outcomes.size() > kMaxOutcomes) {
    record->outcomes.erase(record->outcomes.begin());
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> InMemoryChallengeStore::CountFailure(
    absl::string_view device_id, absl::Duration window, absl::Time now) {
  absl::MutexLock lock(&mu_);
  Sweep(now);
  const std::string key(device_id);
  FailureWindow& w = failures_[key];
  if (w.ends <= now) {
    w.count = 0;
    w.ends = now + window;
    ScheduleForget(w.ends, EntryType::kFailures, key);
  }
  return ++w.count;
}

absl::StatusOr<int64_t> InMemoryChallengeStore::FailureCount(
    absl::string_view device_id, absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto it = failures_.find(device_id);
  if (it == failures_.end() || it->second.ends <= now) return 0;
  return it->second.count;
}

absl::Status InMemoryChallengeStore::Delete(absl::string_view id) {
  absl::MutexLock lock(&mu_);
  records_.erase(id);
  return absl::OkStatus();
}

size_t InMemoryChallengeStore::PendingCount(absl::Time now) const {
  absl::MutexLock lock(&mu_);
  size_t n = 0;
  for (const auto& [id, record] : records_) {
    if (record.forget_at > now &&
        record.StateAt(now) == ChallengeState::kPending) {
      ++n;
    }
  }
  return n;
}

size_t InMemoryChallengeStore::RecordCountForTesting() const {
  absl::MutexLock lock(&mu_);
  return records_.size();
}

}  // namespace scepca
