// File: in_memory_challenge_store.h
// The embedded default store: everything in this process's memory, lost on
// restart, with the same semantics as the Redis store.
#ifndef SCEPCA_SERVICE_CORE_IN_MEMORY_CHALLENGE_STORE_H_
#define SCEPCA_SERVICE_CORE_IN_MEMORY_CHALLENGE_STORE_H_

#include <map>
#include <set>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "service/core/challenge_store.h"

namespace scepca {

// Thread-safe. Expired entries are swept on every write, so memory is bounded
// by what is alive (plus retention).
class InMemoryChallengeStore final : public ChallengeStore {
 public:
  InMemoryChallengeStore() = default;
  InMemoryChallengeStore(const InMemoryChallengeStore&) = delete;
  InMemoryChallengeStore& operator=(const InMemoryChallengeStore&) = delete;

  // ChallengeStore:
  std::string Describe() const override { return "memory"; }
  absl::Status Insert(const ChallengeRecord& record, absl::Time now) override;
  absl::StatusOr<ChallengeRecord> Get(absl::string_view id,
                                      absl::Time now) override;
  absl::StatusOr<ConsumeResult> Consume(absl::string_view id,
                                        const UseInfo& use,
                                        absl::Time now) override;
  absl::StatusOr<ConsumeResult> ConsumeToken(const ChallengeRecord& token,
                                             bool multi_use, const UseInfo& use,
                                             absl::Time now) override;
  absl::StatusOr<bool> RevokeToken(const ChallengeRecord& token,
                                   absl::string_view reason,
                                   absl::Time now) override;
  absl::StatusOr<bool> Revoke(absl::string_view id, absl::string_view reason,
                              absl::Time now) override;
  absl::StatusOr<int64_t> RevokeSubject(SubjectType type,
                                        absl::string_view subject,
                                        absl::string_view reason,
                                        absl::Time now,
                                        absl::Time marker_forget_at) override;
  absl::StatusOr<absl::Time> RevokedBefore(SubjectType type,
                                           absl::string_view subject,
                                           absl::Time now) override;
  absl::StatusOr<ChallengePage> List(SubjectType type,
                                     absl::string_view subject, int page_size,
                                     absl::string_view page_token,
                                     absl::Time now) override;
  absl::StatusOr<absl::optional<IdempotencyEntry>> PutIdempotencyIfAbsent(
      absl::string_view key, const IdempotencyEntry& entry,
      absl::Time now) override;
  absl::Status IndexTransaction(absl::string_view transaction_id,
                                absl::string_view id, absl::Time forget_at,
                                absl::Time now) override;
  absl::StatusOr<std::string> FindByTransaction(
      absl::string_view transaction_id, absl::Time now) override;
  absl::Status AppendOutcome(absl::string_view id, const OutcomeEvent& event,
                             absl::Time now) override;
  absl::StatusOr<int64_t> CountFailure(absl::string_view device_id,
                                       absl::Duration window,
                                       absl::Time now) override;
  absl::StatusOr<int64_t> FailureCount(absl::string_view device_id,
                                       absl::Time now) override;
  absl::Status Delete(absl::string_view id) override;
  absl::Status Ping() override { return absl::OkStatus(); }

  // Returns how many records are pending and unexpired at `now` (a scan: for
  // metrics scrapes, not hot paths).
  size_t PendingCount(absl::Time now) const;

  // Returns the number of live records (for tests of the sweeper).
  size_t RecordCountForTesting() const;

 private:
  // (forget_at, id) pairs, ordered by time.
  using Index = std::set<std::pair<absl::Time, std::string>>;
  struct Marker {
    absl::Time revoked_before;
    absl::Time forget_at;
  };
  enum class EntryType {
    kRecord,
    kIndex,
    kMarker,
    kIdempotency,
    kTransaction,
    kFailures
  };
  struct FailureWindow {
    int64_t count = 0;
    absl::Time ends;
  };
  struct TransactionEntry {
    std::string id;
    absl::Time forget_at;
  };

  static std::string SubjectKey(SubjectType type, absl::string_view subject);
  // Returns the live record or null.
  ChallengeRecord* FindLive(absl::string_view id, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stores `record` (not indexed) and schedules its forgetting.
  void Put(const ChallengeRecord& record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Forgets everything whose forget_at <= now.
  void Sweep(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ScheduleForget(absl::Time at, EntryType type, const std::string& key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, ChallengeRecord> records_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Index> indexes_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Marker> markers_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, IdempotencyEntry> idempotency_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, TransactionEntry> transactions_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, FailureWindow> failures_
      ABSL_GUARDED_BY(mu_);
  // When to look at an entry again; the entry decides then if it is gone.
  std::multimap<absl::Time, std::pair<EntryType, std::string>> sweep_queue_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace scepca

#endif  // SCEPCA_SERVICE_CORE_IN_MEMORY_CHALLENGE_STORE_H_
