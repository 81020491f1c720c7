// File: redis_topology.h
// Real Redis deployments for tests, on free loopback ports, stopped and
// removed on destruction; every wait is bounded.
//
//   RedisSentinelTopology: one master, two replicas, three sentinels
//     (redis-server --sentinel, so the redis-sentinel package is optional),
//     quorum 2, down-after-milliseconds 5000 (options).
//   RedisClusterTopology: N masters with R replicas each; three masters or
//     more are made with `redis-cli --cluster create ... --cluster-replicas R
//     --cluster-yes`, fewer (which redis-cli refuses) by hand with CLUSTER
//     ADDSLOTSRANGE and CLUSTER MEET. cluster-node-timeout 5000 ms (options).
//
// The default failure detection times are long enough that a stall of a
// loaded machine does not fail a master over in a test that expects no
// failover; a test that kills a master asks for kRedisFastFailoverMs.
//
// Every node and sentinel requires the password kRedisTopologyPassword
// (requirepass; masterauth; sentinel auth-pass and sentinel-pass), so the
// URLs these helpers give carry it.
#ifndef SCEPCA_TESTS_TESTING_REDIS_TOPOLOGY_H_
#define SCEPCA_TESTS_TESTING_REDIS_TOPOLOGY_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/core/challenge_store.h"
#include "service/redis/redis_reply.h"
#include "tests/testing/redis_server.h"

namespace scepca::testing {

inline constexpr char kRedisTopologyPassword[] = "topology-pw";

// Failure detection time (Sentinel's down-after-milliseconds, Cluster's
// cluster-node-timeout) for tests that kill a master and wait for the
// failover: short, but not so short that a process starved of CPU for a
// second on a loaded machine (seen with 1000 ms: a sentinel that did not
// hear from the just promoted master) makes a second, spurious failover.
inline constexpr int kRedisFastFailoverMs = 3000;

// Runs one command on 127.0.0.1:`port` with AUTH kRedisTopologyPassword, on a
// fresh connection (2 s timeouts). Error replies are returned as replies.
absl::StatusOr<RedisReply> AdminCommand(int port,
                                        const std::vector<std::string>& args);

// Returns `field` of an INFO reply ("role" -> "master"), or "".
std::string InfoField(const std::string& info, const std::string& field);

struct RedisSentinelTopologyOptions {
  // Sentinel's down-after-milliseconds.
  int down_after_ms = 5000;
};

class RedisSentinelTopology {
 public:
  static constexpr char kMasterName[] = "scepmaster";

  // Starts the master, the replicas (waits until both are in sync) and the
  // sentinels (waits until every sentinel sees both replicas and the other
  // sentinels). Returns kUnavailable with the logs if that takes over 30 s.
  static absl::StatusOr<std::unique_ptr<RedisSentinelTopology>> Start(
      const RedisSentinelTopologyOptions& options = {});

  RedisSentinelTopology(const RedisSentinelTopology&) = delete;
  RedisSentinelTopology& operator=(const RedisSentinelTopology&) = delete;
  ~RedisSentinelTopology() = default;

  // redis-sentinel://:pw@127.0.0.1:s1,127.0.0.1:s2,127.0.0.1:s3/scepmaster
  std::string url() const;
  // The redis nodes (index 0 started as the master) and the sentinels.
  RedisServer& node(int i) { return *nodes_[static_cast<size_t>(i)]; }
  RedisServer& sentinel(int i) { return *sentinels_[static_cast<size_t>(i)]; }
  // Index of the node that is master now per ROLE (-1 if none answers so).
  int MasterIndex();
  // Kills the current master with SIGKILL and waits (at most `timeout`)
  // until a sentinel names a different, live master that says ROLE master.
  // Returns the new master's index.
  absl::StatusOr<int> KillMasterAndWaitForFailover(
      absl::Duration timeout = absl::Seconds(30));
  // Logs of every process (for failure messages).
  std::string Logs() const;

 private:
  RedisSentinelTopology() = default;
  std::vector<std::unique_ptr<RedisServer>> nodes_;
  std::vector<std::unique_ptr<RedisServer>> sentinels_;
  std::string config_dir_;
};

struct RedisClusterTopologyOptions {
  int masters = 3;
  int replicas_per_master = 1;
  // cluster-node-timeout.
  int node_timeout_ms = 5000;
};

class RedisClusterTopology {
 public:
  // Starts the nodes, makes the cluster and waits until every node says
  // cluster_state:ok and agrees on the slot owners, and every replica is in
  // sync. Returns kUnavailable (with logs) if that takes over 60 s.
  static absl::StatusOr<std::unique_ptr<RedisClusterTopology>> Start(
      const RedisClusterTopologyOptions& options = {});

  RedisClusterTopology(const RedisClusterTopology&) = delete;
  RedisClusterTopology& operator=(const RedisClusterTopology&) = delete;
  ~RedisClusterTopology() = default;

  // redis-cluster://:pw@127.0.0.1:p1,127.0.0.1:p2,... (every node).
  std::string url() const;
  int size() const { return static_cast<int>(nodes_.size()); }
  RedisServer& node(int i) { return *nodes_[static_cast<size_t>(i)]; }
  // Ports of the live nodes that are masters with at least one slot.
  std::vector<int> MasterPorts();
  // The node id of the node on `port`.
  absl::StatusOr<std::string> NodeId(int port);
  // The port of the master serving `slot`, per the node on `ask_port`.
  absl::StatusOr<int> MasterPortOfSlot(int slot, int ask_port);
  // Moves `slot` from the master on `from_port` to the one on `to_port` by
  // hand: SETSLOT IMPORTING/MIGRATING, MIGRATE of its keys in batches of
  // `batch` with `pause` between batches, then SETSLOT NODE on every master.
  absl::Status MigrateSlot(int slot, int from_port, int to_port, int batch = 5,
                           absl::Duration pause = absl::Milliseconds(20));
  // Kills the master on `port` with SIGKILL and waits (at most `timeout`)
  // until its slots are served by another node and the cluster is ok.
  // Returns the port of the promoted node.
  absl::StatusOr<int> KillMasterAndWaitForFailover(
      int port, absl::Duration timeout = absl::Seconds(30));
  // Waits until every live node says cluster_state:ok.
  absl::Status WaitUntilOk(absl::Duration timeout);
  std::string Logs() const;

 private:
  RedisClusterTopology() = default;
  RedisServer* NodeOnPort(int port);
  RedisClusterTopologyOptions options_;
  std::vector<std::unique_ptr<RedisServer>> nodes_;
};

// A steady load on two or more stores that share one deployment: each thread
// inserts fresh challenges through its store and consumes recent challenges
// (its own and other threads') through every store, so that several stores
// race to consume each challenge. Counts the valid answers (kConsumed) per
// challenge: a correct deployment never gives more than one.
class ConsumeLoad {
 public:
  ConsumeLoad(std::vector<ChallengeStore*> stores, int threads_per_store);
  ConsumeLoad(const ConsumeLoad&) = delete;
  ConsumeLoad& operator=(const ConsumeLoad&) = delete;
  ~ConsumeLoad() { Stop(); }

  // Stops and joins the threads.
  void Stop();
  // Waits until at least `n` more consumes succeeded (within `timeout`).
  bool WaitForProgress(int64_t n, absl::Duration timeout);

  int64_t inserts() const { return inserts_.load(); }
  int64_t consumes() const { return consumes_.load(); }
  int64_t valid() const { return valid_.load(); }
  int64_t errors() const { return errors_.load(); }
  // The largest number of valid answers for one challenge.
  int MaxValidPerChallenge() const;
  // A few error messages (for failure output).
  std::string ErrorSample() const;

 private:
  void Run(size_t thread, ChallengeStore* own);
  void RecordError(const absl::Status& status);

  std::vector<ChallengeStore*> stores_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  std::atomic<int64_t> inserts_{0}, consumes_{0}, valid_{0}, errors_{0};
  mutable absl::Mutex mu_;
  std::map<std::string, int> valid_per_id_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> recent_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> error_sample_ ABSL_GUARDED_BY(mu_);
};

}  // namespace scepca::testing

#endif  // SCEPCA_TESTS_TESTING_REDIS_TOPOLOGY_H_
