// File: redis_connection_pool.h
// A fixed-size pool of RedisConnections shared by the threads of a store.
//
// Connections are made lazily, on the first Borrow() that finds no idle one.
// A connection that failed is dropped when returned; an idle connection the
// server closed (restart, timeout) is noticed before reuse and dropped
// without sending anything. When connecting fails, further attempts wait for
// a backoff (50 ms doubling up to 2 s); until then Borrow() fails at once with
// kUnavailable, so callers never queue behind a dead server.
#ifndef SCEPCA_SERVICE_REDIS_REDIS_CONNECTION_POOL_H_
#define SCEPCA_SERVICE_REDIS_REDIS_CONNECTION_POOL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/redis/redis_connection.h"

namespace scepca {

struct RedisPoolOptions {
  RedisConnectOptions connect;
  // Most connections open at once (and most concurrent callers served).
  int size = 16;
  // Longest wait for a connection when all `size` are in use.
  absl::Duration borrow_timeout = absl::Milliseconds(300);
  // Wait after a failed connect: min_backoff, doubling per further failure
  // up to max_backoff; reset by a successful connect.
  absl::Duration min_backoff = absl::Milliseconds(50);
  absl::Duration max_backoff = absl::Seconds(2);
};

// Thread-safe. Not copyable or movable; must outlive every Lease.
class RedisConnectionPool {
 public:
  // Exclusive use of one connection until destroyed, then given back to the
  // pool (or dropped if it broke). Move-only.
  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&& other) noexcept;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();

    RedisConnection& connection() const { return *connection_; }
    RedisConnection& operator*() const { return *connection_; }
    RedisConnection* operator->() const { return connection_.get(); }

   private:
    friend class RedisConnectionPool;
    Lease(RedisConnectionPool* pool,
          std::unique_ptr<RedisConnection> connection);
    void Release();

    RedisConnectionPool* pool_;
    std::unique_ptr<RedisConnection> connection_;
  };

  // Returns a pool without connecting. Returns kInvalidArgument if a size,
  // timeout or backoff is not positive.
  static absl::StatusOr<std::unique_ptr<RedisConnectionPool>> Create(
      const RedisPoolOptions& options);

  RedisConnectionPool(const RedisConnectionPool&) = delete;
  RedisConnectionPool& operator=(const RedisConnectionPool&) = delete;

  // Returns an open connection: an idle one, or a new one. Waits at most
  // borrow_timeout for a free slot, then at most the connect timeout (plus
  // AUTH/SELECT) to connect. Returns kUnavailable if every slot stayed busy,
  // if connecting failed, or if a recent connect failed and the backoff has
  // not elapsed (the message carries that failure and the time left).
  absl::StatusOr<Lease> Borrow();

  // Returns the redacted address of the server.
  std::string Describe() const { return options_.connect.url.Redacted(); }

  // Returns how many connections are idle in the pool (for tests).
  int IdleCountForTesting() const;

 private:
  explicit RedisConnectionPool(const RedisPoolOptions& options);

  // Takes back a lease's connection (null or broken: dropped).
  void Return(std::unique_ptr<RedisConnection> connection);

  const RedisPoolOptions options_;
  mutable absl::Mutex mu_;
  // Slots not lent out; each may hold an idle connection or none.
  int free_slots_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<RedisConnection>> idle_ ABSL_GUARDED_BY(mu_);
  // After a failed connect: no new attempt before next_connect_.
  absl::Duration backoff_ ABSL_GUARDED_BY(mu_) = absl::ZeroDuration();
  absl::Time next_connect_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Status last_connect_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace scepca

#endif  // SCEPCA_SERVICE_REDIS_REDIS_CONNECTION_POOL_H_
