#include "service/redis/redis_replication.h"

#include <openssl/evp.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "service/core/hashing.h"
#include "service/core/log.h"
#include "service/core/status_macros.h"

namespace scepca {
namespace {

// Keyless: the identity of the node it runs on. INFO is allowed in scripts
// (and needs +info in the ACL).
constexpr absl::string_view kIdentityLua = R"lua(
local s = redis.call('INFO', 'server')
local r = redis.call('INFO', 'replication')
return {string.match(s, 'run_id:(%x+)') or '',
        string.match(r, 'master_replid:(%x+)') or '',
        string.match(r, 'master_replid2:(%x+)') or '',
        tonumber(string.match(r, 'connected_slaves:(%d+)') or '0'),
        string.match(r, 'role:(%a+)') or ''}
)lua";

// KEYS[1]: the epoch record. ARGV: now (Unix µs), n, then n triples
// node id, "<run_id>:<replid>", fresh ("1": never promoted). Returns
// {start, 1 if this call started a new epoch else 0}. HSET is the first
// write (deny-oom, see redis_challenge_store.cc).
constexpr absl::string_view kEpochLua = R"lua(
local stored = redis.call('HGETALL', KEYS[1])
local known, start = {}, nil
for i = 1, #stored, 2 do
  local f = stored[i]
  if f == 'start' then
    start = stored[i + 1]
  elseif string.sub(f, 1, 2) == 'n:' then
    known[string.sub(f, 3)] = stored[i + 1]
  end
end
local new_epoch = start == nil
local changed = new_epoch
local current = {}
for i = 0, tonumber(ARGV[2]) - 1 do
  local id, ident, fresh = ARGV[3 + 3 * i], ARGV[4 + 3 * i], ARGV[5 + 3 * i]
  current[id] = ident
  local old = known[id]
  if old == nil then
    changed = true
    if fresh ~= '1' then new_epoch = true end
  elseif old ~= ident then
    changed = true
    new_epoch = true
  end
end
for id, _ in pairs(known) do
  if current[id] == nil then changed = true end
end
if new_epoch then start = ARGV[1] end
if changed then
  local fields = {'start', start}
  for id, ident in pairs(current) do
    fields[#fields + 1] = 'n:' .. id
    fields[#fields + 1] = ident
  end
  redis.call('HSET', KEYS[1], unpack(fields))
  for id, _ in pairs(known) do
    if current[id] == nil then redis.call('HDEL', KEYS[1], 'n:' .. id) end
  end
end
return {start, new_epoch and 1 or 0}
)lua";

struct Script {
  std::string body;
  std::string sha1;
};

Script MakeScript(absl::string_view body) {
  Script s;
  s.body = std::string(body);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(s.body.data(), s.body.size(), digest, &length, EVP_sha1(),
                 nullptr) == 1) {
    s.sha1 = HexEncode(
        absl::string_view(reinterpret_cast<const char*>(digest), length));
  } else {
    s.sha1 = std::string(40, '0');  // Costs one NOSCRIPT round trip.
  }
  return s;
}

const Script& IdentityScript() {
  static const Script* const script = new Script(MakeScript(kIdentityLua));
  return *script;
}

const Script& EpochScript() {
  static const Script* const script = new Script(MakeScript(kEpochLua));
  return *script;
}

RedisArgs ScriptArgs(absl::string_view command, const Script& script,
                     const std::vector<std::string>& keys,
                     const std::vector<std::string>& args, std::string* count) {
  *count = absl::StrCat(keys.size());
  RedisArgs argv = {command,
                    command == "EVAL" ? absl::string_view(script.body)
                                      : absl::string_view(script.sha1),
                    *count};
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

bool IsNoScript(const RedisReply& reply) {
  return reply.is_error() && absl::StartsWith(reply.str, "NOSCRIPT");
}

// Runs `script` (EVALSHA; EVAL on NOSCRIPT) and returns its reply, or the
// status of an error reply.
absl::StatusOr<RedisReply> Run(RedisSession& session, const Script& script,
                               const std::vector<std::string>& keys,
                               const std::vector<std::string>& args) {
  std::string count;
  SCEPCA_ASSIGN_OR_RETURN(
      RedisReply reply,
      session.Command(ScriptArgs("EVALSHA", script, keys, args, &count)));
  if (IsNoScript(reply)) {
    SCEPCA_ASSIGN_OR_RETURN(
        reply, session.Command(ScriptArgs("EVAL", script, keys, args, &count)));
  }
  if (reply.is_error()) {
    return StatusFromErrorReply(session.description(), reply.str);
  }
  return reply;
}

absl::StatusOr<RedisNodeIdentity> DecodeIdentity(const RedisSession& session,
                                                 const RedisReply& reply) {
  if (reply.is_error()) {
    return StatusFromErrorReply(session.description(), reply.str);
  }
  if (!reply.is_array() || reply.elements.size() != 5 ||
      !reply.elements[0].is_string() || !reply.elements[1].is_string() ||
      !reply.elements[2].is_string() || !reply.elements[3].is_integer() ||
      !reply.elements[4].is_string() || reply.elements[0].str.empty() ||
      reply.elements[1].str.empty()) {
    return absl::InternalError(
        absl::StrCat("unexpected reply from Redis at ", session.description(),
                     " to the identity script (INFO server/replication)"));
  }
  RedisNodeIdentity id;
  id.run_id = reply.elements[0].str;
  id.replid = reply.elements[1].str;
  id.replid2 = reply.elements[2].str;
  id.connected_replicas = reply.elements[3].integer;
  id.role = reply.elements[4].str;
  return id;
}

bool AllZeros(absl::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == '0'; });
}

std::string MicrosText(absl::Time t) {
  return absl::StrCat(absl::ToUnixMicros(t));
}

}  // namespace

absl::StatusOr<RedisDurability> ParseRedisDurability(absl::string_view text) {
  if (text == "relaxed") return RedisDurability::kRelaxed;
  if (text == "strict") return RedisDurability::kStrict;
  return absl::InvalidArgumentError(absl::StrCat(
      "Redis durability must be relaxed or strict, not '", text, "'"));
}

absl::StatusOr<RedisNodeIdentity> ReadNodeIdentity(RedisSession& session) {
  SCEPCA_ASSIGN_OR_RETURN(RedisReply reply,
                          Run(session, IdentityScript(), {}, {}));
  return DecodeIdentity(session, reply);
}

RedisReplication::RedisReplication(RedisBackend* backend, std::string epoch_key,
                                   const RedisReplicationOptions& options)
    : backend_(backend), epoch_key_(std::move(epoch_key)), options_(options) {}

absl::Time RedisReplication::epoch_start() const {
  absl::MutexLock lock(&mu_);
  return epoch_start_;
}

int64_t RedisReplication::epoch_changes() const {
  absl::MutexLock lock(&mu_);
  return epoch_changes_;
}

int64_t RedisReplication::unconfirmed() const {
  absl::MutexLock lock(&mu_);
  return unconfirmed_;
}

int RedisReplication::WaitCount() const {
  if (options_.wait_replicas >= 0) return options_.wait_replicas;
  return replicas_seen_.load() ? 1 : 0;
}

bool RedisReplication::IdentityDue(const std::string& node) const {
  absl::MutexLock lock(&mu_);
  auto it = seen_.find(node);
  return it == seen_.end() ||
         absl::Now() - it->second.at >= options_.poll_interval;
}

void RedisReplication::Observe(const std::string& node,
                               const RedisNodeIdentity& identity) {
  if (identity.connected_replicas > 0) replicas_seen_.store(true);
  const std::string key = identity.Key();
  absl::MutexLock lock(&mu_);
  Seen& seen = seen_[node];
  if (!seen.identity.empty() && seen.identity != key && !strict()) {
    ++epoch_changes_;
    epoch_start_ = absl::Now();
    LogWarning(absl::StrCat(
        "redis_epoch_changed: Redis at ", node,
        " restarted or was replaced by a promoted replica (run_id/"
        "master_replid changed); durability is relaxed, so consumes lost in "
        "the change can be replayed until the challenges expire"));
  }
  seen.identity = key;
  seen.at = absl::Now();
}

absl::Status RedisReplication::RefreshEpoch(absl::Time now) {
  absl::MutexLock refreshing(&refresh_mu_);
  struct Master {
    std::string node_id;
    RedisNodeIdentity identity;
    std::string node;
  };
  std::vector<Master> masters;
  SCEPCA_RETURN_IF_ERROR(backend_->ForEachMaster(
      [&](absl::string_view node_id, RedisSession& session) -> absl::Status {
        SCEPCA_ASSIGN_OR_RETURN(RedisNodeIdentity identity,
                                ReadNodeIdentity(session));
        if (identity.role != "master") {
          return absl::UnavailableError(absl::StrCat(
              "Redis at ", session.description(), " is not a master (",
              identity.role, "); a failover may be under way"));
        }
        masters.push_back(
            {std::string(node_id), std::move(identity), session.node()});
        return absl::OkStatus();
      }));
  std::vector<std::string> args = {MicrosText(now),
                                   absl::StrCat(masters.size())};
  for (const Master& m : masters) {
    args.push_back(m.node_id);
    args.push_back(m.identity.Key());
    args.push_back(AllZeros(m.identity.replid2) ? "1" : "0");
  }
  RedisReply reply;
  SCEPCA_RETURN_IF_ERROR(
      backend_->WithNode(epoch_key_, [&](RedisSession& session) {
        absl::StatusOr<RedisReply> ran =
            Run(session, EpochScript(), {epoch_key_}, args);
        if (!ran.ok()) return ran.status();
        reply = *std::move(ran);
        return absl::OkStatus();
      }));
  int64_t start_micros = 0;
  if (!reply.is_array() || reply.elements.size() != 2 ||
      !reply.elements[0].is_string() || !reply.elements[1].is_integer() ||
      !absl::SimpleAtoi(reply.elements[0].str, &start_micros)) {
    return absl::InternalError(
        "unexpected reply from Redis to the epoch script");
  }
  const absl::Time start = absl::FromUnixMicros(start_micros);
  for (const Master& m : masters) Observe(m.node, m.identity);
  absl::MutexLock lock(&mu_);
  known_.clear();
  for (const Master& m : masters) known_.insert(m.identity.Key());
  if (start > epoch_start_) {
    if (established_.load()) ++epoch_changes_;
    epoch_start_ = start;
    if (reply.elements[1].integer == 1 || established_.load()) {
      LogWarning(absl::StrCat(
          "redis_epoch_changed: ", backend_->Describe(),
          " started a new epoch at ", absl::FormatTime(start),
          " (a master restarted, a replica was promoted, or the data set is "
          "new or was lost); durability is strict, so challenges and signed "
          "tokens issued before it are refused"));
    }
  }
  established_.store(true);
  return absl::OkStatus();
}

absl::Status RedisReplication::EnsureEpoch(absl::Time now) {
  if (!strict() || established_.load()) return absl::OkStatus();
  return RefreshEpoch(now);
}

absl::StatusOr<bool> RedisReplication::IssuedBeforeEpoch(absl::Time issued_at,
                                                         absl::Time now) {
  if (!strict()) return false;
  SCEPCA_RETURN_IF_ERROR(EnsureEpoch(now));
  return issued_at < epoch_start();
}

absl::StatusOr<RedisReplication::WriteCheck> RedisReplication::AfterWrite(
    RedisSession& session, absl::Time issued_at, absl::Time now,
    absl::string_view what) {
  const std::string& node = session.node();
  const bool want_identity = strict() || IdentityDue(node);
  absl::optional<RedisNodeIdentity> identity;
  // The WAIT count may depend on the identity (auto mode, first contact):
  // read it first then; otherwise send WAIT and the identity together.
  if (want_identity && options_.wait_replicas < 0 && !replicas_seen_.load()) {
    SCEPCA_ASSIGN_OR_RETURN(identity, ReadNodeIdentity(session));
    Observe(node, *identity);
  }
  const int wait = WaitCount();
  std::vector<RedisArgs> commands;
  const std::string wait_text = absl::StrCat(wait);
  const std::string timeout_text = absl::StrCat(
      std::max<int64_t>(1, absl::ToInt64Milliseconds(options_.wait_timeout)));
  if (wait > 0) commands.push_back({"WAIT", wait_text, timeout_text});
  if (want_identity && !identity.has_value()) {
    commands.push_back({"EVALSHA", IdentityScript().sha1, "0"});
  }
  int64_t acked = 0;
  if (!commands.empty()) {
    SCEPCA_ASSIGN_OR_RETURN(std::vector<RedisReply> replies,
                            session.Pipeline(commands));
    size_t next = 0;
    if (wait > 0) {
      const RedisReply& reply = replies[next++];
      if (reply.is_error()) {
        return StatusFromErrorReply(session.description(), reply.str);
      }
      if (!reply.is_integer()) {
        return absl::InternalError("unexpected reply from Redis to WAIT");
      }
      acked = reply.integer;
    }
    if (next < replies.size()) {
      if (IsNoScript(replies[next])) {
        SCEPCA_ASSIGN_OR_RETURN(identity, ReadNodeIdentity(session));
      } else {
        SCEPCA_ASSIGN_OR_RETURN(identity,
                                DecodeIdentity(session, replies[next]));
      }
      Observe(node, *identity);
    }
  }
  if (strict()) {
    bool known;
    {
      absl::MutexLock lock(&mu_);
      known = known_.count(identity->Key()) > 0;
    }
    if (!known || !established_.load()) {
      // A master not in the epoch record: a failover or a restart happened
      // since the record was read.
      SCEPCA_RETURN_IF_ERROR(RefreshEpoch(now));
      absl::MutexLock lock(&mu_);
      if (known_.count(identity->Key()) == 0) {
        return absl::UnavailableError(absl::StrCat(
            "Redis at ", session.description(),
            " changed while the call ran (failover or restart); the ", what,
            " is not confirmed"));
      }
    }
    if (issued_at < epoch_start()) return WriteCheck::kBeforeEpoch;
  }
  if (wait > 0 && acked < wait) {
    {
      absl::MutexLock lock(&mu_);
      ++unconfirmed_;
    }
    const std::string message = absl::StrCat(
        "replication_unconfirmed: ", acked, " of ", wait,
        " replicas of Redis at ", session.description(), " confirmed the ",
        what, " within ", absl::FormatDuration(options_.wait_timeout));
    if (strict()) {
      return absl::UnavailableError(absl::StrCat(
          message,
          "; durability is strict, so it is not reported valid (it "
          "stays used)"));
    }
    LogWarning(absl::StrCat(message, "; accepted (durability is relaxed)"));
  }
  return WriteCheck::kAccepted;
}

}  // namespace scepca
