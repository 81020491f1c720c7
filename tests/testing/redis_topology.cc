#include "tests/testing/redis_topology.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "service/redis/redis_connection.h"
#include "service/redis/redis_slot.h"
#include "tests/testing/subprocess.h"

namespace scepca::testing {
namespace {

std::string FindInPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return "";
  for (absl::string_view dir : absl::StrSplit(path, ':')) {
    if (dir.empty()) continue;
    std::string candidate = absl::StrCat(dir, "/", name);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::vector<std::string> AuthArgs() {
  return {"--requirepass", kRedisTopologyPassword, "--masterauth",
          kRedisTopologyPassword};
}

std::string Info(int port, const std::string& section) {
  absl::StatusOr<RedisReply> reply = AdminCommand(port, {"INFO", section});
  return reply.ok() && reply->is_string() ? reply->str : "";
}

}  // namespace

absl::StatusOr<RedisReply> AdminCommand(int port,
                                        const std::vector<std::string>& args) {
  RedisConnectOptions options;
  options.url.transport = RedisUrl::Transport::kTcp;
  options.url.host = "127.0.0.1";
  options.url.port = port;
  options.url.password = kRedisTopologyPassword;
  options.url.has_password = true;
  options.connect_timeout = absl::Seconds(2);
  options.command_timeout = absl::Seconds(2);
  absl::StatusOr<std::unique_ptr<RedisConnection>> connection =
      RedisConnection::Connect(options);
  if (!connection.ok()) return connection.status();
  RedisArgs argv(args.begin(), args.end());
  return (*connection)->Command(argv);
}

std::string InfoField(const std::string& info, const std::string& field) {
  for (absl::string_view line : absl::StrSplit(info, '\n')) {
    line = absl::StripSuffix(line, "\r");
    if (absl::StartsWith(line, field + ":")) {
      return std::string(line.substr(field.size() + 1));
    }
  }
  return "";
}

// ---------------------------------------------------------------------------
// Sentinel.

absl::StatusOr<std::unique_ptr<RedisSentinelTopology>>
RedisSentinelTopology::Start(const RedisSentinelTopologyOptions& options) {
  if (FindRedisServer().empty()) {
    return absl::NotFoundError("redis-server is not in PATH");
  }
  auto t = std::unique_ptr<RedisSentinelTopology>(new RedisSentinelTopology());
  t->config_dir_ = MakeTempDir();
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  for (int i = 0; i < 3; ++i) {
    RedisServerOptions node_options;
    node_options.extra_args = AuthArgs();
    if (i > 0) {
      node_options.extra_args.insert(
          node_options.extra_args.end(),
          {"--replicaof", "127.0.0.1", absl::StrCat(t->nodes_[0]->port())});
    }
    absl::StatusOr<std::unique_ptr<RedisServer>> node =
        RedisServer::Start(node_options);
    if (!node.ok()) return node.status();
    t->nodes_.push_back(*std::move(node));
  }
  const int master_port = t->nodes_[0]->port();
  if (!WaitFor(
          [&] {
            const std::string info = Info(master_port, "replication");
            return InfoField(info, "connected_slaves") == "2" &&
                   absl::StrContains(info, "state=online") &&
                   !absl::StrContains(info, "state=wait_bgsave") &&
                   !absl::StrContains(info, "state=send_bulk");
          },
          deadline - absl::Now())) {
    return absl::UnavailableError(
        absl::StrCat("replicas did not sync:\n", t->Logs()));
  }
  for (int i = 0; i < 3; ++i) {
    const std::string path =
        absl::StrCat(t->config_dir_, "/sentinel", i, ".conf");
    std::ofstream conf(path);
    conf << "sentinel monitor " << kMasterName << " 127.0.0.1 " << master_port
         << " 2\n"
         << "sentinel down-after-milliseconds " << kMasterName << " "
         << options.down_after_ms << "\n"
         << "sentinel failover-timeout " << kMasterName << " 6000\n"
         << "sentinel parallel-syncs " << kMasterName << " 1\n"
         << "sentinel auth-pass " << kMasterName << " "
         << kRedisTopologyPassword << "\n"
         << "sentinel sentinel-pass " << kRedisTopologyPassword << "\n"
         << "requirepass " << kRedisTopologyPassword << "\n";
    conf.close();
    RedisServerOptions sentinel_options;
    sentinel_options.config_file = path;
    sentinel_options.extra_args = {"--sentinel"};
    absl::StatusOr<std::unique_ptr<RedisServer>> sentinel =
        RedisServer::Start(sentinel_options);
    if (!sentinel.ok()) return sentinel.status();
    t->sentinels_.push_back(*std::move(sentinel));
  }
  // Every sentinel must know both replicas and the two other sentinels
  // before a failover can be agreed on.
  if (!WaitFor(
          [&] {
            for (const auto& s : t->sentinels_) {
              absl::StatusOr<RedisReply> r =
                  AdminCommand(s->port(), {"SENTINEL", "master", kMasterName});
              if (!r.ok() || !r->is_array()) return false;
              std::map<std::string, std::string> fields;
              for (size_t i = 0; i + 1 < r->elements.size(); i += 2) {
                fields[r->elements[i].str] = r->elements[i + 1].str;
              }
              if (fields["num-slaves"] != "2" ||
                  fields["num-other-sentinels"] != "2") {
                return false;
              }
            }
            return true;
          },
          deadline - absl::Now())) {
    return absl::UnavailableError(
        absl::StrCat("sentinels did not discover each other:\n", t->Logs()));
  }
  return t;
}

std::string RedisSentinelTopology::url() const {
  std::vector<std::string> hosts;
  for (const auto& s : sentinels_) {
    hosts.push_back(absl::StrCat("127.0.0.1:", s->port()));
  }
  return absl::StrCat("redis-sentinel://:", kRedisTopologyPassword, "@",
                      absl::StrJoin(hosts, ","), "/", kMasterName);
}

int RedisSentinelTopology::MasterIndex() {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (!nodes_[i]->running()) continue;
    absl::StatusOr<RedisReply> role = AdminCommand(nodes_[i]->port(), {"ROLE"});
    if (role.ok() && role->is_array() && !role->elements.empty() &&
        role->elements[0].str == "master") {
      return static_cast<int>(i);
    }
  }
  return -1;
}

absl::StatusOr<int> RedisSentinelTopology::KillMasterAndWaitForFailover(
    absl::Duration timeout) {
  const int old_master = MasterIndex();
  if (old_master < 0) return absl::FailedPreconditionError("no master");
  nodes_[static_cast<size_t>(old_master)]->Kill();
  int new_master = -1;
  const bool done = WaitFor(
      [&] {
        absl::StatusOr<RedisReply> r =
            AdminCommand(sentinels_[0]->port(),
                         {"SENTINEL", "get-master-addr-by-name", kMasterName});
        if (!r.ok() || !r->is_array() || r->elements.size() != 2) return false;
        for (size_t i = 0; i < nodes_.size(); ++i) {
          if (static_cast<int>(i) == old_master || !nodes_[i]->running()) {
            continue;
          }
          if (r->elements[1].str != absl::StrCat(nodes_[i]->port())) continue;
          if (MasterIndex() == static_cast<int>(i)) {
            new_master = static_cast<int>(i);
            return true;
          }
        }
        return false;
      },
      timeout);
  if (!done) {
    return absl::DeadlineExceededError(absl::StrCat(
        "no failover within ", absl::FormatDuration(timeout), ":\n", Logs()));
  }
  return new_master;
}

std::string RedisSentinelTopology::Logs() const {
  std::string out;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    absl::StrAppend(&out, "--- node ", i, " (port ", nodes_[i]->port(), ")\n",
                    nodes_[i]->ReadLog());
  }
  for (size_t i = 0; i < sentinels_.size(); ++i) {
    absl::StrAppend(&out, "--- sentinel ", i, "\n", sentinels_[i]->ReadLog());
  }
  return out.substr(out.size() > 20000 ? out.size() - 20000 : 0);
}

// ---------------------------------------------------------------------------
// Cluster.

absl::StatusOr<std::unique_ptr<RedisClusterTopology>>
RedisClusterTopology::Start(const RedisClusterTopologyOptions& options) {
  if (FindRedisServer().empty()) {
    return absl::NotFoundError("redis-server is not in PATH");
  }
  if (options.masters < 1 ||
      (options.masters < 3 && options.replicas_per_master != 0)) {
    return absl::InvalidArgumentError(
        "fewer than 3 masters are made by hand, without replicas");
  }
  auto t = std::unique_ptr<RedisClusterTopology>(new RedisClusterTopology());
  t->options_ = options;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  const int count = options.masters * (1 + options.replicas_per_master);
  std::vector<int> bus_ports;
  for (int i = 0; i < count; ++i) {
    bus_ports.push_back(PickFreePort());
    RedisServerOptions node_options;
    node_options.extra_args = AuthArgs();
    node_options.extra_args.insert(
        node_options.extra_args.end(),
        {"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
         // The bus port, else port + 10000 (which fails for ports > 55535).
         "--cluster-port", absl::StrCat(bus_ports.back()),
         "--cluster-node-timeout", absl::StrCat(options.node_timeout_ms),
         "--cluster-require-full-coverage", "no"});
    absl::StatusOr<std::unique_ptr<RedisServer>> node =
        RedisServer::Start(node_options);
    if (!node.ok()) return node.status();
    t->nodes_.push_back(*std::move(node));
  }
  if (options.masters >= 3) {
    const std::string cli = FindInPath("redis-cli");
    if (cli.empty()) return absl::NotFoundError("redis-cli is not in PATH");
    std::vector<std::string> argv = {
        cli,         "-a",    kRedisTopologyPassword, "--no-auth-warning",
        "--cluster", "create"};
    for (const auto& node : t->nodes_) {
      argv.push_back(absl::StrCat("127.0.0.1:", node->port()));
    }
    argv.insert(argv.end(),
                {"--cluster-replicas",
                 absl::StrCat(options.replicas_per_master), "--cluster-yes"});
    absl::StatusOr<CommandResult> created =
        RunCommand(argv, "", absl::Seconds(60));
    if (!created.ok()) return created.status();
    if (created->exit_code != 0) {
      return absl::UnavailableError(absl::StrCat(
          "redis-cli --cluster create failed:\n", created->out, created->err));
    }
  } else {
    // By hand: slots in equal ranges, then every node meets the first.
    for (int i = 0; i < options.masters; ++i) {
      const int first = i * kRedisClusterSlots / options.masters;
      const int last = (i + 1) * kRedisClusterSlots / options.masters - 1;
      absl::StatusOr<RedisReply> added =
          AdminCommand(t->nodes_[static_cast<size_t>(i)]->port(),
                       {"CLUSTER", "ADDSLOTSRANGE", absl::StrCat(first),
                        absl::StrCat(last)});
      if (!added.ok()) return added.status();
      if (added->is_error()) return absl::UnavailableError(added->str);
    }
    for (int i = 1; i < options.masters; ++i) {
      absl::StatusOr<RedisReply> met = AdminCommand(
          t->nodes_[static_cast<size_t>(i)]->port(),
          {"CLUSTER", "MEET", "127.0.0.1", absl::StrCat(t->nodes_[0]->port()),
           absl::StrCat(bus_ports[0])});
      if (!met.ok()) return met.status();
      if (met->is_error()) return absl::UnavailableError(met->str);
    }
  }
  absl::Status ok = t->WaitUntilOk(deadline - absl::Now());
  if (!ok.ok()) return ok;
  // Every node agrees on who serves each slot, and replicas are in sync.
  const bool settled = WaitFor(
      [&] {
        std::set<int> masters;
        for (const auto& node : t->nodes_) {
          absl::StatusOr<RedisReply> slots =
              AdminCommand(node->port(), {"CLUSTER", "SLOTS"});
          if (!slots.ok() || !slots->is_array()) return false;
          int64_t covered = 0;
          for (const RedisReply& range : slots->elements) {
            covered +=
                range.elements[1].integer - range.elements[0].integer + 1;
            if (static_cast<int>(range.elements.size()) - 3 !=
                options.replicas_per_master) {
              return false;
            }
          }
          if (covered != kRedisClusterSlots) return false;
          const std::string info = Info(node->port(), "replication");
          if (InfoField(info, "role") == "slave" &&
              InfoField(info, "master_link_status") != "up") {
            return false;
          }
          if (InfoField(info, "role") == "master") masters.insert(node->port());
        }
        return static_cast<int>(masters.size()) == options.masters;
      },
      deadline - absl::Now());
  if (!settled) {
    return absl::UnavailableError(
        absl::StrCat("cluster did not settle:\n", t->Logs()));
  }
  return t;
}

absl::Status RedisClusterTopology::WaitUntilOk(absl::Duration timeout) {
  const bool ok = WaitFor(
      [&] {
        for (const auto& node : nodes_) {
          if (!node->running()) continue;
          absl::StatusOr<RedisReply> info =
              AdminCommand(node->port(), {"CLUSTER", "INFO"});
          if (!info.ok() || !info->is_string() ||
              InfoField(info->str, "cluster_state") != "ok") {
            return false;
          }
        }
        return true;
      },
      timeout);
  if (!ok) {
    return absl::UnavailableError(
        absl::StrCat("cluster_state did not become ok:\n", Logs()));
  }
  return absl::OkStatus();
}

std::string RedisClusterTopology::url() const {
  std::vector<std::string> hosts;
  for (const auto& node : nodes_) {
    hosts.push_back(absl::StrCat("127.0.0.1:", node->port()));
  }
  return absl::StrCat("redis-cluster://:", kRedisTopologyPassword, "@",
                      absl::StrJoin(hosts, ","));
}

RedisServer* RedisClusterTopology::NodeOnPort(int port) {
  for (const auto& node : nodes_) {
    if (node->port() == port) return node.get();
  }
  return nullptr;
}

std::vector<int> RedisClusterTopology::MasterPorts() {
  std::set<int> ports;
  for (const auto& node : nodes_) {
    if (!node->running()) continue;
    absl::StatusOr<RedisReply> slots =
        AdminCommand(node->port(), {"CLUSTER", "SLOTS"});
    if (!slots.ok() || !slots->is_array()) continue;
    for (const RedisReply& range : slots->elements) {
      ports.insert(static_cast<int>(range.elements[2].elements[1].integer));
    }
    break;
  }
  return std::vector<int>(ports.begin(), ports.end());
}

absl::StatusOr<std::string> RedisClusterTopology::NodeId(int port) {
  absl::StatusOr<RedisReply> id = AdminCommand(port, {"CLUSTER", "MYID"});
  if (!id.ok()) return id.status();
  if (!id->is_string()) return absl::InternalError("CLUSTER MYID failed");
  return id->str;
}

absl::StatusOr<int> RedisClusterTopology::MasterPortOfSlot(int slot,
                                                           int ask_port) {
  absl::StatusOr<RedisReply> slots =
      AdminCommand(ask_port, {"CLUSTER", "SLOTS"});
  if (!slots.ok()) return slots.status();
  for (const RedisReply& range : slots->elements) {
    if (range.elements[0].integer <= slot &&
        slot <= range.elements[1].integer) {
      return static_cast<int>(range.elements[2].elements[1].integer);
    }
  }
  return absl::NotFoundError(absl::StrCat("slot ", slot, " is not served"));
}

absl::Status RedisClusterTopology::MigrateSlot(int slot, int from_port,
                                               int to_port, int batch,
                                               absl::Duration pause) {
  absl::StatusOr<std::string> from_id = NodeId(from_port);
  absl::StatusOr<std::string> to_id = NodeId(to_port);
  if (!from_id.ok()) return from_id.status();
  if (!to_id.ok()) return to_id.status();
  const std::string slot_text = absl::StrCat(slot);
  auto check = [](absl::StatusOr<RedisReply> r,
                  absl::string_view what) -> absl::Status {
    if (!r.ok()) return r.status();
    if (r->is_error()) {
      return absl::InternalError(absl::StrCat(what, ": ", r->str));
    }
    return absl::OkStatus();
  };
  absl::Status s = check(AdminCommand(to_port, {"CLUSTER", "SETSLOT", slot_text,
                                                "IMPORTING", *from_id}),
                         "SETSLOT IMPORTING");
  if (!s.ok()) return s;
  s = check(AdminCommand(from_port, {"CLUSTER", "SETSLOT", slot_text,
                                     "MIGRATING", *to_id}),
            "SETSLOT MIGRATING");
  if (!s.ok()) return s;
  while (true) {
    absl::StatusOr<RedisReply> keys = AdminCommand(
        from_port,
        {"CLUSTER", "GETKEYSINSLOT", slot_text, absl::StrCat(batch)});
    if (!keys.ok()) return keys.status();
    if (!keys->is_array()) return absl::InternalError("GETKEYSINSLOT failed");
    if (keys->elements.empty()) break;
    std::vector<std::string> migrate = {
        "MIGRATE", "127.0.0.1", absl::StrCat(to_port),  "",    "0",
        "5000",    "AUTH",      kRedisTopologyPassword, "KEYS"};
    for (const RedisReply& key : keys->elements) migrate.push_back(key.str);
    s = check(AdminCommand(from_port, migrate), "MIGRATE");
    if (!s.ok()) return s;
    absl::SleepFor(pause);
  }
  // The new owner first, then the old one, then the others.
  for (int port : {to_port, from_port}) {
    s = check(
        AdminCommand(port, {"CLUSTER", "SETSLOT", slot_text, "NODE", *to_id}),
        "SETSLOT NODE");
    if (!s.ok()) return s;
  }
  for (int port : MasterPorts()) {
    if (port == to_port || port == from_port) continue;
    AdminCommand(port, {"CLUSTER", "SETSLOT", slot_text, "NODE", *to_id})
        .IgnoreError();
  }
  return absl::OkStatus();
}

absl::StatusOr<int> RedisClusterTopology::KillMasterAndWaitForFailover(
    int port, absl::Duration timeout) {
  RedisServer* node = NodeOnPort(port);
  if (node == nullptr) return absl::NotFoundError("no such node");
  // A slot of that master, to see who serves it afterwards.
  int probe_slot = -1;
  for (int slot = 0; slot < kRedisClusterSlots && probe_slot < 0; slot += 64) {
    absl::StatusOr<int> owner = MasterPortOfSlot(slot, port);
    if (owner.ok() && *owner == port) probe_slot = slot;
  }
  if (probe_slot < 0) return absl::FailedPreconditionError("not a master");
  node->Kill();
  int promoted = -1;
  const bool done = WaitFor(
      [&] {
        for (const auto& other : nodes_) {
          if (!other->running()) continue;
          absl::StatusOr<int> owner =
              MasterPortOfSlot(probe_slot, other->port());
          if (owner.ok() && *owner != port) {
            promoted = *owner;
            return true;
          }
        }
        return false;
      },
      timeout);
  if (!done) {
    return absl::DeadlineExceededError(absl::StrCat(
        "no failover within ", absl::FormatDuration(timeout), ":\n", Logs()));
  }
  absl::Status ok = WaitUntilOk(timeout);
  if (!ok.ok()) return ok;
  return promoted;
}

std::string RedisClusterTopology::Logs() const {
  std::string out;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    absl::StrAppend(&out, "--- node ", i, " (port ", nodes_[i]->port(), ")\n",
                    nodes_[i]->ReadLog());
  }
  return out.substr(out.size() > 20000 ? out.size() - 20000 : 0);
}

// ---------------------------------------------------------------------------
// Load.

ConsumeLoad::ConsumeLoad(std::vector<ChallengeStore*> stores,
                         int threads_per_store)
    : stores_(std::move(stores)) {
  size_t n = 0;
  for (ChallengeStore* store : stores_) {
    for (int i = 0; i < threads_per_store; ++i) {
      threads_.emplace_back([this, n, store] { Run(n, store); });
      ++n;
    }
  }
}

void ConsumeLoad::Stop() {
  stop_.store(true);
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

bool ConsumeLoad::WaitForProgress(int64_t n, absl::Duration timeout) {
  const int64_t target = valid_.load() + n;
  return WaitFor([&] { return valid_.load() >= target; }, timeout);
}

int ConsumeLoad::MaxValidPerChallenge() const {
  absl::MutexLock lock(&mu_);
  int most = 0;
  for (const auto& [id, count] : valid_per_id_) most = std::max(most, count);
  return most;
}

std::string ConsumeLoad::ErrorSample() const {
  absl::MutexLock lock(&mu_);
  return absl::StrJoin(error_sample_, "\n");
}

void ConsumeLoad::RecordError(const absl::Status& status) {
  errors_.fetch_add(1);
  absl::MutexLock lock(&mu_);
  if (error_sample_.size() < 10) {
    error_sample_.push_back(std::string(status.message()));
  }
}

void ConsumeLoad::Run(size_t thread, ChallengeStore* own) {
  static std::atomic<uint64_t> next_id{0};
  const uint64_t base = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  uint64_t step = 0;
  while (!stop_.load()) {
    const absl::Time now =
        absl::FromUnixMicros(absl::ToUnixMicros(absl::Now()));
    ChallengeRecord r;
    r.id = absl::StrCat(absl::Hex(base, absl::kZeroPad16),
                        absl::Hex(next_id.fetch_add(1), absl::kZeroPad16));
    r.device_id = absl::StrCat("load-device-", thread);
    r.created_at = now;
    r.expires_at = now + absl::Minutes(10);
    r.forget_at = r.expires_at + absl::Minutes(1);
    absl::Status inserted = own->Insert(r, now);
    if (inserted.ok()) {
      inserts_.fetch_add(1);
      absl::MutexLock lock(&mu_);
      recent_.push_back(r.id);
      if (recent_.size() > 64) recent_.erase(recent_.begin());
    } else {
      RecordError(inserted);
    }
    // Consume a few recent challenges through every store.
    std::vector<std::string> ids;
    {
      absl::MutexLock lock(&mu_);
      for (size_t k = 0; k < 3 && k < recent_.size(); ++k) {
        ids.push_back(recent_[(step * 7 + k * 13 + thread) % recent_.size()]);
      }
    }
    ++step;
    for (const std::string& id : ids) {
      for (size_t s = 0; s < stores_.size(); ++s) {
        ChallengeStore* store = stores_[(s + thread) % stores_.size()];
        const absl::Time t =
            absl::FromUnixMicros(absl::ToUnixMicros(absl::Now()));
        absl::StatusOr<ConsumeResult> consumed =
            store->Consume(id, UseInfo{"tx", ""}, t);
        consumes_.fetch_add(1);
        if (!consumed.ok()) {
          RecordError(consumed.status());
          continue;
        }
        if (consumed->outcome == ConsumeResult::Outcome::kConsumed) {
          valid_.fetch_add(1);
          absl::MutexLock lock(&mu_);
          ++valid_per_id_[id];
        }
      }
    }
  }
}

}  // namespace scepca::testing
