// File: redis_cluster.h
// RedisBackend for Redis Cluster (redis-cluster://host1:7000,host2:7001,...):
// a focused cluster client on hiredis, which Debian 12 lacks.
//
//   - Slot map: CLUSTER SLOTS from a known master, else from a seed node;
//     the master of each of the 16384 slots, with its node id.
//   - Routing: a key goes to the master of RedisKeySlot(key) (CRC16 of its
//     hash tag, redis_slot.h). Every atomic step of the store touches one key,
//     so one node.
//   - MOVED <slot> <addr>: the slot is remapped at once, the command sent
//     there, and the whole map refreshed before the next call.
//   - ASK <slot> <addr>: the command is sent to <addr> once, preceded by
//     ASKING (the slot is being migrated and the key has moved already).
//   - TRYAGAIN (a multi-key command during a migration) and CLUSTERDOWN (a
//     failover under way): retried after 5 ms, doubling, for at most
//     `retry_time` in all.
//   - A connection that cannot be made, or that broke: the map is refreshed
//     before the next call (a failover may have promoted a replica). A call
//     whose connection broke after sending answers kUnavailable (its outcome
//     is unknown); one that could not connect is tried again after the
//     refresh.
//   - One RedisConnectionPool per node, made on first use and kept.
// A refresh is serialized and done at most every 100 ms (except when forced
// by ForEachMaster), so a failover does not flood the cluster with CLUSTER
// SLOTS.
#ifndef SCEPCA_SERVICE_REDIS_REDIS_CLUSTER_H_
#define SCEPCA_SERVICE_REDIS_REDIS_CLUSTER_H_

#include <array>
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
#include "service/redis/redis_slot.h"
#include "service/redis/redis_url.h"

namespace scepca {

struct RedisClusterOptions {
  // kind must be kCluster.
  RedisDeployment deployment;
  absl::Duration connect_timeout = absl::Milliseconds(200);
  absl::Duration command_timeout = absl::Milliseconds(300);
  // Connections per node.
  int pool_size = 16;
  // How long one call may keep following TRYAGAIN/CLUSTERDOWN or waiting
  // for a failover before answering kUnavailable.
  absl::Duration retry_time = absl::Seconds(1);
};

class RedisClusterBackend final : public RedisBackend {
 public:
  // Does not connect. Returns kInvalidArgument for a bad deployment.
  static absl::StatusOr<std::unique_ptr<RedisClusterBackend>> Create(
      const RedisClusterOptions& options);

  std::string Describe() const override;
  // Refreshes the slot map first, then runs `fn` on each master.
  absl::Status ForEachMaster(
      absl::FunctionRef<absl::Status(absl::string_view, RedisSession&)> fn)
      override;
  std::vector<std::vector<size_t>> GroupByNode(
      const std::vector<std::string>& keys) override;

  // Reloads the slot map now.
  absl::Status Refresh();
  // The master serving `key` now per the slot map ("" if unknown).
  std::string MasterOf(absl::string_view key);
  // The masters in the slot map ("host:port").
  std::vector<std::string> Masters();
  // How many times the slot map was loaded, and how many MOVED and ASK
  // redirections were followed (for tests).
  int64_t refreshes() const;
  int64_t moved() const;
  int64_t asked() const;

 protected:
  absl::Status Attempt(absl::string_view key, const RedisRedirect* redirect,
                       absl::FunctionRef<absl::Status(RedisSession&)> fn,
                       bool* reached) override;
  void OnRedirect(const RedisRedirect& redirect) override;
  bool OnFailure(const absl::Status& status, bool reached) override;

 private:
  struct SlotMap {
    std::vector<std::string> masters;   // "host:port"
    std::vector<std::string> node_ids;  // Same index as masters.
    // Index into masters per slot; -1: not served.
    std::array<int16_t, kRedisClusterSlots> owner;
  };

  explicit RedisClusterBackend(const RedisClusterOptions& options);

  // Loads the map unless one was loaded less than 100 ms ago (or `force`).
  absl::Status RefreshIfDue(bool force);
  // CLUSTER SLOTS from one node.
  absl::StatusOr<std::shared_ptr<const SlotMap>> LoadFrom(
      const std::string& address);
  absl::StatusOr<RedisConnectionPool*> PoolFor(const std::string& address);
  std::shared_ptr<const SlotMap> map() const;
  void MarkStale();

  const RedisClusterOptions options_;
  std::vector<std::string> seeds_;  // "host:port" from the URL.
  absl::Mutex refresh_mu_;          // Serializes refreshes.
  mutable absl::Mutex mu_;
  std::shared_ptr<const SlotMap> map_ ABSL_GUARDED_BY(mu_);
  bool stale_ ABSL_GUARDED_BY(mu_) = true;
  absl::Time last_refresh_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Status last_refresh_error_ ABSL_GUARDED_BY(mu_);
  int64_t refreshes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t moved_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t asked_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, std::unique_ptr<RedisConnectionPool>> pools_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace scepca

#endif  // SCEPCA_SERVICE_REDIS_REDIS_CLUSTER_H_
