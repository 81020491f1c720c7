#include "service/redis/redis_sentinel.h"

#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "service/core/log.h"

namespace scepca {
namespace {

// No new resolution within this time after a failed one.
constexpr absl::Duration kResolveRetry = absl::Milliseconds(100);

std::string JoinHostPort(const std::string& host, int port) {
  const bool ipv6 = host.find(':') != std::string::npos;
  return absl::StrCat(ipv6 ? "[" : "", host, ipv6 ? "]" : "", ":", port);
}

}  // namespace

absl::StatusOr<std::unique_ptr<RedisSentinelBackend>>
RedisSentinelBackend::Create(const RedisSentinelOptions& options) {
  if (options.deployment.kind != RedisDeployment::Kind::kSentinel ||
      options.deployment.hosts.empty() ||
      options.deployment.master_name.empty()) {
    return absl::InvalidArgumentError(
        "a Sentinel backend needs sentinels and a master name");
  }
  if (options.pool_size < 1 ||
      options.connect_timeout <= absl::ZeroDuration() ||
      options.command_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "Redis pool size and timeouts must be positive");
  }
  return absl::WrapUnique(new RedisSentinelBackend(options));
}

RedisSentinelBackend::RedisSentinelBackend(const RedisSentinelOptions& options)
    : options_(options) {
  max_attempts_ = 8;
  max_retry_time_ = options.failover_wait;
}

std::string RedisSentinelBackend::Describe() const {
  return options_.deployment.Redacted();
}

std::string RedisSentinelBackend::CurrentMaster() const {
  absl::MutexLock lock(&mu_);
  return master_;
}

int64_t RedisSentinelBackend::MasterChanges() const {
  absl::MutexLock lock(&mu_);
  return changes_;
}

RedisConnectOptions RedisSentinelBackend::NodeOptions(const std::string& host,
                                                      int port) const {
  RedisConnectOptions connect;
  connect.url = options_.deployment.server;
  connect.url.transport = RedisUrl::Transport::kTcp;
  connect.url.host = host;
  connect.url.port = port;
  // Sentinels report IP addresses (unless resolve-hostnames is on): resolve
  // once here so that connecting never waits for DNS.
  absl::StatusOr<std::vector<std::string>> addresses = ResolveRedisHost(host);
  if (addresses.ok()) connect.addresses = *std::move(addresses);
  connect.connect_timeout = options_.connect_timeout;
  connect.command_timeout = options_.command_timeout;
  return connect;
}

absl::StatusOr<std::string> RedisSentinelBackend::AskSentinel(
    const RedisUrl& sentinel) {
  RedisConnectOptions connect;
  connect.url = sentinel;
  connect.url.db = 0;  // Sentinels have no databases.
  absl::StatusOr<std::vector<std::string>> addresses =
      ResolveRedisHost(sentinel.host);
  if (addresses.ok()) connect.addresses = *std::move(addresses);
  connect.connect_timeout = options_.connect_timeout;
  connect.command_timeout = options_.command_timeout;
  absl::StatusOr<std::unique_ptr<RedisConnection>> connection =
      RedisConnection::Connect(connect);
  if (!connection.ok()) return connection.status();
  absl::StatusOr<RedisReply> reply =
      (*connection)
          ->Command({"SENTINEL", "get-master-addr-by-name",
                     options_.deployment.master_name});
  if (!reply.ok()) return reply.status();
  const std::string where =
      absl::StrCat("sentinel ", JoinHostPort(sentinel.host, sentinel.port));
  if (reply->is_error()) {
    return absl::UnavailableError(
        absl::StrCat(where, " refused SENTINEL get-master-addr-by-name: ",
                     reply->str.substr(0, 200)));
  }
  if (reply->is_nil()) {
    return absl::UnavailableError(
        absl::StrCat(where, " does not know a master named ",
                     options_.deployment.master_name));
  }
  int port = 0;
  if (!reply->is_array() || reply->elements.size() != 2 ||
      !reply->elements[0].is_string() || !reply->elements[1].is_string() ||
      !absl::SimpleAtoi(reply->elements[1].str, &port) || port < 1 ||
      port > 65535 || reply->elements[0].str.empty()) {
    return absl::UnavailableError(
        absl::StrCat(where, " sent an unexpected master address"));
  }
  return JoinHostPort(reply->elements[0].str, port);
}

absl::Status RedisSentinelBackend::CheckIsMaster(const std::string& host,
                                                 int port) {
  absl::StatusOr<std::unique_ptr<RedisConnection>> connection =
      RedisConnection::Connect(NodeOptions(host, port));
  if (!connection.ok()) return connection.status();
  absl::StatusOr<RedisReply> role = (*connection)->Command({"ROLE"});
  if (!role.ok()) return role.status();
  if (role->is_error()) {
    return StatusFromErrorReply((*connection)->description(), role->str);
  }
  if (!role->is_array() || role->elements.empty() ||
      role->elements[0].str != "master") {
    return absl::UnavailableError(absl::StrCat(
        "Redis at ", JoinHostPort(host, port),
        " is named master by a sentinel but is not one (ROLE: ",
        role->is_array() && !role->elements.empty() ? role->elements[0].str
                                                    : "?",
        "); a failover may be under way"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RedisSentinelBackend::ResolveMaster() {
  const std::vector<RedisUrl>& sentinels = options_.deployment.hosts;
  size_t first;
  {
    absl::MutexLock lock(&mu_);
    first = preferred_sentinel_;
  }
  std::string errors;
  for (size_t n = 0; n < sentinels.size(); ++n) {
    const size_t i = (first + n) % sentinels.size();
    absl::StatusOr<std::string> address = AskSentinel(sentinels[i]);
    absl::Status checked;
    if (address.ok()) {
      std::string host;
      int port = 0;
      checked = SplitHostPort(*address, &host, &port)
                    ? CheckIsMaster(host, port)
                    : absl::UnavailableError("bad master address");
      if (checked.ok()) {
        absl::MutexLock lock(&mu_);
        preferred_sentinel_ = i;
        return address;
      }
    } else {
      checked = address.status();
    }
    absl::StrAppend(&errors, errors.empty() ? "" : "; ", checked.message());
  }
  return absl::UnavailableError(
      absl::StrCat("no sentinel of ", Describe(), " names a reachable master ",
                   options_.deployment.master_name, ": ", errors));
}

absl::StatusOr<RedisConnectionPool*> RedisSentinelBackend::MasterPool() {
  int64_t seen_generation;
  {
    absl::MutexLock lock(&mu_);
    if (!stale_ && master_pool_ != nullptr) return master_pool_;
    seen_generation = generation_;
  }
  absl::MutexLock resolving(&resolve_mu_);
  {
    absl::MutexLock lock(&mu_);
    // Another thread resolved while we waited.
    if (generation_ != seen_generation && !stale_ && master_pool_ != nullptr) {
      return master_pool_;
    }
    if (absl::Now() - last_failure_ < kResolveRetry) return last_error_;
  }
  absl::StatusOr<std::string> address = ResolveMaster();
  absl::MutexLock lock(&mu_);
  ++generation_;
  if (!address.ok()) {
    last_failure_ = absl::Now();
    last_error_ = address.status();
    return address.status();
  }
  last_failure_ = absl::InfinitePast();
  if (*address != master_) {
    if (!master_.empty()) {
      ++changes_;
      LogWarning(absl::StrCat("redis_master_changed: ", Describe(),
                              " master is now ", *address, " (was ", master_,
                              ")"));
    }
    master_ = *address;
  }
  std::unique_ptr<RedisConnectionPool>& pool = pools_[master_];
  if (pool == nullptr) {
    std::string host;
    int port = 0;
    SplitHostPort(master_, &host, &port);
    RedisPoolOptions pool_options;
    pool_options.connect = NodeOptions(host, port);
    pool_options.size = options_.pool_size;
    pool_options.borrow_timeout = options_.command_timeout;
    absl::StatusOr<std::unique_ptr<RedisConnectionPool>> created =
        RedisConnectionPool::Create(pool_options);
    if (!created.ok()) {
      pools_.erase(master_);
      return created.status();
    }
    pool = *std::move(created);
  }
  master_pool_ = pool.get();
  stale_ = false;
  return master_pool_;
}

void RedisSentinelBackend::Invalidate() {
  absl::MutexLock lock(&mu_);
  stale_ = true;
}

absl::Status RedisSentinelBackend::Attempt(
    absl::string_view /*key*/, const RedisRedirect* /*redirect*/,
    absl::FunctionRef<absl::Status(RedisSession&)> fn, bool* reached) {
  absl::StatusOr<RedisConnectionPool*> pool = MasterPool();
  if (!pool.ok()) {
    *reached = false;
    return pool.status();
  }
  absl::StatusOr<RedisConnectionPool::Lease> lease = (*pool)->Borrow();
  if (!lease.ok()) {
    *reached = false;
    return lease.status();
  }
  std::string node = (*pool)->Describe();
  RedisSession session(&lease->connection(), std::move(node),
                       RedisSession::Mode::kSentinel, false);
  absl::Status status = fn(session);
  if (!status.ok() && session.broken()) Invalidate();
  return status;
}

void RedisSentinelBackend::OnRedirect(const RedisRedirect& /*redirect*/) {
  Invalidate();  // READONLY or MASTERDOWN: the master was demoted.
}

bool RedisSentinelBackend::OnFailure(const absl::Status& /*status*/,
                                     bool reached) {
  if (reached) return false;  // Outcome unknown: answer kUnavailable.
  Invalidate();
  return true;
}

absl::Status RedisSentinelBackend::ForEachMaster(
    absl::FunctionRef<absl::Status(absl::string_view, RedisSession&)> fn) {
  return WithNode("", [&](RedisSession& session) { return fn("", session); });
}

std::vector<std::vector<size_t>> RedisSentinelBackend::GroupByNode(
    const std::vector<std::string>& keys) {
  std::vector<size_t> all(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) all[i] = i;
  return {std::move(all)};
}

}  // namespace scepca
