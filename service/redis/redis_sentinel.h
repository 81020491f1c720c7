// File: redis_sentinel.h
// RedisBackend for a master watched by Redis Sentinel
// (redis-sentinel://host1:26379,host2:26379/MASTER_NAME).
//
// Finding the master: ask the sentinels in turn (starting with the one that
// answered last) "SENTINEL get-master-addr-by-name MASTER_NAME", then connect
// to the address it gives and check that ROLE says "master" (a sentinel that
// has not yet seen a failover may name a demoted master). The first sentinel
// whose answer passes that check wins. AUTH (the URL's user and password)
// goes to the sentinels and to the Redis nodes alike.
//
// Following failovers: the master is found again when a command gets
// READONLY or MASTERDOWN (the master was demoted; the command did not run and
// is sent again to the new master), when no connection to the master can be
// made (then the call waits for the failover for up to about one second
// before answering kUnavailable), and after a connection to it broke (the
// call that saw it answers kUnavailable: its outcome is unknown). Finding the
// master is serialized, and not retried more than every 100 ms after a
// failure, so a failover does not flood the sentinels.
#ifndef SCEPCA_SERVICE_REDIS_REDIS_SENTINEL_H_
#define SCEPCA_SERVICE_REDIS_REDIS_SENTINEL_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/redis/redis_backend.h"
#include "service/redis/redis_connection_pool.h"
#include "service/redis/redis_url.h"

namespace scepca {

struct RedisSentinelOptions {
  // kind must be kSentinel.
  RedisDeployment deployment;
  absl::Duration connect_timeout = absl::Milliseconds(200);
  absl::Duration command_timeout = absl::Milliseconds(300);
  // Connections per master.
  int pool_size = 16;
  // How long one call may wait for a failover (re-resolving the master)
  // before answering kUnavailable.
  absl::Duration failover_wait = absl::Seconds(1);
};

class RedisSentinelBackend final : public RedisBackend {
 public:
  // Does not connect. Returns kInvalidArgument for a bad deployment.
  static absl::StatusOr<std::unique_ptr<RedisSentinelBackend>> Create(
      const RedisSentinelOptions& options);

  // "redis-sentinel://h1:26379,h2:26379/name?db=0".
  std::string Describe() const override;
  absl::Status ForEachMaster(
      absl::FunctionRef<absl::Status(absl::string_view, RedisSession&)> fn)
      override;
  std::vector<std::vector<size_t>> GroupByNode(
      const std::vector<std::string>& keys) override;

  // Asks the sentinels for the master now. Returns its "host:port".
  absl::StatusOr<std::string> ResolveMaster();
  // The master in use ("" before the first call), and how many times a
  // different master was found (for tests and logs).
  std::string CurrentMaster() const;
  int64_t MasterChanges() const;

 protected:
  absl::Status Attempt(absl::string_view key, const RedisRedirect* redirect,
                       absl::FunctionRef<absl::Status(RedisSession&)> fn,
                       bool* reached) override;
  void OnRedirect(const RedisRedirect& redirect) override;
  bool OnFailure(const absl::Status& status, bool reached) override;

 private:
  explicit RedisSentinelBackend(const RedisSentinelOptions& options);

  // Returns the pool of the current master, resolving it first if needed.
  absl::StatusOr<RedisConnectionPool*> MasterPool();
  // Forgets the master so that the next call resolves it again.
  void Invalidate();
  // Asks one sentinel; returns the master's "host:port".
  absl::StatusOr<std::string> AskSentinel(const RedisUrl& sentinel);
  // Checks with ROLE that `address` is a master.
  absl::Status CheckIsMaster(const std::string& host, int port);
  RedisConnectOptions NodeOptions(const std::string& host, int port) const;

  const RedisSentinelOptions options_;
  // Serializes resolutions (held while talking to sentinels).
  absl::Mutex resolve_mu_;
  mutable absl::Mutex mu_;
  std::string master_ ABSL_GUARDED_BY(mu_);
  RedisConnectionPool* master_pool_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool stale_ ABSL_GUARDED_BY(mu_) = true;
  int64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t changes_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_failure_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
  size_t preferred_sentinel_ ABSL_GUARDED_BY(mu_) = 0;
  // One pool per master address ever used; never removed.
  std::map<std::string, std::unique_ptr<RedisConnectionPool>> pools_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace scepca

#endif  // SCEPCA_SERVICE_REDIS_REDIS_SENTINEL_H_
