#include "service/redis/redis_cluster.h"

#include <algorithm>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "service/core/log.h"

namespace scepca {
namespace {

// Shortest time between two slot map loads (except forced ones).
constexpr absl::Duration kMinRefreshInterval = absl::Milliseconds(100);

std::string JoinHostPort(const std::string& host, int64_t port) {
  const bool ipv6 = host.find(':') != std::string::npos;
  return absl::StrCat(ipv6 ? "[" : "", host, ipv6 ? "]" : "", ":", port);
}

}  // namespace

absl::StatusOr<std::unique_ptr<RedisClusterBackend>>
RedisClusterBackend::Create(const RedisClusterOptions& options) {
  if (options.deployment.kind != RedisDeployment::Kind::kCluster ||
      options.deployment.hosts.empty()) {
    return absl::InvalidArgumentError("a Cluster backend needs seed nodes");
  }
  if (options.deployment.server.db != 0) {
    return absl::InvalidArgumentError("Redis Cluster has only database 0");
  }
  if (options.pool_size < 1 ||
      options.connect_timeout <= absl::ZeroDuration() ||
      options.command_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "Redis pool size and timeouts must be positive");
  }
  return absl::WrapUnique(new RedisClusterBackend(options));
}

RedisClusterBackend::RedisClusterBackend(const RedisClusterOptions& options)
    : options_(options) {
  max_attempts_ = 16;
  max_retry_time_ = options.retry_time;
  for (const RedisUrl& seed : options.deployment.hosts) {
    seeds_.push_back(JoinHostPort(seed.host, seed.port));
  }
}

std::string RedisClusterBackend::Describe() const {
  return options_.deployment.Redacted();
}

int64_t RedisClusterBackend::refreshes() const {
  absl::MutexLock lock(&mu_);
  return refreshes_;
}
int64_t RedisClusterBackend::moved() const {
  absl::MutexLock lock(&mu_);
  return moved_;
}
int64_t RedisClusterBackend::asked() const {
  absl::MutexLock lock(&mu_);
  return asked_;
}

std::shared_ptr<const RedisClusterBackend::SlotMap> RedisClusterBackend::map()
    const {
  absl::MutexLock lock(&mu_);
  return map_;
}

void RedisClusterBackend::MarkStale() {
  absl::MutexLock lock(&mu_);
  stale_ = true;
}

absl::StatusOr<RedisConnectionPool*> RedisClusterBackend::PoolFor(
    const std::string& address) {
  absl::MutexLock lock(&mu_);
  std::unique_ptr<RedisConnectionPool>& pool = pools_[address];
  if (pool != nullptr) return pool.get();
  std::string host;
  int port = 0;
  if (!SplitHostPort(address, &host, &port)) {
    pools_.erase(address);
    return absl::InternalError(
        absl::StrCat("bad Redis Cluster node address ", address));
  }
  RedisPoolOptions pool_options;
  pool_options.connect.url = options_.deployment.server;
  pool_options.connect.url.transport = RedisUrl::Transport::kTcp;
  pool_options.connect.url.host = host;
  pool_options.connect.url.port = port;
  absl::StatusOr<std::vector<std::string>> addresses = ResolveRedisHost(host);
  if (addresses.ok()) pool_options.connect.addresses = *std::move(addresses);
  pool_options.connect.connect_timeout = options_.connect_timeout;
  pool_options.connect.command_timeout = options_.command_timeout;
  pool_options.size = options_.pool_size;
  pool_options.borrow_timeout = options_.command_timeout;
  absl::StatusOr<std::unique_ptr<RedisConnectionPool>> created =
      RedisConnectionPool::Create(pool_options);
  if (!created.ok()) {
    pools_.erase(address);
    return created.status();
  }
  pool = *std::move(created);
  return pool.get();
}

absl::StatusOr<std::shared_ptr<const RedisClusterBackend::SlotMap>>
RedisClusterBackend::LoadFrom(const std::string& address) {
  absl::StatusOr<RedisConnectionPool*> pool = PoolFor(address);
  if (!pool.ok()) return pool.status();
  absl::StatusOr<RedisConnectionPool::Lease> lease = (*pool)->Borrow();
  if (!lease.ok()) return lease.status();
  absl::StatusOr<RedisReply> reply = (*lease)->Command({"CLUSTER", "SLOTS"});
  if (!reply.ok()) return reply.status();
  if (reply->is_error()) {
    return StatusFromErrorReply((*lease)->description(), reply->str);
  }
  const absl::Status malformed = absl::UnavailableError(absl::StrCat(
      "Redis at ", address, " sent an unexpected CLUSTER SLOTS reply"));
  if (!reply->is_array()) return malformed;
  std::string asked_host;
  int asked_port = 0;
  SplitHostPort(address, &asked_host, &asked_port);
  auto map = std::make_shared<SlotMap>();
  map->owner.fill(-1);
  int covered = 0;
  for (const RedisReply& range : reply->elements) {
    if (!range.is_array() || range.elements.size() < 3 ||
        !range.elements[0].is_integer() || !range.elements[1].is_integer() ||
        !range.elements[2].is_array() ||
        range.elements[2].elements.size() < 2) {
      return malformed;
    }
    const int64_t first = range.elements[0].integer;
    const int64_t last = range.elements[1].integer;
    const RedisReply& master = range.elements[2];
    if (first < 0 || last >= kRedisClusterSlots || first > last ||
        !master.elements[0].is_string() || !master.elements[1].is_integer()) {
      return malformed;
    }
    // An empty or "?" host means "the address you reached me at".
    std::string host = master.elements[0].str;
    if (host.empty() || host == "?") host = asked_host;
    const std::string node = JoinHostPort(host, master.elements[1].integer);
    const std::string id =
        master.elements.size() > 2 && master.elements[2].is_string()
            ? master.elements[2].str
            : node;
    auto it = std::find(map->masters.begin(), map->masters.end(), node);
    const int16_t index = static_cast<int16_t>(it - map->masters.begin());
    if (it == map->masters.end()) {
      map->masters.push_back(node);
      map->node_ids.push_back(id);
    }
    for (int64_t slot = first; slot <= last; ++slot) {
      if (map->owner[static_cast<size_t>(slot)] < 0) ++covered;
      map->owner[static_cast<size_t>(slot)] = index;
    }
  }
  if (map->masters.empty()) {
    return absl::UnavailableError(absl::StrCat(
        "Redis at ", address, " serves no slot: is it in a cluster?"));
  }
  (void)covered;
  return std::shared_ptr<const SlotMap>(std::move(map));
}

absl::Status RedisClusterBackend::RefreshIfDue(bool force) {
  absl::Time started = absl::Now();
  absl::MutexLock refreshing(&refresh_mu_);
  std::vector<std::string> candidates;
  {
    absl::MutexLock lock(&mu_);
    if (!force) {
      if (!stale_ && map_ != nullptr) return absl::OkStatus();
      // Someone refreshed while we waited, or very recently.
      if (last_refresh_ >= started && map_ != nullptr) {
        return absl::OkStatus();
      }
      if (absl::Now() - last_refresh_ < kMinRefreshInterval) {
        return map_ != nullptr ? absl::OkStatus() : last_refresh_error_;
      }
    }
    if (map_ != nullptr) candidates = map_->masters;
  }
  for (const std::string& seed : seeds_) {
    if (std::find(candidates.begin(), candidates.end(), seed) ==
        candidates.end()) {
      candidates.push_back(seed);
    }
  }
  std::string errors;
  for (const std::string& address : candidates) {
    absl::StatusOr<std::shared_ptr<const SlotMap>> loaded = LoadFrom(address);
    if (loaded.ok()) {
      absl::MutexLock lock(&mu_);
      map_ = *std::move(loaded);
      stale_ = false;
      last_refresh_ = absl::Now();
      last_refresh_error_ = absl::OkStatus();
      ++refreshes_;
      return absl::OkStatus();
    }
    absl::StrAppend(&errors, errors.empty() ? "" : "; ",
                    loaded.status().message());
  }
  absl::Status error = absl::UnavailableError(
      absl::StrCat("cannot load the slot map of ", Describe(), ": ", errors));
  absl::MutexLock lock(&mu_);
  last_refresh_ = absl::Now();
  last_refresh_error_ = error;
  return error;
}

absl::Status RedisClusterBackend::Refresh() { return RefreshIfDue(true); }

std::string RedisClusterBackend::MasterOf(absl::string_view key) {
  if (!RefreshIfDue(false).ok()) return "";
  std::shared_ptr<const SlotMap> m = map();
  if (m == nullptr) return "";
  const int16_t owner = m->owner[static_cast<size_t>(RedisKeySlot(key))];
  return owner < 0 ? "" : m->masters[static_cast<size_t>(owner)];
}

std::vector<std::string> RedisClusterBackend::Masters() {
  RefreshIfDue(false).IgnoreError();
  std::shared_ptr<const SlotMap> m = map();
  return m == nullptr ? std::vector<std::string>() : m->masters;
}

absl::Status RedisClusterBackend::Attempt(
    absl::string_view key, const RedisRedirect* redirect,
    absl::FunctionRef<absl::Status(RedisSession&)> fn, bool* reached) {
  std::string address;
  if (redirect != nullptr) {
    address = redirect->address;
  } else {
    if (absl::Status refreshed = RefreshIfDue(false); !refreshed.ok()) {
      *reached = false;
      return refreshed;
    }
    std::shared_ptr<const SlotMap> m = map();
    const int slot = RedisKeySlot(key);
    const int16_t owner = m->owner[static_cast<size_t>(slot)];
    if (owner < 0) {
      MarkStale();
      *reached = false;
      return absl::UnavailableError(absl::StrCat(
          "no master of ", Describe(), " serves slot ", slot, " now"));
    }
    address = m->masters[static_cast<size_t>(owner)];
  }
  absl::StatusOr<RedisConnectionPool*> pool = PoolFor(address);
  if (!pool.ok()) {
    *reached = false;
    return pool.status();
  }
  absl::StatusOr<RedisConnectionPool::Lease> lease = (*pool)->Borrow();
  if (!lease.ok()) {
    *reached = false;
    return lease.status();
  }
  const bool asking =
      redirect != nullptr && redirect->kind == RedisRedirect::Kind::kAsk;
  RedisSession session(&lease->connection(), address,
                       RedisSession::Mode::kCluster, asking);
  absl::Status status = fn(session);
  if (!status.ok() && session.broken()) MarkStale();
  return status;
}

void RedisClusterBackend::OnRedirect(const RedisRedirect& redirect) {
  absl::MutexLock lock(&mu_);
  switch (redirect.kind) {
    case RedisRedirect::Kind::kMoved: {
      ++moved_;
      stale_ = true;
      if (map_ == nullptr || redirect.slot < 0) break;
      // Remap the slot at once; the full refresh follows.
      auto updated = std::make_shared<SlotMap>(*map_);
      auto it = std::find(updated->masters.begin(), updated->masters.end(),
                          redirect.address);
      const int16_t index = static_cast<int16_t>(it - updated->masters.begin());
      if (it == updated->masters.end()) {
        updated->masters.push_back(redirect.address);
        updated->node_ids.push_back(redirect.address);
      }
      updated->owner[static_cast<size_t>(redirect.slot)] = index;
      map_ = std::move(updated);
      break;
    }
    case RedisRedirect::Kind::kAsk:
      ++asked_;
      break;
    case RedisRedirect::Kind::kClusterDown:
    case RedisRedirect::Kind::kReadOnly:
    case RedisRedirect::Kind::kMasterDown:
      stale_ = true;
      break;
    case RedisRedirect::Kind::kTryAgain:
      break;
  }
}

bool RedisClusterBackend::OnFailure(const absl::Status& /*status*/,
                                    bool reached) {
  MarkStale();
  return !reached;  // Only when nothing was sent.
}

absl::Status RedisClusterBackend::ForEachMaster(
    absl::FunctionRef<absl::Status(absl::string_view, RedisSession&)> fn) {
  if (absl::Status refreshed = RefreshIfDue(true); !refreshed.ok()) {
    return refreshed;
  }
  std::shared_ptr<const SlotMap> m = map();
  for (size_t i = 0; i < m->masters.size(); ++i) {
    absl::StatusOr<RedisConnectionPool*> pool = PoolFor(m->masters[i]);
    if (!pool.ok()) return pool.status();
    absl::StatusOr<RedisConnectionPool::Lease> lease = (*pool)->Borrow();
    if (!lease.ok()) {
      MarkStale();
      return lease.status();
    }
    RedisSession session(&lease->connection(), m->masters[i],
                         RedisSession::Mode::kCluster, false);
    absl::Status status = fn(m->node_ids[i], session);
    if (!status.ok()) {
      if (session.broken()) MarkStale();
      return status;
    }
  }
  return absl::OkStatus();
}

std::vector<std::vector<size_t>> RedisClusterBackend::GroupByNode(
    const std::vector<std::string>& keys) {
  RefreshIfDue(false).IgnoreError();
  std::shared_ptr<const SlotMap> m = map();
  std::map<int, std::vector<size_t>> groups;
  for (size_t i = 0; i < keys.size(); ++i) {
    // Unknown owners (-1) form one group; WithNode() then reports it.
    const int owner =
        m == nullptr ? -1
                     : m->owner[static_cast<size_t>(RedisKeySlot(keys[i]))];
    groups[owner].push_back(i);
  }
  std::vector<std::vector<size_t>> out;
  out.reserve(groups.size());
  for (auto& [owner, indices] : groups) out.push_back(std::move(indices));
  return out;
}

}  // namespace scepca
