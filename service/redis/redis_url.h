// File: redis_url.h
// Parses the address of a Redis server given on the command line:
//
//   redis://[user:password@]host[:port][/db]
//   unix://[user:password@]/path/to/redis.sock[?db=N]
//
// and of a Sentinel or Cluster deployment (RedisDeployment below).
//
// User and password may be percent-encoded (RFC 3986), so a password can hold
// '@', ':' or '/'. An IPv6 host is written in brackets: redis://[::1]:6379.
// TLS (rediss://) is not supported by hiredis 0.14; reach a remote Redis
// through a unix socket to a local TLS tunnel instead.
#ifndef SCEPCA_SERVICE_REDIS_REDIS_URL_H_
#define SCEPCA_SERVICE_REDIS_REDIS_URL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace scepca {

// Where and how to reach one Redis server. Copyable value type.
struct RedisUrl {
  enum class Transport { kTcp, kUnix };

  Transport transport = Transport::kTcp;
  // kTcp only: the host as written (name or IP literal, without brackets)
  // and the port.
  std::string host;
  int port = 6379;
  // kUnix only: the absolute path of the socket.
  std::string socket_path;
  // Credentials for AUTH; user is empty for "AUTH password" (the default
  // user). Both empty: no AUTH.
  std::string user;
  std::string password;
  bool has_password = false;
  // The logical database to SELECT (0: no SELECT).
  int db = 0;

  // Returns the URL without user or password, e.g. "redis://10.0.0.5:6379/0"
  // or "unix:///run/redis/redis.sock?db=0". Safe to log.
  std::string Redacted() const;
};

// Parses `url`. Returns kInvalidArgument naming the problem (the message never
// contains the password).
absl::StatusOr<RedisUrl> ParseRedisUrl(absl::string_view url);

// A Redis deployment given to --store: one server (redis://, unix://), or
//
//   redis-sentinel://[user:password@]host1:26379,host2:26379/MASTER[?db=N]
//   redis-cluster://[user:password@]host1:7000,host2:7001,...
//
// The sentinels (default port 26379) find the master named MASTER; the
// cluster nodes (default port 6379) are seeds for the slot map. The user and
// password authenticate to every Redis node and to the sentinels alike.
// Copyable value type.
struct RedisDeployment {
  enum class Kind { kStandalone, kSentinel, kCluster };

  Kind kind = Kind::kStandalone;
  // kStandalone: the server. kSentinel and kCluster: the credentials and
  // database (always 0 for kCluster) used for every node; host and port are
  // unused.
  RedisUrl server;
  // kSentinel: the sentinels; kCluster: the seed nodes. Each has the
  // credentials of `server`.
  std::vector<RedisUrl> hosts;
  // kSentinel: the name of the master the sentinels monitor.
  std::string master_name;

  // Returns the URL without user or password. Safe to log.
  std::string Redacted() const;
};

// Parses any of the URL forms above. Returns kInvalidArgument naming the
// problem (never the password).
absl::StatusOr<RedisDeployment> ParseRedisDeployment(absl::string_view url);

// Resolves `host` once, now, to the numeric addresses to connect to (at most
// four, IPv4 first), so that connecting later never blocks in getaddrinfo.
// An IP literal is returned as is. Returns kUnavailable if the name does not
// resolve now; callers may then fall back to the name.
absl::StatusOr<std::vector<std::string>> ResolveRedisHost(
    absl::string_view host);

}  // namespace scepca

#endif  // SCEPCA_SERVICE_REDIS_REDIS_URL_H_
