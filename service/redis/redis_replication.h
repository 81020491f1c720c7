// File: redis_replication.h
// Replication safety for the Redis store: WAIT-confirmed consumes and
// replay-nonce writes, and epochs that detect a lost data set.
//
// WAIT. Replication is asynchronous: a consume acknowledged by a master and
// lost in a failover before a replica had it makes the challenge (or the
// signed token) valid again. After each such write the store calls
// AfterWrite() on the same connection, which sends WAIT <n> <timeout>:
//   n = --redis-wait-replicas, or by default 1 once any master has been seen
//   with a connected replica (and from then on: a replica that goes away must
//   not silently turn confirmation off), else 0 (no WAIT).
//   relaxed: fewer than n acks -> the write is accepted and
//            "replication_unconfirmed" is logged.
//   strict:  fewer than n acks -> kUnavailable; the challenge stays used.
//
// Epochs. Each master is identified by INFO server run_id (new at every
// restart) and INFO replication master_replid (new when a replica is
// promoted). The identities are read by a keyless Lua script (EVALSHA, so
// the ACL needs +info) and compared with the epoch record, a hash in Redis
// (key: the store's prefix + "e:{epoch}"):
//   start      Unix µs when the current epoch began
//   n:<node>   "<run_id>:<master_replid>" of each master (node = cluster node
//              id, "" for the single master of redis:// and Sentinel)
// A master whose identity changed, a master unknown to the record that was
// promoted from a replica (master_replid2 set), or a missing record (a
// restart without persistence, a fresh server, a failover before the record
// replicated) starts a new epoch (start = now). A new, empty cluster master
// (master_replid2 all zeros) joins the current epoch.
//   strict:  the record is read or created before the store's first call
//            (and Ping), and again whenever a write lands on a master whose
//            identity is not in it. A challenge or signed token issued
//            before the epoch's start is refused (IssuedBeforeEpoch(), and
//            AfterWrite() after a consume).
//   relaxed: no record is kept; a change of a master's identity (seen at
//            most poll_interval apart, on writes) is logged as
//            "redis_epoch_changed" and nothing is refused.
// What each mode leaves open is documented in deploy/redis/README.md.
#ifndef SCEPCA_SERVICE_REDIS_REDIS_REPLICATION_H_
#define SCEPCA_SERVICE_REDIS_REDIS_REPLICATION_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/redis/redis_backend.h"

namespace scepca {

enum class RedisDurability { kRelaxed, kStrict };

// Parses "relaxed" or "strict".
absl::StatusOr<RedisDurability> ParseRedisDurability(absl::string_view text);

struct RedisReplicationOptions {
  // Replicas that must acknowledge a consume; -1: 1 once replicas have been
  // seen, else 0.
  int wait_replicas = -1;
  absl::Duration wait_timeout = absl::Milliseconds(50);
  RedisDurability durability = RedisDurability::kRelaxed;
  // Relaxed mode and the replica detection: how often a master's identity
  // is read again (on a write to it).
  absl::Duration poll_interval = absl::Seconds(1);
};

// What a master says about itself.
struct RedisNodeIdentity {
  std::string run_id;
  std::string replid;
  std::string replid2;  // All zeros if never promoted.
  int64_t connected_replicas = 0;
  std::string role;  // "master" or "slave".

  // "<run_id>:<replid>".
  std::string Key() const { return run_id + ":" + replid; }
};

// Reads the identity of the node `session` is connected to.
absl::StatusOr<RedisNodeIdentity> ReadNodeIdentity(RedisSession& session);

// Thread-safe. Must not outlive the backend.
class RedisReplication {
 public:
  enum class WriteCheck {
    kAccepted,     // Confirmed, or relaxed.
    kBeforeEpoch,  // Strict: the item was issued before the current epoch.
  };

  RedisReplication(RedisBackend* backend, std::string epoch_key,
                   const RedisReplicationOptions& options);
  RedisReplication(const RedisReplication&) = delete;
  RedisReplication& operator=(const RedisReplication&) = delete;

  const RedisReplicationOptions& options() const { return options_; }
  bool strict() const {
    return options_.durability == RedisDurability::kStrict;
  }

  // `now` below is the caller's clock; a new epoch starts at the `now` of
  // the call that finds the change, so that what that call writes (an
  // Insert's record, created at `now`) belongs to the new epoch.

  // Strict: makes sure the epoch is known (reads or creates the record the
  // first time). Relaxed: nothing.
  absl::Status EnsureEpoch(absl::Time now);

  // Strict: whether something issued at `issued_at` predates the current
  // epoch. Relaxed: false.
  absl::StatusOr<bool> IssuedBeforeEpoch(absl::Time issued_at, absl::Time now);

  // After a write that must survive a failover, on the session that made it
  // (`what` names it in logs, without secrets). See the top of this file.
  absl::StatusOr<WriteCheck> AfterWrite(RedisSession& session,
                                        absl::Time issued_at, absl::Time now,
                                        absl::string_view what);

  // Strict: reads every master's identity and updates the epoch record.
  absl::Status RefreshEpoch(absl::Time now);

  // The current epoch's start (strict: from the record; relaxed: when this
  // process last saw a master's identity change, InfinitePast if never).
  absl::Time epoch_start() const;
  // The replicas WAIT asks for now.
  int WaitCount() const;
  // How many epoch changes this process saw, and writes left unconfirmed.
  int64_t epoch_changes() const;
  int64_t unconfirmed() const;

 private:
  // Records `identity` of `node`; logs a relaxed-mode epoch change.
  void Observe(const std::string& node, const RedisNodeIdentity& identity);
  bool IdentityDue(const std::string& node) const;

  RedisBackend* const backend_;
  const std::string epoch_key_;
  const RedisReplicationOptions options_;
  std::atomic<bool> replicas_seen_{false};
  std::atomic<bool> established_{false};
  absl::Mutex refresh_mu_;  // Serializes RefreshEpoch().
  mutable absl::Mutex mu_;
  absl::Time epoch_start_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::set<std::string> known_ ABSL_GUARDED_BY(mu_);  // Strict.
  struct Seen {
    std::string identity;
    absl::Time at;
  };
  std::map<std::string, Seen> seen_ ABSL_GUARDED_BY(mu_);
  int64_t epoch_changes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t unconfirmed_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace scepca

#endif  // SCEPCA_SERVICE_REDIS_REDIS_REPLICATION_H_
