#include "service/redis/redis_challenge_store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/memory/memory.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "service/core/hashing.h"
#include "service/core/status_macros.h"
#include "service/redis/redis_cluster.h"
#include "service/redis/redis_connection.h"
#include "service/redis/redis_reply.h"
#include "service/redis/redis_sentinel.h"
#include "service/redis/redis_url.h"

namespace scepca {
namespace {

// Version of the record layout, stored in field "v".
constexpr absl::string_view kRecordVersion = "1";
// Index entries fetched per ZRANGEBYSCORE.
constexpr int kIndexBatch = 256;

// ---------------------------------------------------------------------------
// Lua scripts. Each touches exactly KEYS[1]. ARGV[1] is always the caller's
// `now` in Unix µs; times are Unix µs or "+inf"/"-inf".
//
// The first write of every script is a deny-oom command (HSET, ZADD): Redis
// checks maxmemory only before a script's first write (a script that has
// written may finish), so under maxmemory a script is refused with OOM before
// it changed anything. Keep it so: a DEL or ZREMRANGEBYSCORE first would let
// the script write past maxmemory.

constexpr absl::string_view kLuaPrelude = R"lua(
local function num(s)
  if s == 'inf' or s == '+inf' then return math.huge end
  if s == '-inf' then return -math.huge end
  return tonumber(s)
end
local function expire_at(key, at, now)
  if at == math.huge then
    redis.call('PERSIST', key)
    return
  end
  local ms = math.ceil((at - now) / 1000)
  if ms < 1 then ms = 1 end
  redis.call('PEXPIRE', key, string.format('%d', ms))
end
local now = num(ARGV[1])
)lua";

// ARGV: now, forget_at, field, value, ... Returns 1 if stored, 0 if a live
// record exists. A forgotten record not yet expired by Redis is replaced.
constexpr absl::string_view kInsertLua = R"lua(
local existed = redis.call('EXISTS', KEYS[1]) == 1
local old = redis.call('HGET', KEYS[1], 'forget_at')
if old and num(old) > now then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
if existed then
  local keep = {}
  for i = 3, #ARGV, 2 do keep[ARGV[i]] = true end
  for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
    if not keep[field] then redis.call('HDEL', KEYS[1], field) end
  end
end
expire_at(KEYS[1], num(ARGV[2]), now)
return 1
)lua";

// ARGV: now, score (forget_at), id. Prunes forgotten entries, adds the id,
// keeps the index until its last entry is forgotten.
constexpr absl::string_view kIndexLua = R"lua(
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if top[2] then expire_at(KEYS[1], num(top[2]), now) end
return 1
)lua";

// ARGV: now, transaction id, public key hash, unbound only ("1"/"0").
// Returns the outcome: 0 unknown, 1 consumed, 2 expired, 3 already used,
// 4 revoked, 5 bad state, 6 bound (and unbound only: left untouched).
// Consume() reads the record with an HGETALL sent in the same pipeline:
// Redis answers a native HGETALL in a fraction of the time a script takes to
// turn one into a Lua table and back.
constexpr absl::string_view kConsumeLua = R"lua(
local f = redis.call('HMGET', KEYS[1], 'state', 'expires_at', 'forget_at',
                     'cn', 'dns', 'email', 'uris')
if not f[1] or not f[3] or num(f[3]) <= now then return 0 end
local function set(v) return v and v ~= '' end
local outcome
if f[1] == 'used' then
  outcome = 3
elseif f[1] == 'revoked' then
  outcome = 4
elseif f[1] ~= 'pending' then
  outcome = 5
elseif now >= num(f[2]) then
  outcome = 2
elseif ARGV[4] == '1' and (set(f[4]) or set(f[5]) or set(f[6]) or
                           set(f[7])) then
  outcome = 6
else
  redis.call('HSET', KEYS[1], 'state', 'used', 'used_at', ARGV[1],
             'used_tx', ARGV[2], 'used_key', ARGV[3])
  outcome = 1
end
return outcome
)lua";

// Replaces KEYS[1] with the hash fields ARGV[first..] (dropping any other
// field of a forgotten record not yet expired by Redis), kept until
// forget_at. HSET comes first (deny-oom).
constexpr absl::string_view kLuaReplace = R"lua(
local function replace(first, forget_at)
  local existed = redis.call('EXISTS', KEYS[1]) == 1
  redis.call('HSET', KEYS[1], unpack(ARGV, first))
  if existed then
    local keep = {}
    for i = first, #ARGV, 2 do keep[ARGV[i]] = true end
    for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
      if not keep[field] then redis.call('HDEL', KEYS[1], field) end
    end
  end
  expire_at(KEYS[1], forget_at, now)
end
)lua";

// ARGV: now, multi-use ("1"/"0"), forget_at, the used record's fields...
// Returns {1} if consumed without a prior record (the record was written for
// a single-use token), else {outcome, HGETALL} as the consume script.
constexpr absl::string_view kConsumeTokenLua = R"lua(
local f = redis.call('HMGET', KEYS[1], 'state', 'forget_at')
if f[1] and f[2] and num(f[2]) > now then
  if f[1] == 'revoked' then return {4, redis.call('HGETALL', KEYS[1])} end
  if f[1] == 'used' then
    if ARGV[2] == '1' then return {1, redis.call('HGETALL', KEYS[1])} end
    return {3, redis.call('HGETALL', KEYS[1])}
  end
end
if ARGV[2] == '1' then return {1} end
replace(4, num(ARGV[3]))
return {1}
)lua";

// ARGV: now, reason, forget_at, the revoked record's fields... Returns 1 if
// revoked (a pending record, or none: the fields are stored), 0 if the record
// is used or revoked.
constexpr absl::string_view kRevokeTokenLua = R"lua(
local f = redis.call('HMGET', KEYS[1], 'state', 'forget_at')
if f[1] and f[2] and num(f[2]) > now then
  if f[1] ~= 'pending' then return 0 end
  redis.call('HSET', KEYS[1], 'state', 'revoked', 'revoked_at', ARGV[1],
             'revoke_reason', ARGV[2])
  return 1
end
replace(4, num(ARGV[3]))
return 1
)lua";

// ARGV: now, max outcomes, encoded event. Appends the event as field
// "o<n>" (n from the counter "on"), dropping "o<n - max>". Returns 0 if
// there is no live record, else 1.
constexpr absl::string_view kAppendOutcomeLua = R"lua(
local f = redis.call('HGET', KEYS[1], 'forget_at')
if not f or num(f) <= now then return 0 end
local n = redis.call('HINCRBY', KEYS[1], 'on', 1)
redis.call('HSET', KEYS[1], 'o' .. n, ARGV[3])
local old = n - tonumber(ARGV[2])
if old > 0 then redis.call('HDEL', KEYS[1], 'o' .. old) end
return 1
)lua";

// ARGV: now, reason[, subject field, subject]. Returns -1 if unknown, -2 if
// the record belongs to another subject, 0 if not pending, 1 if revoked.
constexpr absl::string_view kRevokeLua = R"lua(
local f = redis.call('HMGET', KEYS[1], 'state', 'forget_at')
if not f[1] or not f[2] or num(f[2]) <= now then return -1 end
if #ARGV >= 4 and redis.call('HGET', KEYS[1], ARGV[3]) ~= ARGV[4] then
  return -2
end
if f[1] ~= 'pending' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'revoked', 'revoked_at', ARGV[1],
           'revoke_reason', ARGV[2])
return 1
)lua";

// ARGV: now, marker_forget_at. rb = max(old rb, now), fa = max(old fa, new).
constexpr absl::string_view kMarkerLua = R"lua(
local rb, fa = ARGV[1], ARGV[2]
local f = redis.call('HMGET', KEYS[1], 'rb', 'fa')
if f[1] and f[2] and num(f[2]) > now then
  if num(f[1]) > num(rb) then rb = f[1] end
  if num(f[2]) > num(fa) then fa = f[2] end
end
redis.call('HSET', KEYS[1], 'rb', rb, 'fa', fa)
expire_at(KEYS[1], num(fa), now)
return 1
)lua";

// ARGV: now, expires_at, fingerprint, challenge id, sealed challenge. Returns
// {} if stored, else the live entry (HGETALL).
constexpr absl::string_view kIdempotencyLua = R"lua(
local e = redis.call('HGET', KEYS[1], 'expires_at')
if e and num(e) > now then return redis.call('HGETALL', KEYS[1]) end
redis.call('HSET', KEYS[1], 'fp', ARGV[3], 'cid', ARGV[4], 'sealed', ARGV[5],
           'expires_at', ARGV[2])
expire_at(KEYS[1], num(ARGV[2]), now)
return {}
)lua";

struct LuaScript {
  std::string body;
  std::string sha1;  // Lower-case hex, as EVALSHA wants.
};

std::string Sha1Hex(absl::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha1(),
                 nullptr) != 1) {
    // EVALSHA with a wrong digest only costs one NOSCRIPT round trip.
    return std::string(40, '0');
  }
  return HexEncode(
      absl::string_view(reinterpret_cast<const char*>(digest), length));
}

LuaScript MakeScript(absl::string_view body) {
  LuaScript script;
  script.body = absl::StrCat(kLuaPrelude, body);
  script.sha1 = Sha1Hex(script.body);
  return script;
}

const LuaScript& InsertScript() {
  static const LuaScript* const script = new LuaScript(MakeScript(kInsertLua));
  return *script;
}
const LuaScript& IndexScript() {
  static const LuaScript* const script = new LuaScript(MakeScript(kIndexLua));
  return *script;
}
const LuaScript& ConsumeScript() {
  static const LuaScript* const script = new LuaScript(MakeScript(kConsumeLua));
  return *script;
}
const LuaScript& ConsumeTokenScript() {
  static const LuaScript* const script =
      new LuaScript(MakeScript(absl::StrCat(kLuaReplace, kConsumeTokenLua)));
  return *script;
}
const LuaScript& RevokeTokenScript() {
  static const LuaScript* const script =
      new LuaScript(MakeScript(absl::StrCat(kLuaReplace, kRevokeTokenLua)));
  return *script;
}
const LuaScript& AppendOutcomeScript() {
  static const LuaScript* const script =
      new LuaScript(MakeScript(kAppendOutcomeLua));
  return *script;
}
const LuaScript& RevokeScript() {
  static const LuaScript* const script = new LuaScript(MakeScript(kRevokeLua));
  return *script;
}
const LuaScript& MarkerScript() {
  static const LuaScript* const script = new LuaScript(MakeScript(kMarkerLua));
  return *script;
}
const LuaScript& IdempotencyScript() {
  static const LuaScript* const script =
      new LuaScript(MakeScript(kIdempotencyLua));
  return *script;
}

// ---------------------------------------------------------------------------
// Running commands and scripts.

// Returns `reply`, or the Status of an error reply.
absl::StatusOr<RedisReply> CheckReply(const RedisSession& session,
                                      absl::StatusOr<RedisReply> reply) {
  if (reply.ok() && reply->is_error()) {
    return StatusFromErrorReply(session.description(), reply->str);
  }
  return reply;
}

// Runs `fn` on the node serving `key` (see RedisBackend::WithNode()) and
// returns what it returned.
template <typename T, typename F>
absl::StatusOr<T> OnKey(RedisBackend& backend, absl::string_view key, F fn) {
  absl::StatusOr<T> result = absl::InternalError("Redis call not run");
  absl::Status status = backend.WithNode(key, [&](RedisSession& session) {
    result = fn(session);
    return result.status();
  });
  if (!status.ok()) return status;
  return result;
}

bool IsNoScript(const RedisReply& reply) {
  return reply.is_error() && absl::StartsWith(reply.str, "NOSCRIPT");
}

RedisArgs ScriptArgs(absl::string_view command, absl::string_view script,
                     absl::string_view key, const RedisArgs& args) {
  RedisArgs argv = {command, script, "1", key};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// Runs `script` on `key` (EVALSHA; on NOSCRIPT once more with EVAL).
absl::StatusOr<RedisReply> RunScript(RedisSession* connection,
                                     const LuaScript& script,
                                     absl::string_view key,
                                     const RedisArgs& args) {
  SCEPCA_ASSIGN_OR_RETURN(
      RedisReply reply,
      connection->Command(ScriptArgs("EVALSHA", script.sha1, key, args)));
  if (IsNoScript(reply)) {
    SCEPCA_ASSIGN_OR_RETURN(
        reply, connection->Command(ScriptArgs("EVAL", script.body, key, args)));
  }
  return CheckReply(*connection, std::move(reply));
}

// RunScript() on the node serving `key`.
absl::StatusOr<RedisReply> KeyScript(RedisBackend& backend,
                                     const LuaScript& script,
                                     absl::string_view key,
                                     const RedisArgs& args) {
  return OnKey<RedisReply>(backend, key, [&](RedisSession& session) {
    return RunScript(&session, script, key, args);
  });
}

struct ScriptCall {
  std::string key;
  RedisArgs args;
};

// Runs `script` once per call, pipelined; replies in order. Calls that hit
// NOSCRIPT (nothing was run) are sent again with EVAL. Fails on the first
// error reply.
absl::StatusOr<std::vector<RedisReply>> RunScriptBatch(
    RedisBackend& backend, const LuaScript& script,
    const std::vector<ScriptCall>& calls) {
  std::vector<RedisArgs> commands;
  std::vector<std::string> keys;
  commands.reserve(calls.size());
  keys.reserve(calls.size());
  for (const ScriptCall& call : calls) {
    commands.push_back(ScriptArgs("EVALSHA", script.sha1, call.key, call.args));
    keys.push_back(call.key);
  }
  // Pipelined per node (a cluster spreads the records over its masters).
  SCEPCA_ASSIGN_OR_RETURN(std::vector<RedisReply> replies,
                          backend.PipelineByKey(keys, commands));
  std::vector<size_t> retry;
  for (size_t i = 0; i < replies.size(); ++i) {
    if (IsNoScript(replies[i])) retry.push_back(i);
  }
  if (!retry.empty()) {
    commands.clear();
    std::vector<std::string> retry_keys;
    for (size_t i : retry) {
      commands.push_back(
          ScriptArgs("EVAL", script.body, calls[i].key, calls[i].args));
      retry_keys.push_back(calls[i].key);
    }
    SCEPCA_ASSIGN_OR_RETURN(std::vector<RedisReply> retried,
                            backend.PipelineByKey(retry_keys, commands));
    for (size_t j = 0; j < retry.size(); ++j) {
      replies[retry[j]] = std::move(retried[j]);
    }
  }
  for (const RedisReply& reply : replies) {
    if (reply.is_error()) {
      return StatusFromErrorReply(backend.Describe(), reply.str);
    }
  }
  return replies;
}

absl::Status UnexpectedReply(absl::string_view what) {
  return absl::InternalError(
      absl::StrCat("unexpected reply from Redis to ", what));
}

// ---------------------------------------------------------------------------
// Encoding.

std::string EncodeTime(absl::Time t) {
  if (t == absl::InfiniteFuture()) return "+inf";
  if (t == absl::InfinitePast()) return "-inf";
  return absl::StrCat(absl::ToUnixMicros(t));
}

bool IsDecimal(absl::string_view s) {
  if (absl::StartsWith(s, "-")) s.remove_prefix(1);
  return !s.empty() && s.size() <= 19 &&
         std::all_of(s.begin(), s.end(), absl::ascii_isdigit);
}

// Parses what EncodeTime() wrote.
absl::optional<absl::Time> DecodeTime(absl::string_view s) {
  if (s == "+inf") return absl::InfiniteFuture();
  if (s == "-inf") return absl::InfinitePast();
  int64_t micros = 0;
  if (!IsDecimal(s) || !absl::SimpleAtoi(s, &micros)) return absl::nullopt;
  return absl::FromUnixMicros(micros);
}

// Parses a sorted-set score as Redis prints it.
absl::optional<absl::Time> DecodeScore(absl::string_view s) {
  if (s == "inf" || s == "+inf") return absl::InfiniteFuture();
  if (s == "-inf") return absl::InfinitePast();
  int64_t micros = 0;
  if (IsDecimal(s) && absl::SimpleAtoi(s, &micros)) {
    return absl::FromUnixMicros(micros);
  }
  double d = 0;
  if (!absl::SimpleAtod(s, &d) || std::isnan(d)) return absl::nullopt;
  return absl::FromUnixMicros(static_cast<int64_t>(std::llround(d)));
}

void AppendItem(absl::string_view item, std::string* out) {
  absl::StrAppend(out, item.size(), ":", item);
}

std::string EncodeList(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) AppendItem(item, &out);
  return out;
}

std::string EncodeLabels(const std::map<std::string, std::string>& labels) {
  std::string out;
  for (const auto& [key, value] : labels) {
    AppendItem(key, &out);
    AppendItem(value, &out);
  }
  return out;
}

// Splits "<len>:<bytes>..." into items; false if malformed.
bool DecodeItems(absl::string_view in, std::vector<std::string>* out) {
  out->clear();
  while (!in.empty()) {
    const size_t colon = in.find(':');
    if (colon == absl::string_view::npos || colon == 0 || colon > 9) {
      return false;
    }
    const absl::string_view digits = in.substr(0, colon);
    size_t length = 0;
    if (!std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit) ||
        !absl::SimpleAtoi(digits, &length)) {
      return false;
    }
    in.remove_prefix(colon + 1);
    if (length > in.size()) return false;
    out->emplace_back(in.substr(0, length));
    in.remove_prefix(length);
  }
  return true;
}

absl::string_view StateName(ChallengeState state) {
  switch (state) {
    case ChallengeState::kUsed:
      return "used";
    case ChallengeState::kRevoked:
      return "revoked";
    default:
      return "pending";
  }
}

// The hash fields of a record, as name, value, name, value, ...
std::vector<std::string> RecordFields(const ChallengeRecord& r) {
  std::vector<std::string> f = {
      "v",          std::string(kRecordVersion),
      "id",         r.id,
      "device_id",  r.device_id,
      "user_id",    r.user_id,
      "kind",       absl::StrCat(static_cast<int>(r.kind)),
      "cn",         r.binding.common_name,
      "dns",        EncodeList(r.binding.dns_names),
      "email",      EncodeList(r.binding.email_addresses),
      "uris",       EncodeList(r.binding.uris),
      "labels",     EncodeLabels(r.labels),
      "created_at", EncodeTime(r.created_at),
      "expires_at", EncodeTime(r.expires_at),
      "forget_at",  EncodeTime(r.forget_at),
      "state",      std::string(StateName(r.state))};
  if (r.state == ChallengeState::kUsed) {
    f.insert(f.end(),
             {"used_at", EncodeTime(r.used_at), "used_tx",
              r.used_transaction_id, "used_key", r.used_public_key_sha256});
  }
  if (r.state == ChallengeState::kRevoked) {
    f.insert(f.end(), {"revoked_at", EncodeTime(r.revoked_at), "revoke_reason",
                       r.revoke_reason});
  }
  return f;
}

absl::Status Malformed(absl::string_view what) {
  return absl::InternalError(
      absl::StrCat("a record in Redis is malformed (", what, ")"));
}

// Turns an HGETALL reply (field, value, ...) into a map of views into it (no
// copies: the reply must outlive the map). Returns kInternal if it is not a
// flat array of strings.
absl::StatusOr<absl::flat_hash_map<absl::string_view, absl::string_view>>
HashFields(const RedisReply& reply) {
  if (!reply.is_array() || reply.elements.size() % 2 != 0) {
    return UnexpectedReply("HGETALL");
  }
  absl::flat_hash_map<absl::string_view, absl::string_view> fields;
  fields.reserve(reply.elements.size() / 2);
  for (size_t i = 0; i < reply.elements.size(); i += 2) {
    if (!reply.elements[i].is_string() || !reply.elements[i + 1].is_string()) {
      return UnexpectedReply("HGETALL");
    }
    fields[reply.elements[i].str] = reply.elements[i + 1].str;
  }
  return fields;
}

// Decodes an HGETALL reply of a record key. Returns kNotFound if empty.
absl::StatusOr<ChallengeRecord> DecodeRecord(const RedisReply& reply) {
  SCEPCA_ASSIGN_OR_RETURN(auto fields, HashFields(reply));
  if (fields.empty()) return absl::NotFoundError("no such challenge");
  auto get = [&fields](absl::string_view name) -> const absl::string_view* {
    auto it = fields.find(name);
    return it == fields.end() ? nullptr : &it->second;
  };
  const absl::string_view* version = get("v");
  if (version == nullptr || *version != kRecordVersion) {
    return Malformed("unknown layout version");
  }
  ChallengeRecord r;
  for (auto [name, out] :
       {std::make_pair("id", &r.id), std::make_pair("device_id", &r.device_id),
        std::make_pair("user_id", &r.user_id),
        std::make_pair("cn", &r.binding.common_name)}) {
    const absl::string_view* value = get(name);
    if (value == nullptr) return Malformed(name);
    *out = std::string(*value);
  }
  const absl::string_view* kind = get("kind");
  if (kind == nullptr || (*kind != "1" && *kind != "2")) {
    return Malformed("kind");
  }
  r.kind = *kind == "1" ? ChallengeKind::kOneTime : ChallengeKind::kSigned;
  for (auto [name, out] : {std::make_pair("dns", &r.binding.dns_names),
                           std::make_pair("email", &r.binding.email_addresses),
                           std::make_pair("uris", &r.binding.uris)}) {
    const absl::string_view* value = get(name);
    if (value == nullptr || !DecodeItems(*value, out)) return Malformed(name);
  }
  std::vector<std::string> labels;
  const absl::string_view* encoded_labels = get("labels");
  if (encoded_labels == nullptr || !DecodeItems(*encoded_labels, &labels) ||
      labels.size() % 2 != 0) {
    return Malformed("labels");
  }
  for (size_t i = 0; i < labels.size(); i += 2) {
    r.labels[labels[i]] = labels[i + 1];
  }
  for (auto [name, out] : {std::make_pair("created_at", &r.created_at),
                           std::make_pair("expires_at", &r.expires_at),
                           std::make_pair("forget_at", &r.forget_at)}) {
    const absl::string_view* value = get(name);
    absl::optional<absl::Time> t;
    if (value == nullptr || !(t = DecodeTime(*value)).has_value()) {
      return Malformed(name);
    }
    *out = *t;
  }
  std::map<int64_t, OutcomeEvent> outcomes;
  for (const auto& [name, value] : fields) {
    int64_t n = 0;
    if (name.size() < 2 || name[0] != 'o' ||
        !absl::SimpleAtoi(absl::string_view(name).substr(1), &n)) {
      continue;
    }
    std::vector<std::string> items;
    absl::optional<absl::Time> at;
    if (!DecodeItems(value, &items) || items.size() != 6 ||
        !(at = DecodeTime(items[0])).has_value()) {
      return Malformed("outcome");
    }
    OutcomeEvent& e = outcomes[n];
    e.at = *at;
    e.issued = items[1] == "1";
    e.transaction_id = items[2];
    e.certificate_serial = items[3];
    e.certificate_sha256 = items[4];
    e.failure = items[5];
  }
  for (auto& [n, e] : outcomes) r.outcomes.push_back(std::move(e));
  const absl::string_view* state = get("state");
  if (state == nullptr) return Malformed("state");
  if (*state == "pending") {
    r.state = ChallengeState::kPending;
  } else if (*state == "used") {
    r.state = ChallengeState::kUsed;
    const absl::string_view* used_at = get("used_at");
    const absl::string_view* used_tx = get("used_tx");
    absl::optional<absl::Time> t;
    if (used_at == nullptr || used_tx == nullptr ||
        !(t = DecodeTime(*used_at)).has_value()) {
      return Malformed("used_at");
    }
    r.used_at = *t;
    r.used_transaction_id = std::string(*used_tx);
    if (const absl::string_view* used_key = get("used_key");
        used_key != nullptr) {
      r.used_public_key_sha256 = std::string(*used_key);
    }
  } else if (*state == "revoked") {
    r.state = ChallengeState::kRevoked;
    const absl::string_view* revoked_at = get("revoked_at");
    const absl::string_view* reason = get("revoke_reason");
    absl::optional<absl::Time> t;
    if (revoked_at == nullptr || reason == nullptr ||
        !(t = DecodeTime(*revoked_at)).has_value()) {
      return Malformed("revoked_at");
    }
    r.revoked_at = *t;
    r.revoke_reason = std::string(*reason);
  } else {
    return Malformed("state");
  }
  return r;
}

// Ids are lower-case hex (ChallengeIdOf() makes 32 characters), with an "s"
// in front for signed challenges (SignedChallengeId()); only such ids go into
// keys.
bool IsStoreId(absl::string_view id) {
  if (!id.empty() && id[0] == 's') id.remove_prefix(1);
  return !id.empty() && id.size() <= 128 &&
         std::all_of(id.begin(), id.end(), [](char c) {
           return absl::ascii_isdigit(c) || (c >= 'a' && c <= 'f');
         });
}

std::string ShortHash(absl::string_view data) {
  return HexEncode(Sha256(data)).substr(0, 32);
}

absl::string_view SubjectTag(SubjectType type) {
  return type == SubjectType::kDevice ? "d:" : "u:";
}

absl::string_view SubjectField(SubjectType type) {
  return type == SubjectType::kDevice ? "device_id" : "user_id";
}

const std::string& SubjectOf(const ChallengeRecord& r, SubjectType type) {
  return type == SubjectType::kDevice ? r.device_id : r.user_id;
}

// A position in an index: after (forget_at, id).
struct Cursor {
  absl::Time score = absl::InfinitePast();
  std::string id;
};

std::string EncodePageToken(const Cursor& cursor) {
  return absl::StrCat(EncodeTime(cursor.score), ".", cursor.id);
}

absl::StatusOr<Cursor> DecodePageToken(absl::string_view token) {
  const size_t dot = token.rfind('.');
  absl::optional<absl::Time> score;
  if (dot != absl::string_view::npos) score = DecodeTime(token.substr(0, dot));
  if (!score.has_value() || !IsStoreId(token.substr(dot + 1))) {
    return absl::InvalidArgumentError("page_token is not valid");
  }
  Cursor cursor;
  cursor.score = *score;
  cursor.id = std::string(token.substr(dot + 1));
  return cursor;
}

// Reads the first line of a private file.
absl::StatusOr<std::string> ReadPasswordFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot read Redis password file ", path, ": ", std::strerror(errno)));
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || (st.st_mode & 077) != 0) {
    close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat("Redis password file ", path,
                     " must not be accessible to group or others (chmod 600)"));
  }
  std::string text;
  char buf[512];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0 && text.size() < 4096) {
    text.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  const size_t eol = text.find_first_of("\r\n");
  if (eol != std::string::npos) text.resize(eol);
  if (text.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Redis password file ", path, " is empty"));
  }
  return text;
}

bool IsPrefixChar(char c) {
  return c > 0x20 && c < 0x7f && c != '{' && c != '}';
}

}  // namespace

// ---------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<ChallengeStore>> NewRedisChallengeStore(
    const RedisStoreOptions& options) {
  SCEPCA_ASSIGN_OR_RETURN(std::unique_ptr<RedisChallengeStore> store,
                          RedisChallengeStore::Create(options));
  return std::unique_ptr<ChallengeStore>(std::move(store));
}

absl::StatusOr<std::unique_ptr<RedisChallengeStore>>
RedisChallengeStore::Create(const RedisStoreOptions& options) {
  SCEPCA_ASSIGN_OR_RETURN(RedisDeployment deployment,
                          ParseRedisDeployment(options.url));
  if (!options.password_file.empty()) {
    SCEPCA_ASSIGN_OR_RETURN(deployment.server.password,
                            ReadPasswordFile(options.password_file));
    deployment.server.has_password = true;
    for (RedisUrl& host : deployment.hosts) {
      host.password = deployment.server.password;
      host.has_password = true;
    }
  }
  const RedisUrl& url = deployment.server;
  if (options.prefix.empty() || options.prefix.size() > 64 ||
      !std::all_of(options.prefix.begin(), options.prefix.end(),
                   IsPrefixChar)) {
    return absl::InvalidArgumentError(
        "Redis key prefix must be 1-64 printable ASCII characters without "
        "spaces or braces");
  }
  for (auto [name, value] :
       {std::make_pair("connect_timeout", options.connect_timeout),
        std::make_pair("command_timeout", options.command_timeout)}) {
    if (value < absl::Milliseconds(1) || value > absl::Seconds(60)) {
      return absl::InvalidArgumentError(
          absl::StrCat("Redis ", name, " must be between 1ms and 60s"));
    }
  }
  if (options.pool_size < 1 || options.pool_size > 1024) {
    return absl::InvalidArgumentError(
        "Redis pool size must be between 1 and 1024");
  }
  const RedisReplicationOptions& replication = options.replication;
  if (replication.wait_replicas < -1 || replication.wait_replicas > 16 ||
      replication.wait_timeout < absl::Milliseconds(1) ||
      replication.wait_timeout > absl::Seconds(10)) {
    return absl::InvalidArgumentError(
        "Redis WAIT replicas must be 0-16 (or -1: automatic) and the WAIT "
        "timeout between 1ms and 10s");
  }
  if (deployment.kind == RedisDeployment::Kind::kSentinel) {
    RedisSentinelOptions sentinel;
    sentinel.deployment = deployment;
    sentinel.connect_timeout = options.connect_timeout;
    sentinel.command_timeout = options.command_timeout;
    sentinel.pool_size = options.pool_size;
    SCEPCA_ASSIGN_OR_RETURN(std::unique_ptr<RedisSentinelBackend> backend,
                            RedisSentinelBackend::Create(sentinel));
    return absl::WrapUnique(new RedisChallengeStore(
        std::move(backend), options.prefix, replication));
  }
  if (deployment.kind == RedisDeployment::Kind::kCluster) {
    RedisClusterOptions cluster;
    cluster.deployment = deployment;
    cluster.connect_timeout = options.connect_timeout;
    cluster.command_timeout = options.command_timeout;
    cluster.pool_size = options.pool_size;
    SCEPCA_ASSIGN_OR_RETURN(std::unique_ptr<RedisClusterBackend> backend,
                            RedisClusterBackend::Create(cluster));
    return absl::WrapUnique(new RedisChallengeStore(
        std::move(backend), options.prefix, replication));
  }
  RedisPoolOptions pool_options;
  pool_options.connect.url = url;
  pool_options.connect.connect_timeout = options.connect_timeout;
  pool_options.connect.command_timeout = options.command_timeout;
  pool_options.size = options.pool_size;
  pool_options.borrow_timeout = options.command_timeout;
  if (url.transport == RedisUrl::Transport::kTcp) {
    // Resolve once now; if the name does not resolve now, hiredis resolves
    // it on each connect instead.
    absl::StatusOr<std::vector<std::string>> addresses =
        ResolveRedisHost(url.host);
    if (addresses.ok()) pool_options.connect.addresses = *std::move(addresses);
  }
  SCEPCA_ASSIGN_OR_RETURN(std::unique_ptr<RedisConnectionPool> pool,
                          RedisConnectionPool::Create(pool_options));
  return absl::WrapUnique(new RedisChallengeStore(
      std::make_unique<RedisSingleNodeBackend>(std::move(pool)), options.prefix,
      replication));
}

RedisChallengeStore::RedisChallengeStore(
    std::unique_ptr<RedisBackend> backend, std::string prefix,
    const RedisReplicationOptions& replication)
    : backend_(std::move(backend)),
      prefix_(std::move(prefix)),
      replication_(backend_.get(), absl::StrCat(prefix_, "e:{epoch}"),
                   replication) {}

std::string RedisChallengeStore::Describe() const {
  return backend_->Describe();
}

std::string RedisChallengeStore::RecordKey(absl::string_view id) const {
  return absl::StrCat(prefix_, "c:{", id, "}");
}

std::string RedisChallengeStore::IndexKey(SubjectType type,
                                          absl::string_view subject) const {
  return absl::StrCat(prefix_, SubjectTag(type), "{", ShortHash(subject), "}");
}

std::string RedisChallengeStore::MarkerKey(SubjectType type,
                                           absl::string_view subject) const {
  return absl::StrCat(IndexKey(type, subject), ":rb");
}

std::string RedisChallengeStore::FailureKey(absl::string_view device_id) const {
  return absl::StrCat(IndexKey(SubjectType::kDevice, device_id), ":f");
}

absl::StatusOr<int64_t> RedisChallengeStore::CountFailure(
    absl::string_view device_id, absl::Duration window, absl::Time /*now*/) {
  const std::string key = FailureKey(device_id);
  const std::string ms =
      absl::StrCat(std::max<int64_t>(1, absl::ToInt64Milliseconds(window)));
  // INCR then PEXPIRE NX: the window starts with its first failure.
  SCEPCA_ASSIGN_OR_RETURN(
      std::vector<RedisReply> replies,
      OnKey<std::vector<RedisReply>>(
          *backend_, key,
          [&](RedisSession& session)
              -> absl::StatusOr<std::vector<RedisReply>> {
            SCEPCA_ASSIGN_OR_RETURN(
                std::vector<RedisReply> got,
                session.Pipeline({{"INCR", key}, {"PEXPIRE", key, ms, "NX"}}));
            for (const RedisReply& r : got) {
              // MOVED/ASK: neither ran; WithNode() sends both again there.
              SCEPCA_RETURN_IF_ERROR(session.CheckRedirect(r));
              if (r.is_error()) {
                return StatusFromErrorReply(session.description(), r.str);
              }
            }
            return got;
          }));
  if (replies.empty() || !replies[0].is_integer()) {
    return UnexpectedReply("INCR");
  }
  return replies[0].integer;
}

absl::StatusOr<int64_t> RedisChallengeStore::FailureCount(
    absl::string_view device_id, absl::Time /*now*/) {
  const std::string key = FailureKey(device_id);
  SCEPCA_ASSIGN_OR_RETURN(RedisReply reply,
                          KeyCommand(*backend_, key, {"GET", key}));
  if (reply.is_nil()) return 0;
  int64_t n = 0;
  if (!reply.is_string() || !absl::SimpleAtoi(reply.str, &n)) {
    return UnexpectedReply("GET");
  }
  return n;
}

std::string RedisChallengeStore::TransactionKey(
    absl::string_view transaction_id) const {
  return absl::StrCat(prefix_, "t:{", ShortHash(transaction_id), "}");
}

absl::Status RedisChallengeStore::IndexTransaction(
    absl::string_view transaction_id, absl::string_view id,
    absl::Time forget_at, absl::Time now) {
  if (!IsStoreId(id)) return absl::InvalidArgumentError("bad challenge id");
  const int64_t ms =
      std::max<int64_t>(1, absl::ToInt64Milliseconds(absl::Ceil(
                               forget_at - now, absl::Milliseconds(1))));
  const std::string ms_text = absl::StrCat(ms);
  const std::string key = TransactionKey(transaction_id);
  SCEPCA_ASSIGN_OR_RETURN(
      RedisReply reply,
      KeyCommand(*backend_, key, {"SET", key, id, "PX", ms_text}));
  if (!reply.is_status("OK")) return UnexpectedReply("SET");
  return absl::OkStatus();
}

absl::StatusOr<std::string> RedisChallengeStore::FindByTransaction(
    absl::string_view transaction_id, absl::Time /*now*/) {
  const std::string key = TransactionKey(transaction_id);
  SCEPCA_ASSIGN_OR_RETURN(RedisReply reply,
                          KeyCommand(*backend_, key, {"GET", key}));
  if (reply.is_nil()) {
    return absl::NotFoundError("no challenge with that transaction id");
  }
  if (!reply.is_string() || !IsStoreId(reply.str)) {
    return UnexpectedReply("GET");
  }
  return reply.str;
}

absl::Status RedisChallengeStore::AppendOutcome(absl::string_view id,
                                                const OutcomeEvent& event,
                                                absl::Time now) {
  if (!IsStoreId(id)) return absl::NotFoundError("no such challenge");
  const std::string encoded = EncodeList(
      {EncodeTime(event.at), event.issued ? "1" : "0", event.transaction_id,
       event.certificate_serial, event.certificate_sha256, event.failure});
  const std::string now_text = EncodeTime(now);
  const std::string max_text = absl::StrCat(kMaxOutcomes);
  SCEPCA_ASSIGN_OR_RETURN(
      RedisReply reply,
      KeyScript(*backend_, AppendOutcomeScript(), RecordKey(id),
                {now_text, max_text, encoded}));
  if (!reply.is_integer()) return UnexpectedReply("the outcome script");
  if (reply.integer == 0) return absl::NotFoundError("no such challenge");
  return absl::OkStatus();
}

std::string RedisChallengeStore::IdempotencyKey(absl::string_view key) const {
  return absl::StrCat(prefix_, "i:{", ShortHash(key), "}");
}

absl::Status RedisChallengeStore::Insert(const ChallengeRecord& record,
                                         absl::Time now) {
  if (!IsStoreId(record.id)) {
    return absl::InvalidArgumentError(
        "challenge id must be 1-128 lower-case hex characters, optionally "
        "after an 's'");
  }
  const std::string key = RecordKey(record.id);
  const std::string now_text = EncodeTime(now);
  const std::string forget_text = EncodeTime(record.forget_at);
  // A new epoch found now starts no later than this record.
  SCEPCA_RETURN_IF_ERROR(
      replication_.EnsureEpoch(std::min(now, record.created_at)));

  // Fast path: do not index an id that is taken.
  SCEPCA_ASSIGN_OR_RETURN(
      RedisReply existing,
      KeyCommand(*backend_, key, {"HGET", key, "forget_at"}));
  if (existing.is_string()) {
    absl::optional<absl::Time> forget_at = DecodeTime(existing.str);
    if (!forget_at.has_value()) return Malformed("forget_at");
    if (*forget_at > now) {
      return absl::AlreadyExistsError("challenge id exists");
    }
  } else if (!existing.is_nil()) {
    return UnexpectedReply("HGET");
  }

  // Index first, so that no record exists unindexed (both indexes in one
  // pipeline per node).
  std::vector<ScriptCall> index_calls;
  for (SubjectType type : {SubjectType::kDevice, SubjectType::kUser}) {
    const std::string& subject = SubjectOf(record, type);
    if (subject.empty()) continue;
    index_calls.push_back(
        {IndexKey(type, subject), {now_text, forget_text, record.id}});
  }
  SCEPCA_ASSIGN_OR_RETURN(
      std::vector<RedisReply> indexed,
      RunScriptBatch(*backend_, IndexScript(), index_calls));
  for (const RedisReply& reply : indexed) {
    if (!reply.is_integer()) return UnexpectedReply("the index script");
  }

  const std::vector<std::string> fields = RecordFields(record);
  RedisArgs args = {now_text, forget_text};
  args.insert(args.end(), fields.begin(), fields.end());
  SCEPCA_ASSIGN_OR_RETURN(RedisReply inserted,
                          KeyScript(*backend_, InsertScript(), key, args));
  if (!inserted.is_integer()) return UnexpectedReply("the insert script");
  if (inserted.integer == 0) {
    return absl::AlreadyExistsError("challenge id exists");
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::Time> RedisChallengeStore::InsertAndReadRevokedBefore(
    const ChallengeRecord& record, absl::Time now) {
  if (!IsStoreId(record.id)) {
    return absl::InvalidArgumentError(
        "challenge id must be 1-128 lower-case hex characters, optionally "
        "after an 's'");
  }
  // Every key the steps touch, in the order they must run.
  struct Step {
    std::string key;
    const LuaScript* script;  // Null: an HMGET of a marker.
    RedisArgs args;
  };
  const std::string now_text = EncodeTime(now);
  const std::string forget_text = EncodeTime(record.forget_at);
  std::vector<Step> steps;
  for (SubjectType type : {SubjectType::kDevice, SubjectType::kUser}) {
    const std::string& subject = SubjectOf(record, type);
    if (subject.empty()) continue;
    steps.push_back({IndexKey(type, subject),
                     &IndexScript(),
                     {now_text, forget_text, record.id}});
  }
  const std::vector<std::string> fields = RecordFields(record);
  RedisArgs insert_args = {now_text, forget_text};
  insert_args.insert(insert_args.end(), fields.begin(), fields.end());
  const size_t insert_step = steps.size();
  steps.push_back({RecordKey(record.id), &InsertScript(), insert_args});
  const size_t first_marker = steps.size();
  for (SubjectType type : {SubjectType::kDevice, SubjectType::kUser}) {
    const std::string& subject = SubjectOf(record, type);
    if (subject.empty()) continue;
    steps.push_back({MarkerKey(type, subject), nullptr, {}});
  }
  std::vector<std::string> keys;
  for (const Step& step : steps) keys.push_back(step.key);
  if (backend_->GroupByNode(keys).size() != 1) {
    // Several nodes: their order is only kept step by step.
    SCEPCA_RETURN_IF_ERROR(Insert(record, now));
    return RevokedBeforeEither(record.device_id, record.user_id, now);
  }
  // A new epoch found now starts no later than this record.
  SCEPCA_RETURN_IF_ERROR(
      replication_.EnsureEpoch(std::min(now, record.created_at)));
  auto command = [&](const Step& step, bool eval) -> RedisArgs {
    if (step.script == nullptr) return {"HMGET", step.key, "rb", "fa"};
    return eval ? ScriptArgs("EVAL", step.script->body, step.key, step.args)
                : ScriptArgs("EVALSHA", step.script->sha1, step.key, step.args);
  };
  return OnKey<absl::Time>(
      *backend_, steps[insert_step].key,
      [&](RedisSession& session) -> absl::StatusOr<absl::Time> {
        std::vector<RedisArgs> commands;
        for (const Step& step : steps) commands.push_back(command(step, false));
        SCEPCA_ASSIGN_OR_RETURN(std::vector<RedisReply> replies,
                                session.Pipeline(commands));
        if (replies.size() != steps.size()) {
          return UnexpectedReply("the insert pipeline");
        }
        // After a Redis restart or failover the scripts are gone: run those
        // again with EVAL, then read the markers again (after them).
        std::vector<size_t> again;
        for (size_t i = 0; i < first_marker; ++i) {
          if (IsNoScript(replies[i])) again.push_back(i);
        }
        if (!again.empty()) {
          commands.clear();
          for (size_t i : again) commands.push_back(command(steps[i], true));
          for (size_t i = first_marker; i < steps.size(); ++i) {
            commands.push_back(command(steps[i], false));
          }
          SCEPCA_ASSIGN_OR_RETURN(std::vector<RedisReply> retried,
                                  session.Pipeline(commands));
          if (retried.size() != commands.size()) {
            return UnexpectedReply("the insert pipeline");
          }
          for (size_t j = 0; j < again.size(); ++j) {
            replies[again[j]] = std::move(retried[j]);
          }
          for (size_t i = first_marker; i < steps.size(); ++i) {
            replies[i] = std::move(retried[again.size() + i - first_marker]);
          }
        }
        for (const RedisReply& reply : replies) {
          SCEPCA_RETURN_IF_ERROR(session.ReplyStatus(reply));
        }
        for (size_t i = 0; i < first_marker; ++i) {
          if (!replies[i].is_integer()) {
            return UnexpectedReply(i == insert_step ? "the insert script"
                                                    : "the index script");
          }
        }
        if (replies[insert_step].integer == 0) {
          return absl::AlreadyExistsError("challenge id exists");
        }
        absl::Time newest = absl::InfinitePast();
        for (size_t i = first_marker; i < steps.size(); ++i) {
          SCEPCA_ASSIGN_OR_RETURN(absl::Time t, DecodeMarker(replies[i], now));
          newest = std::max(newest, t);
        }
        return newest;
      });
}

absl::StatusOr<ChallengeRecord> RedisChallengeStore::Get(absl::string_view id,
                                                         absl::Time now) {
  if (!IsStoreId(id)) return absl::NotFoundError("no such challenge");
  const std::string key = RecordKey(id);
  SCEPCA_ASSIGN_OR_RETURN(RedisReply reply,
                          KeyCommand(*backend_, key, {"HGETALL", key}));
  SCEPCA_ASSIGN_OR_RETURN(ChallengeRecord record, DecodeRecord(reply));
  if (record.forget_at <= now) return absl::NotFoundError("no such challenge");
  return record;
}

absl::StatusOr<ConsumeResult> RedisChallengeStore::Consume(absl::string_view id,
                                                           const UseInfo& use,
                                                           absl::Time now) {
  ConsumeResult result;
  if (!IsStoreId(id)) {
    result.outcome = ConsumeResult::Outcome::kNotFound;
    return result;
  }
  SCEPCA_RETURN_IF_ERROR(replication_.EnsureEpoch(now));
  const std::string key = RecordKey(id);
  const std::string now_text = EncodeTime(now);
  // The consume, then (if it consumed) WAIT and the epoch check on the same
  // connection: see redis_replication.h.
  const RedisArgs args = {now_text, use.transaction_id, use.public_key_sha256,
                          use.unbound_only ? "1" : "0"};
  return OnKey<ConsumeResult>(
      *backend_, key,
      [&](RedisSession& session) -> absl::StatusOr<ConsumeResult> {
        // The script, and the record as it left it, in one round trip.
        SCEPCA_ASSIGN_OR_RETURN(
            std::vector<RedisReply> replies,
            session.Pipeline(
                {ScriptArgs("EVALSHA", ConsumeScript().sha1, key, args),
                 {"HGETALL", key}}));
        if (replies.size() == 2 && IsNoScript(replies[0])) {
          SCEPCA_ASSIGN_OR_RETURN(
              replies, session.Pipeline(
                           {ScriptArgs("EVAL", ConsumeScript().body, key, args),
                            {"HGETALL", key}}));
        }
        if (replies.size() != 2) return UnexpectedReply("the consume script");
        for (const RedisReply& reply : replies) {
          SCEPCA_RETURN_IF_ERROR(session.ReplyStatus(reply));
        }
        if (!replies[0].is_integer()) {
          return UnexpectedReply("the consume script");
        }
        SCEPCA_ASSIGN_OR_RETURN(
            ConsumeResult consumed,
            DecodeConsumeOutcome(replies[0].integer, &replies[1], result));
        if (consumed.outcome != ConsumeResult::Outcome::kConsumed) {
          return consumed;
        }
        return ConfirmConsume(session, std::move(consumed), now, "consume");
      });
}

absl::StatusOr<ConsumeResult> RedisChallengeStore::ConfirmConsume(
    RedisSession& session, ConsumeResult consumed, absl::Time now,
    absl::string_view what) {
  SCEPCA_ASSIGN_OR_RETURN(
      RedisReplication::WriteCheck check,
      replication_.AfterWrite(session, consumed.record.created_at, now, what));
  if (check == RedisReplication::WriteCheck::kBeforeEpoch) {
    return RefusedBeforeEpoch(std::move(consumed.record));
  }
  return consumed;
}

ConsumeResult RedisChallengeStore::RefusedBeforeEpoch(
    ChallengeRecord record) const {
  ConsumeResult refused;
  refused.outcome = ConsumeResult::Outcome::kRevoked;
  record.state = ChallengeState::kRevoked;
  record.revoked_at = replication_.epoch_start();
  record.revoke_reason =
      "issued before the Redis data set changed (failover or restart); "
      "--redis-durability strict refuses it, request a new challenge";
  refused.record = std::move(record);
  return refused;
}

absl::StatusOr<ConsumeResult> RedisChallengeStore::DecodeConsumeReply(
    const RedisReply& reply, ConsumeResult result) {
  if (!reply.is_array() || reply.elements.empty() ||
      !reply.elements[0].is_integer()) {
    return UnexpectedReply("the consume script");
  }
  const int64_t outcome = reply.elements[0].integer;
  if (outcome != 0 && reply.elements.size() != 2) {
    return UnexpectedReply("the consume script");
  }
  return DecodeConsumeOutcome(
      outcome, outcome == 0 ? nullptr : &reply.elements[1], std::move(result));
}

absl::StatusOr<ConsumeResult> RedisChallengeStore::DecodeConsumeOutcome(
    int64_t outcome, const RedisReply* record, ConsumeResult result) {
  if (outcome == 0) {
    result.outcome = ConsumeResult::Outcome::kNotFound;
    return result;
  }
  switch (outcome) {
    case 1:
      result.outcome = ConsumeResult::Outcome::kConsumed;
      break;
    case 2:
      result.outcome = ConsumeResult::Outcome::kExpired;
      break;
    case 3:
      result.outcome = ConsumeResult::Outcome::kAlreadyUsed;
      break;
    case 4:
      result.outcome = ConsumeResult::Outcome::kRevoked;
      break;
    case 6:
      result.outcome = ConsumeResult::Outcome::kBound;
      break;
    default:
      return Malformed("state");
  }
  SCEPCA_ASSIGN_OR_RETURN(result.record, DecodeRecord(*record));
  return result;
}

absl::StatusOr<ConsumeResult> RedisChallengeStore::ConsumeToken(
    const ChallengeRecord& token, bool multi_use, const UseInfo& use,
    absl::Time now) {
  if (!IsStoreId(token.id)) {
    return absl::InvalidArgumentError("signed challenge id is malformed");
  }
  ChallengeRecord used = token;
  used.state = ChallengeState::kUsed;
  used.used_at = now;
  used.used_transaction_id = use.transaction_id;
  used.used_public_key_sha256 = use.public_key_sha256;
  const std::vector<std::string> fields = RecordFields(used);
  // RedisArgs holds views: keep the texts alive for the call.
  const std::string now_text = EncodeTime(now);
  const std::string forget_text = EncodeTime(token.forget_at);
  RedisArgs args = {now_text, multi_use ? "1" : "0", forget_text};
  args.insert(args.end(), fields.begin(), fields.end());
  // Strict durability: a token issued before the current epoch may have had
  // its replay nonce (or its revocation) lost.
  SCEPCA_ASSIGN_OR_RETURN(
      bool before_epoch, replication_.IssuedBeforeEpoch(token.created_at, now));
  if (before_epoch) return RefusedBeforeEpoch(token);
  const std::string key = RecordKey(token.id);
  return OnKey<ConsumeResult>(
      *backend_, key,
      [&](RedisSession& session) -> absl::StatusOr<ConsumeResult> {
        SCEPCA_ASSIGN_OR_RETURN(
            RedisReply reply,
            RunScript(&session, ConsumeTokenScript(), key, args));
        if (reply.is_array() && reply.elements.size() == 1 &&
            reply.elements[0].is_integer() && reply.elements[0].integer == 1) {
          ConsumeResult result;
          result.outcome = ConsumeResult::Outcome::kConsumed;
          result.record = multi_use ? token : used;
          if (multi_use) return result;  // Nothing was written.
          return ConfirmConsume(session, std::move(result), now,
                                "replay nonce");
        }
        return DecodeConsumeReply(reply, ConsumeResult());
      });
}

absl::StatusOr<bool> RedisChallengeStore::RevokeToken(
    const ChallengeRecord& token, absl::string_view reason, absl::Time now) {
  if (!IsStoreId(token.id)) {
    return absl::InvalidArgumentError("signed challenge id is malformed");
  }
  ChallengeRecord revoked = token;
  revoked.state = ChallengeState::kRevoked;
  revoked.revoked_at = now;
  revoked.revoke_reason = std::string(reason);
  const std::vector<std::string> fields = RecordFields(revoked);
  const std::string now_text = EncodeTime(now);
  const std::string forget_text = EncodeTime(token.forget_at);
  RedisArgs args = {now_text, reason, forget_text};
  args.insert(args.end(), fields.begin(), fields.end());
  SCEPCA_ASSIGN_OR_RETURN(
      RedisReply reply,
      KeyScript(*backend_, RevokeTokenScript(), RecordKey(token.id), args));
  if (!reply.is_integer() || (reply.integer != 0 && reply.integer != 1)) {
    return UnexpectedReply("the revoke-token script");
  }
  return reply.integer == 1;
}

absl::StatusOr<bool> RedisChallengeStore::Revoke(absl::string_view id,
                                                 absl::string_view reason,
                                                 absl::Time now) {
  if (!IsStoreId(id)) return absl::NotFoundError("no such challenge");
  SCEPCA_ASSIGN_OR_RETURN(RedisReply reply,
                          KeyScript(*backend_, RevokeScript(), RecordKey(id),
                                    {EncodeTime(now), reason}));
  if (!reply.is_integer()) return UnexpectedReply("the revoke script");
  switch (reply.integer) {
    case -1:
      return absl::NotFoundError("no such challenge");
    case 0:
      return false;
    case 1:
      return true;
    default:
      return UnexpectedReply("the revoke script");
  }
}

absl::StatusOr<int64_t> RedisChallengeStore::RevokeSubject(
    SubjectType type, absl::string_view subject, absl::string_view reason,
    absl::Time now, absl::Time marker_forget_at) {
  const std::string now_text = EncodeTime(now);
  const std::string index_key = IndexKey(type, subject);

  // 1. The marker, so that an Insert racing us sees it.
  SCEPCA_ASSIGN_OR_RETURN(
      RedisReply marked,
      KeyScript(*backend_, MarkerScript(), MarkerKey(type, subject),
                {now_text, EncodeTime(marker_forget_at)}));
  if (!marked.is_integer()) return UnexpectedReply("the marker script");

  // 2. The indexed ids that are not forgotten, in batches.
  const std::string min = absl::StrCat("(", now_text);
  int64_t revoked = 0;
  for (int offset = 0;; offset += kIndexBatch) {
    const std::string offset_text = absl::StrCat(offset);
    const std::string count_text = absl::StrCat(kIndexBatch);
    SCEPCA_ASSIGN_OR_RETURN(RedisReply ids,
                            KeyCommand(*backend_, index_key,
                                       {"ZRANGEBYSCORE", index_key, min, "+inf",
                                        "LIMIT", offset_text, count_text}));
    if (!ids.is_array()) return UnexpectedReply("ZRANGEBYSCORE");
    // 3. Revoke each record of this subject (the script skips others').
    std::vector<ScriptCall> calls;
    for (const RedisReply& id : ids.elements) {
      if (!id.is_string() || !IsStoreId(id.str)) continue;
      calls.push_back(
          {RecordKey(id.str), {now_text, reason, SubjectField(type), subject}});
    }
    if (!calls.empty()) {
      SCEPCA_ASSIGN_OR_RETURN(std::vector<RedisReply> replies,
                              RunScriptBatch(*backend_, RevokeScript(), calls));
      for (const RedisReply& r : replies) {
        if (!r.is_integer()) return UnexpectedReply("the revoke script");
        if (r.integer == 1) ++revoked;
      }
    }
    if (ids.elements.size() < static_cast<size_t>(kIndexBatch)) break;
  }
  return revoked;
}

absl::StatusOr<absl::Time> RedisChallengeStore::RevokedBefore(
    SubjectType type, absl::string_view subject, absl::Time now) {
  const std::string key = MarkerKey(type, subject);
  SCEPCA_ASSIGN_OR_RETURN(
      RedisReply reply, KeyCommand(*backend_, key, {"HMGET", key, "rb", "fa"}));
  return DecodeMarker(reply, now);
}

absl::StatusOr<absl::Time> RedisChallengeStore::RevokedBeforeEither(
    absl::string_view device_id, absl::string_view user_id, absl::Time now) {
  if (user_id.empty()) {
    return RevokedBefore(SubjectType::kDevice, device_id, now);
  }
  const std::vector<std::string> keys = {
      MarkerKey(SubjectType::kDevice, device_id),
      MarkerKey(SubjectType::kUser, user_id)};
  SCEPCA_ASSIGN_OR_RETURN(
      std::vector<RedisReply> replies,
      backend_->PipelineByKey(keys, {{"HMGET", keys[0], "rb", "fa"},
                                     {"HMGET", keys[1], "rb", "fa"}}));
  absl::Time newest = absl::InfinitePast();
  for (const RedisReply& reply : replies) {
    SCEPCA_ASSIGN_OR_RETURN(absl::Time t, DecodeMarker(reply, now));
    newest = std::max(newest, t);
  }
  return newest;
}

absl::StatusOr<absl::Time> RedisChallengeStore::DecodeMarker(
    const RedisReply& reply, absl::Time now) const {
  if (reply.is_error()) {
    return StatusFromErrorReply(backend_->Describe(), reply.str);
  }
  if (!reply.is_array() || reply.elements.size() != 2) {
    return UnexpectedReply("HMGET");
  }
  if (reply.elements[0].is_nil() || reply.elements[1].is_nil()) {
    return absl::InfinitePast();
  }
  const absl::optional<absl::Time> revoked_before =
      DecodeTime(reply.elements[0].str);
  const absl::optional<absl::Time> forget_at =
      DecodeTime(reply.elements[1].str);
  if (!revoked_before.has_value() || !forget_at.has_value()) {
    return absl::InternalError("a revoked-before marker in Redis is malformed");
  }
  if (*forget_at <= now) return absl::InfinitePast();
  return *revoked_before;
}

absl::StatusOr<ChallengePage> RedisChallengeStore::List(
    SubjectType type, absl::string_view subject, int page_size,
    absl::string_view page_token, absl::Time now) {
  if (page_size < 1) {
    return absl::InvalidArgumentError("page_size must be at least 1");
  }
  absl::optional<Cursor> after;
  if (!page_token.empty()) {
    SCEPCA_ASSIGN_OR_RETURN(after, DecodePageToken(page_token));
  }
  const std::string index_key = IndexKey(type, subject);
  // Scores > now, and from the cursor's score on (ids at that score up to the
  // cursor's are skipped below).
  const std::string min = after.has_value() && after->score > now
                              ? EncodeTime(after->score)
                              : absl::StrCat("(", EncodeTime(now));
  const size_t wanted = static_cast<size_t>(page_size) + 1;
  const int batch =
      static_cast<int>(std::min<size_t>(std::max<size_t>(wanted, 16), 1024));

  std::vector<std::pair<ChallengeRecord, Cursor>> found;
  for (int offset = 0; found.size() < wanted; offset += batch) {
    const std::string offset_text = absl::StrCat(offset);
    const std::string count_text = absl::StrCat(batch);
    SCEPCA_ASSIGN_OR_RETURN(
        RedisReply entries,
        KeyCommand(*backend_, index_key,
                   {"ZRANGEBYSCORE", index_key, min, "+inf", "WITHSCORES",
                    "LIMIT", offset_text, count_text}));
    if (!entries.is_array() || entries.elements.size() % 2 != 0) {
      return UnexpectedReply("ZRANGEBYSCORE");
    }
    std::vector<Cursor> candidates;
    std::vector<std::string> keys;
    for (size_t i = 0; i < entries.elements.size(); i += 2) {
      const RedisReply& id = entries.elements[i];
      const RedisReply& score_text = entries.elements[i + 1];
      if (!id.is_string() || !score_text.is_string()) {
        return UnexpectedReply("ZRANGEBYSCORE");
      }
      const absl::optional<absl::Time> score = DecodeScore(score_text.str);
      if (!score.has_value() || !IsStoreId(id.str) || *score <= now) continue;
      if (after.has_value() &&
          (*score < after->score ||
           (*score == after->score && id.str <= after->id))) {
        continue;
      }
      candidates.push_back({*score, id.str});
      keys.push_back(RecordKey(id.str));
    }
    if (!candidates.empty()) {
      std::vector<RedisArgs> commands;
      commands.reserve(keys.size());
      for (const std::string& key : keys) commands.push_back({"HGETALL", key});
      // Pipelined per node (records of one subject spread over a cluster).
      SCEPCA_ASSIGN_OR_RETURN(std::vector<RedisReply> records,
                              backend_->PipelineByKey(keys, commands));
      for (size_t i = 0; i < records.size() && found.size() < wanted; ++i) {
        if (records[i].is_error()) {
          return StatusFromErrorReply(backend_->Describe(), records[i].str);
        }
        absl::StatusOr<ChallengeRecord> record = DecodeRecord(records[i]);
        if (absl::IsNotFound(record.status())) continue;  // Deleted/forgotten.
        SCEPCA_RETURN_IF_ERROR(record.status());
        if (record->forget_at <= now || SubjectOf(*record, type) != subject) {
          continue;
        }
        found.emplace_back(*std::move(record), std::move(candidates[i]));
      }
    }
    if (entries.elements.size() / 2 < static_cast<size_t>(batch)) break;
  }

  ChallengePage page;
  if (found.size() == wanted) {
    found.pop_back();
    page.next_page_token = EncodePageToken(found.back().second);
  }
  page.records.reserve(found.size());
  for (auto& [record, cursor] : found)
    page.records.push_back(std::move(record));
  return page;
}

absl::StatusOr<absl::optional<IdempotencyEntry>>
RedisChallengeStore::PutIdempotencyIfAbsent(absl::string_view key,
                                            const IdempotencyEntry& entry,
                                            absl::Time now) {
  SCEPCA_ASSIGN_OR_RETURN(
      RedisReply reply,
      KeyScript(*backend_, IdempotencyScript(), IdempotencyKey(key),
                {EncodeTime(now), EncodeTime(entry.expires_at),
                 entry.request_fingerprint, entry.challenge_id,
                 entry.sealed_challenge}));
  SCEPCA_ASSIGN_OR_RETURN(auto fields, HashFields(reply));
  if (fields.empty()) return absl::optional<IdempotencyEntry>();
  IdempotencyEntry existing;
  for (auto [name, out] :
       {std::make_pair("fp", &existing.request_fingerprint),
        std::make_pair("cid", &existing.challenge_id),
        std::make_pair("sealed", &existing.sealed_challenge)}) {
    auto it = fields.find(name);
    if (it == fields.end()) {
      return absl::InternalError("an idempotency entry in Redis is malformed");
    }
    *out = std::string(it->second);
  }
  auto it = fields.find("expires_at");
  absl::optional<absl::Time> expires_at;
  if (it == fields.end() ||
      !(expires_at = DecodeTime(it->second)).has_value()) {
    return absl::InternalError("an idempotency entry in Redis is malformed");
  }
  existing.expires_at = *expires_at;
  return absl::optional<IdempotencyEntry>(std::move(existing));
}

absl::Status RedisChallengeStore::Delete(absl::string_view id) {
  if (!IsStoreId(id)) return absl::OkStatus();  // Such a record cannot exist.
  const std::string key = RecordKey(id);
  SCEPCA_ASSIGN_OR_RETURN(RedisReply reply,
                          KeyCommand(*backend_, key, {"DEL", key}));
  if (!reply.is_integer()) return UnexpectedReply("DEL");
  return absl::OkStatus();
}

absl::StatusOr<int64_t> RedisChallengeStore::CountPending(absl::Time now) {
  // The prefix may hold glob characters: match them literally.
  std::string pattern;
  for (char c : prefix_) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') {
      pattern.push_back('\\');
    }
    pattern.push_back(c);
  }
  pattern += "c:{*}";
  int64_t pending = 0;
  SCEPCA_RETURN_IF_ERROR(backend_->ForEachMaster(
      [&](absl::string_view, RedisSession& session) -> absl::Status {
        std::string cursor = "0";
        do {
          SCEPCA_ASSIGN_OR_RETURN(
              RedisReply page,
              CheckReply(session,
                         session.Command({"SCAN", cursor, "MATCH", pattern,
                                          "COUNT", "1000", "TYPE", "hash"})));
          if (!page.is_array() || page.elements.size() != 2 ||
              !page.elements[0].is_string() || !page.elements[1].is_array()) {
            return UnexpectedReply("SCAN");
          }
          cursor = page.elements[0].str;
          std::vector<RedisArgs> commands;
          commands.reserve(page.elements[1].elements.size());
          for (const RedisReply& key : page.elements[1].elements) {
            commands.push_back({"HMGET", key.str, "state", "expires_at"});
          }
          if (commands.empty()) continue;
          SCEPCA_ASSIGN_OR_RETURN(std::vector<RedisReply> records,
                                  session.Pipeline(commands));
          for (const RedisReply& r : records) {
            // An error (a key that moved away) or a vanished key: skipped.
            if (!r.is_array() || r.elements.size() != 2 ||
                !r.elements[0].is_string() || r.elements[0].str != "pending" ||
                !r.elements[1].is_string()) {
              continue;
            }
            const absl::optional<absl::Time> expires_at =
                DecodeTime(r.elements[1].str);
            if (expires_at.has_value() && *expires_at > now) ++pending;
          }
        } while (cursor != "0");
        return absl::OkStatus();
      }));
  return pending;
}

absl::Status RedisChallengeStore::Ping() {
  // Every master must answer (a cluster serves each key from one of them).
  SCEPCA_RETURN_IF_ERROR(backend_->ForEachMaster(
      [](absl::string_view, RedisSession& session) -> absl::Status {
        SCEPCA_ASSIGN_OR_RETURN(RedisReply reply,
                                CheckReply(session, session.Command({"PING"})));
        if (!reply.is_status("PONG")) return UnexpectedReply("PING");
        return absl::OkStatus();
      }));
  // Strict durability: learn the epoch at start (the health check runs
  // first), so that challenges issued from then on belong to it.
  return replication_.EnsureEpoch(
      absl::FromUnixMicros(absl::ToUnixMicros(absl::Now())));
}

}  // namespace scepca
