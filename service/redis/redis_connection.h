// File: redis_connection.h
// One blocking hiredis connection with bounded waits, and the mapping of
// Redis failures to absl::Status.
//
// Every command goes through redisCommandArgv (binary-safe: no format
// strings). Connecting is bounded by the connect timeout (per address tried),
// every read and write by the command timeout (SO_RCVTIMEO/SO_SNDTIMEO). Once a
// connection has failed (I/O error, timeout, EOF, protocol error) it is
// broken() and must be dropped: hiredis contexts cannot be reused after an
// error, and after a timeout the reply of the lost command could otherwise be
// read as the answer to the next one.
#ifndef SCEPCA_SERVICE_REDIS_REDIS_CONNECTION_H_
#define SCEPCA_SERVICE_REDIS_REDIS_CONNECTION_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "service/redis/redis_reply.h"
#include "service/redis/redis_url.h"

namespace scepca {

// Where to connect, as whom, and how long to wait. Copyable value type.
struct RedisConnectOptions {
  RedisUrl url;
  // kTcp: the numeric addresses to try in order (see ResolveRedisHost()).
  // Empty: connect to url.host as written (hiredis then resolves it, which may
  // block beyond the connect timeout).
  std::vector<std::string> addresses;
  // Bound on establishing the connection, for all addresses together.
  absl::Duration connect_timeout = absl::Milliseconds(200);
  // Bound on each write and each read of a command (including AUTH and
  // SELECT while connecting).
  absl::Duration command_timeout = absl::Milliseconds(300);
};

// The arguments of one command, e.g. {"HGET", key, "state"}. The views must
// stay valid for the duration of the call that takes them.
using RedisArgs = std::vector<absl::string_view>;

// A connection to one Redis server. Not thread-safe: one thread at a time
// (RedisConnectionPool hands each connection to one caller). Not copyable or
// movable; held by std::unique_ptr.
class RedisConnection {
 public:
  // Connects, applies the command timeout, then sends AUTH (if the URL has a
  // password) and SELECT (if db != 0).
  //
  // The first call in the process sets SIGPIPE to SIG_IGN if it was SIG_DFL
  // (hiredis writes with write(2); a peer that went away must not kill the
  // process).
  //
  // Returns kUnavailable if Redis cannot be reached within the connect
  // timeout, does not answer AUTH/SELECT in time, or refuses AUTH or SELECT
  // (the message says which; it never contains the password);
  // kInvalidArgument if a timeout is not positive.
  static absl::StatusOr<std::unique_ptr<RedisConnection>> Connect(
      const RedisConnectOptions& options);

  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;
  ~RedisConnection() = default;

  // Sends one command and returns Redis's reply, which may be an error reply
  // (turn it into a Status with StatusFromErrorReply()). Returns kUnavailable
  // if the connection failed or Redis did not answer within the command
  // timeout; the outcome of the command is then unknown, and the connection is
  // broken() for good. Returns kFailedPrecondition if called on a broken
  // connection.
  absl::StatusOr<RedisReply> Command(const RedisArgs& args);

  // Sends `commands` as one pipeline and returns their replies in order. Errors
  // as for Command(); on error no reply is returned (the outcome of every
  // command is then unknown).
  absl::StatusOr<std::vector<RedisReply>> Pipeline(
      const std::vector<RedisArgs>& commands);

  // Returns true once the connection has failed; it must then be dropped.
  bool broken() const { return broken_; }

  // Returns true if this idle connection looks usable: not broken, not closed
  // by the server, and with nothing unread on the socket. Never blocks.
  bool IdleAndOpen() const;

  // Returns the redacted address, e.g. "redis://127.0.0.1:6379/0".
  const std::string& description() const { return description_; }

 private:
  RedisConnection(RedisContextPtr context, std::string description,
                  absl::Duration command_timeout);

  // Marks the connection broken and returns the status for the context's
  // error (`saved_errno` is errno right after the failed call).
  absl::Status Fail(int saved_errno);

  RedisContextPtr context_;
  std::string description_;
  absl::Duration command_timeout_;
  bool broken_ = false;
};

// Returns the status for an error reply `error` of Redis (e.g.
// "OOM command not allowed when used memory > 'maxmemory'."):
//   - kResourceExhausted for OOM (Redis is at maxmemory and refuses writes);
//   - kUnavailable for errors that go away without a change on our side:
//     READONLY (a replica), MISCONF (cannot persist), LOADING, BUSY,
//     MASTERDOWN, TRYAGAIN, CLUSTERDOWN, NOAUTH;
//   - kInternal for anything else (a bug, a wrong key type, an ACL that denies
//     a command the store needs, ...).
// The message starts with "Redis at <description> " and quotes the first line
// of the error (Redis errors carry no key names or values).
absl::Status StatusFromErrorReply(absl::string_view description,
                                  absl::string_view error);

}  // namespace scepca

#endif  // SCEPCA_SERVICE_REDIS_REDIS_CONNECTION_H_
