// File: redis_challenge_store.h
// The ChallengeStore on Redis: one server (redis://, unix://), a master found
// through Sentinel (redis-sentinel://), or a Redis Cluster (redis-cluster://),
// shared by any number of authority processes. Every command goes through a
// RedisBackend (redis_backend.h) to the node that serves its key; consumes
// and replay nonces are confirmed with WAIT and checked against the
// replication epoch (redis_replication.h).
//
// Key design (P = the prefix, "scep:" by default; h(x) = the first 32 hex
// characters of SHA-256(x)):
//
//   P c:{<id>}          HASH   one ChallengeRecord; TTL = forget_at - now
//   P d:{<h(device)>}   ZSET   ids of the device's records, scored by
//                              forget_at (Unix µs); TTL = its highest score
//   P u:{<h(user)>}     ZSET   the same per user
//   P d:{<h(device)>}:rb HASH  "revoked before" marker {rb, fa} of the device
//   P u:{<h(user)>}:rb  HASH   the same per user; TTL = fa - now
//   P i:{<h(key)>}      HASH   idempotency entry; TTL = expires_at - now
//   P d:{<h(device)>}:f STRING failed validations of the device in the
//                              current window; TTL = the window
//   P e:{epoch}         HASH   replication epoch record (strict durability
//                              only; no TTL; see redis_replication.h)
//   P t:{<h(tx)>}       STRING the id validated with SCEP transaction id tx
//                              (for NotifyOutcome); TTL = the record's
//   Outcome reports are record fields "o<n>" (n counted in "on"), the last
//   kMaxOutcomes kept.
//
// Keys hold only the prefix and hashes: the id is already a one-way hash of
// the challenge, and device/user ids and idempotency keys are hashed, so a
// key listing reveals no challenge or identity. Record values hold the device
// and user ids (needed by List and Validate), never a challenge.
//
// Every script touches one key, so every atomic step is within one hash slot
// ({...} is the hash tag; a marker shares its index's slot). Times are stored
// as integer Unix microseconds ("+inf"/"-inf" for infinite times), so they
// round-trip exactly; strings are binary-safe hash fields; the lists of the
// identity binding and the labels are encoded as "<length>:<bytes>" items.
//
// Redis expires keys by its own clock (PEXPIRE = forget_at - now, rounded up,
// at least 1 ms), but every read also compares forget_at/expires_at with the
// caller's `now`, so the store behaves like the clock-free in-memory store.
//
// Operations (Lua scripts run with EVALSHA; on NOSCRIPT, e.g. after SCRIPT
// FLUSH or a restart, once more with EVAL, which also caches the script):
//   Insert:  check the record is absent (fast path for kAlreadyExists); add
//            the id to the device and user indexes (pruning entries with
//            score <= now, PEXPIRE to the highest score); then create the
//            record if absent (atomic on its key). So every record is indexed
//            before it exists. A lost insert race can leave an index entry
//            pointing at another subject's record: List and RevokeSubject
//            check the record's subject and skip such entries.
//   Consume: one script on the record key: pending and now < expires_at ->
//            used (used_at, transaction id); otherwise it reports the state.
//   Revoke:  one script on the record key: pending -> revoked.
//   ConsumeToken / RevokeToken (signed challenges, "s<hex>" ids): one script
//            on the record key; a single-use token's first use writes its
//            record as used (the replay nonce), a revocation writes it as
//            revoked; both kept until the token can no longer be accepted.
//   RevokeSubject: 1. marker rb = max(old, now), fa = max(old, marker_forget
//            _at), PEXPIRE to fa; 2. read the index; 3. the Revoke script on
//            each indexed record of that subject (pipelined); count.
//   List:    ZRANGEBYSCORE from a cursor (forget_at, id), then HGETALL of
//            each id (pipelined), skipping forgotten/foreign records. The page
//            token is "<forget_at µs>.<id>" of the last record returned.
//
// Failure semantics: a call whose outcome is unknown (timeout or connection
// loss after sending) returns kUnavailable and its connection is discarded;
// kConsumed is only ever reported from Redis's own answer. OOM (maxmemory with
// noeviction) gives kResourceExhausted; READONLY/MISCONF/LOADING give
// kUnavailable. See deploy/redis/README.md for durability.
#ifndef SCEPCA_SERVICE_REDIS_REDIS_CHALLENGE_STORE_H_
#define SCEPCA_SERVICE_REDIS_REDIS_CHALLENGE_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "service/core/challenge_record.h"
#include "service/core/challenge_store.h"
#include "service/redis/redis_backend.h"
#include "service/redis/redis_connection_pool.h"
#include "service/redis/redis_replication.h"
#include "service/redis/redis_reply.h"

namespace scepca {

struct RedisStoreOptions {
  // redis://..., unix://..., redis-sentinel://... or redis-cluster://...
  std::string url;
  std::string prefix = "scep:";  // --redis-prefix
  absl::Duration connect_timeout = absl::Milliseconds(200);
  absl::Duration command_timeout = absl::Milliseconds(300);
  int pool_size = 16;
  // If set, the Redis password is read from this file (first line; the file
  // must not be accessible to group or others) instead of the URL, so it
  // does not show in `ps`. The URL may still name the ACL user.
  std::string password_file;
  // WAIT and epochs (--redis-wait-replicas, --redis-wait-timeout,
  // --redis-durability).
  RedisReplicationOptions replication;
};

// Returns a RedisChallengeStore for `options`. Does not connect: if Redis is
// down, the store's calls answer kUnavailable until it is reachable. Returns
// kInvalidArgument for a bad URL, prefix (1-64 printable ASCII characters
// without spaces or braces), timeout (1 ms to 60 s) or pool size (1-1024).
absl::StatusOr<std::unique_ptr<ChallengeStore>> NewRedisChallengeStore(
    const RedisStoreOptions& options);

// Thread-safe: calls share a pool of options.pool_size connections per
// node. Any number of instances, in any number of processes, may share one
// Redis deployment.
class RedisChallengeStore final : public ChallengeStore {
 public:
  // As NewRedisChallengeStore(), with the concrete type.
  static absl::StatusOr<std::unique_ptr<RedisChallengeStore>> Create(
      const RedisStoreOptions& options);

  RedisChallengeStore(const RedisChallengeStore&) = delete;
  RedisChallengeStore& operator=(const RedisChallengeStore&) = delete;

  // ChallengeStore:
  // Every call may also return kUnavailable (Redis unreachable or slow: the
  // outcome of a write is then unknown), kResourceExhausted (Redis at
  // maxmemory refuses a write) or kInternal (unexpected reply or data).
  std::string Describe() const override;
  // Returns kInvalidArgument if record.id is not 1-128 lower-case hex
  // characters, kAlreadyExists if a live record has that id.
  absl::Status Insert(const ChallengeRecord& record, absl::Time now) override;
  // On one node (a single server or Sentinel): the index entries, the record
  // and the markers' read in one pipeline, in that order. On a cluster,
  // whose keys live on several nodes: Insert(), then RevokedBeforeEither().
  absl::StatusOr<absl::Time> InsertAndReadRevokedBefore(
      const ChallengeRecord& record, absl::Time now) override;
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
  // Both markers in one pipeline (per node).
  absl::StatusOr<absl::Time> RevokedBeforeEither(absl::string_view device_id,
                                                 absl::string_view user_id,
                                                 absl::Time now) override;
  // Returns kInvalidArgument for a page token not made by this store or a
  // page_size < 1.
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
  // Sends PING on a pooled connection; answers within the connect and
  // command timeouts even when Redis is down or stopped.
  absl::Status Ping() override;

  // Returns the Redis key of the record `id` (for tests).
  std::string RecordKeyForTesting(absl::string_view id) const {
    return RecordKey(id);
  }
  // Counts the pending, unexpired (one-time) challenges in the whole
  // deployment: SCAN over every master, HMGET of each record, pipelined in
  // batches of 1,000. O(records): for a periodic gauge (see
  // redis_outstanding_counter.h), never on a request's path. Approximate
  // while slots migrate or records change under it.
  absl::StatusOr<int64_t> CountPending(absl::Time now);

  // The backend (also for the audit stream, which shares its connections)
  // and the replication state (for tests).
  RedisBackend& backend() { return *backend_; }
  // The key prefix, e.g. "scep:".
  const std::string& prefix() const { return prefix_; }
  RedisReplication& replication() { return replication_; }

 private:
  RedisChallengeStore(std::unique_ptr<RedisBackend> backend, std::string prefix,
                      const RedisReplicationOptions& replication);

  // After a consume or replay-nonce write on `session`: WAIT and the epoch
  // check. Returns `consumed`, a kRevoked refusal (strict, issued before the
  // epoch), or kUnavailable (strict, not confirmed by a replica).
  absl::StatusOr<ConsumeResult> ConfirmConsume(RedisSession& session,
                                               ConsumeResult consumed,
                                               absl::Time now,
                                               absl::string_view what);
  // The answer for a record issued before the current epoch (strict).
  ConsumeResult RefusedBeforeEpoch(ChallengeRecord record) const;

  std::string RecordKey(absl::string_view id) const;
  // Decodes a consume script's {outcome, HGETALL} reply into `result`.
  static absl::StatusOr<ConsumeResult> DecodeConsumeReply(
      const RedisReply& reply, ConsumeResult result);
  // Decodes a consume outcome (see the consume script) and, unless it is 0,
  // the record's HGETALL.
  static absl::StatusOr<ConsumeResult> DecodeConsumeOutcome(
      int64_t outcome, const RedisReply* record, ConsumeResult result);
  // Decodes an HMGET of a marker's rb and fa: absl::InfinitePast() if there
  // is none (or it is forgotten at `now`).
  absl::StatusOr<absl::Time> DecodeMarker(const RedisReply& reply,
                                          absl::Time now) const;
  std::string IndexKey(SubjectType type, absl::string_view subject) const;
  std::string MarkerKey(SubjectType type, absl::string_view subject) const;
  std::string IdempotencyKey(absl::string_view key) const;
  std::string TransactionKey(absl::string_view transaction_id) const;
  std::string FailureKey(absl::string_view device_id) const;

  std::unique_ptr<RedisBackend> backend_;
  const std::string prefix_;
  RedisReplication replication_;
};

}  // namespace scepca

#endif  // SCEPCA_SERVICE_REDIS_REDIS_CHALLENGE_STORE_H_
