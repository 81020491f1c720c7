// File: redis_backend.h
// How the Redis store reaches the node that serves a key: one server
// (RedisSingleNodeBackend, below), a master found through Sentinel
// (redis_sentinel.h), or the master of the key's slot in a Redis Cluster
// (redis_cluster.h).
//
// The store runs each step on one key through WithNode(key, fn): fn gets a
// RedisSession, exclusive use of one connection to the node serving that key,
// and sends its commands through it. Commands that must share a connection
// (a write, then WAIT for its replication) go in the same fn.
//
// Redirections. A session turns the error replies that mean "not here, not
// now" into a Status carrying a RedisRedirect (see RedirectOf()):
//   Cluster:  MOVED <slot> <host:port>, ASK <slot> <host:port>, TRYAGAIN,
//             CLUSTERDOWN;
//   Sentinel: READONLY (the master was demoted) and MASTERDOWN.
// A redirected command did not run, so the backend may run fn again on the
// node named (after ASK with ASKING in front of each command), after a short
// backoff (TRYAGAIN), or after finding the current master or slot map. fn must
// therefore be safe to run again after a redirection: it may only have done
// reads, or writes that a redirection could not have reached (every fn of the
// store sends its one write as its first keyed command). The number of
// attempts and the time spent are bounded; when they run out, the last
// redirection comes back as kUnavailable.
//
// A session whose connection failed (timeout, reset) returns kUnavailable as
// RedisConnection does: the outcome of the command is unknown and fn is not
// run again; the backend re-resolves the master or the slot map before the
// next call.
#ifndef SCEPCA_SERVICE_REDIS_REDIS_BACKEND_H_
#define SCEPCA_SERVICE_REDIS_REDIS_BACKEND_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "service/redis/redis_connection.h"
#include "service/redis/redis_connection_pool.h"
#include "service/redis/redis_reply.h"

namespace scepca {

// An error reply that sends the command elsewhere or to later.
struct RedisRedirect {
  enum class Kind {
    kMoved,        // The slot is served by `address` from now on.
    kAsk,          // This once, ask `address` (after ASKING).
    kTryAgain,     // A multi-key command during a resharding: retry soon.
    kClusterDown,  // The cluster cannot serve the slot (failover running).
    kReadOnly,     // A replica (Sentinel: the master was demoted).
    kMasterDown,   // A replica that lost its master.
  };
  Kind kind = Kind::kMoved;
  int slot = -1;        // kMoved, kAsk.
  std::string address;  // kMoved, kAsk: "host:port" ("[v6]:port").
};

// Parses a Redis error reply's first line; nullopt if it is no redirection.
// READONLY and MASTERDOWN are redirections only for `sentinel` backends;
// MOVED, ASK, TRYAGAIN and CLUSTERDOWN only for `cluster` ones.
absl::optional<RedisRedirect> ParseRedirect(absl::string_view error,
                                            bool cluster, bool sentinel);

// Returns the redirection carried by `status`, if any.
absl::optional<RedisRedirect> RedirectOf(const absl::Status& status);

// Splits "host:port" or "[v6]:port" into host (without brackets) and port.
// Returns false if malformed.
bool SplitHostPort(absl::string_view address, std::string* host, int* port);

// Exclusive use of one connection to one node, for the duration of a
// WithNode() call. Not thread-safe; not copyable.
class RedisSession {
 public:
  enum class Mode { kSingleNode, kSentinel, kCluster };

  // `node` names the node ("host:port", or the single node's description).
  // With `asking`, every command is preceded by ASKING (after an ASK
  // redirection).
  RedisSession(RedisConnection* connection, std::string node, Mode mode,
               bool asking);
  RedisSession(const RedisSession&) = delete;
  RedisSession& operator=(const RedisSession&) = delete;

  // As RedisConnection::Command(), except that a redirection (see the top of
  // this file) is returned as a kUnavailable status carrying it.
  absl::StatusOr<RedisReply> Command(const RedisArgs& args);

  // As RedisConnection::Pipeline(). Redirections stay error replies, one per
  // command, so that the caller can tell which commands did not run (see
  // RedisBackend::PipelineByKey()).
  absl::StatusOr<std::vector<RedisReply>> Pipeline(
      const std::vector<RedisArgs>& commands);

  // The connection's redacted address, e.g. "redis://127.0.0.1:7000/0".
  const std::string& description() const { return connection_->description(); }
  // The node, e.g. "127.0.0.1:7000".
  const std::string& node() const { return node_; }
  // True once the connection failed.
  bool broken() const { return connection_->broken(); }

  // Returns the redirection status for `reply` if it is one, else OK.
  absl::Status CheckRedirect(const RedisReply& reply) const;
  // Returns OK for a reply that is not an error; else the redirection, or
  // the Status of the error reply (StatusFromErrorReply()). For the replies
  // of Pipeline().
  absl::Status ReplyStatus(const RedisReply& reply) const;

 private:
  RedisConnection* const connection_;
  const std::string node_;
  const Mode mode_;
  const bool asking_;
};

// Where the store's keys live. Thread-safe.
class RedisBackend {
 public:
  virtual ~RedisBackend() = default;

  // Returns the redacted deployment, e.g. "redis-cluster://h:7000,h:7001".
  virtual std::string Describe() const = 0;

  // Runs `fn` with a session on the node serving `key` (an empty key: the
  // master; in a cluster, any master), following redirections as described at
  // the top of this file. Returns what fn returns, or kUnavailable if no node
  // could be reached.
  absl::Status WithNode(absl::string_view key,
                        absl::FunctionRef<absl::Status(RedisSession&)> fn);

  // Runs `fn` once on every master with its node id (a cluster node id; ""
  // for the one master of a single node or Sentinel deployment). Stops at
  // the first error.
  virtual absl::Status ForEachMaster(
      absl::FunctionRef<absl::Status(absl::string_view node_id,
                                     RedisSession& session)>
          fn) = 0;

  // Returns the indices of `keys` grouped by the node that serves them now,
  // each group in order (one group for a single node).
  virtual std::vector<std::vector<size_t>> GroupByNode(
      const std::vector<std::string>& keys) = 0;

  // Sends commands[i] (addressing keys[i]) pipelined, one pipeline per node,
  // and returns the replies in order. A command that was redirected is sent
  // again on its own through WithNode(). Error replies other than
  // redirections are returned as replies. Fails if a connection fails (then
  // the outcome of every command not yet answered is unknown).
  absl::StatusOr<std::vector<RedisReply>> PipelineByKey(
      const std::vector<std::string>& keys,
      const std::vector<RedisArgs>& commands);

 protected:
  // One attempt of WithNode(): runs `fn` on the node serving `key`, or on
  // the node `redirect` names (MOVED, or ASK: then with ASKING). Sets
  // *reached to false if it failed before fn could send anything (no
  // connection to the node).
  virtual absl::Status Attempt(
      absl::string_view key, const RedisRedirect* redirect,
      absl::FunctionRef<absl::Status(RedisSession&)> fn, bool* reached) = 0;

  // Called by WithNode() after a redirection, before the next attempt (e.g.
  // to re-resolve the master or update the slot map).
  virtual void OnRedirect(const RedisRedirect& redirect) = 0;

  // Called by WithNode() after an attempt that failed otherwise. `reached`
  // is Attempt()'s *reached. Returns true if WithNode() may try again (only
  // sensible when nothing was sent).
  virtual bool OnFailure(const absl::Status& status, bool reached) = 0;

  // Bounds of the default WithNode().
  int max_attempts_ = 5;
  absl::Duration max_retry_time_ = absl::Seconds(1);
};

// One Redis server at a fixed address (redis://, unix://). Never redirects:
// READONLY from it is an error (kUnavailable), as before Sentinel support.
class RedisSingleNodeBackend final : public RedisBackend {
 public:
  explicit RedisSingleNodeBackend(std::unique_ptr<RedisConnectionPool> pool);

  std::string Describe() const override { return pool_->Describe(); }
  absl::Status ForEachMaster(
      absl::FunctionRef<absl::Status(absl::string_view, RedisSession&)> fn)
      override;
  std::vector<std::vector<size_t>> GroupByNode(
      const std::vector<std::string>& keys) override;

 protected:
  absl::Status Attempt(absl::string_view key, const RedisRedirect* redirect,
                       absl::FunctionRef<absl::Status(RedisSession&)> fn,
                       bool* reached) override;
  void OnRedirect(const RedisRedirect&) override {}
  bool OnFailure(const absl::Status&, bool) override { return false; }

 private:
  std::unique_ptr<RedisConnectionPool> pool_;
};

// Runs one command on the node serving `key` (RedisBackend::WithNode());
// an error reply becomes its Status.
absl::StatusOr<RedisReply> KeyCommand(RedisBackend& backend,
                                      absl::string_view key,
                                      const RedisArgs& args);

}  // namespace scepca

#endif  // SCEPCA_SERVICE_REDIS_REDIS_BACKEND_H_
