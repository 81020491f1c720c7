#include "service/redis/redis_backend.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "service/redis/redis_slot.h"

namespace scepca {
namespace {

constexpr absl::string_view kRedirectPayload = "type.scepca/redis-redirect";

absl::string_view FirstLine(absl::string_view error) {
  return error.substr(0, std::min<size_t>(error.find_first_of("\r\n"), 200));
}

// Encodes a redirection as "<kind> <slot> <address>" for the status payload.
std::string EncodeRedirect(const RedisRedirect& r) {
  return absl::StrCat(static_cast<int>(r.kind), " ", r.slot, " ", r.address);
}

absl::optional<RedisRedirect> DecodeRedirect(absl::string_view text) {
  const size_t a = text.find(' ');
  const size_t b = a == absl::string_view::npos ? a : text.find(' ', a + 1);
  int kind = 0;
  int slot = 0;
  if (b == absl::string_view::npos ||
      !absl::SimpleAtoi(text.substr(0, a), &kind) ||
      !absl::SimpleAtoi(text.substr(a + 1, b - a - 1), &slot) || kind < 0 ||
      kind > static_cast<int>(RedisRedirect::Kind::kMasterDown)) {
    return absl::nullopt;
  }
  RedisRedirect r;
  r.kind = static_cast<RedisRedirect::Kind>(kind);
  r.slot = slot;
  r.address = std::string(text.substr(b + 1));
  return r;
}

}  // namespace

bool SplitHostPort(absl::string_view address, std::string* host, int* port) {
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) return false;
  absl::string_view h = address.substr(0, colon);
  if (absl::StartsWith(h, "[") && absl::EndsWith(h, "]")) {
    h = h.substr(1, h.size() - 2);
  }
  int p = 0;
  if (h.empty() || !absl::SimpleAtoi(address.substr(colon + 1), &p) || p < 1 ||
      p > 65535) {
    return false;
  }
  *host = std::string(h);
  *port = p;
  return true;
}

absl::optional<RedisRedirect> ParseRedirect(absl::string_view error,
                                            bool cluster, bool sentinel) {
  const absl::string_view line = FirstLine(error);
  RedisRedirect r;
  if (cluster) {
    for (auto [word, kind] :
         {std::make_pair("MOVED ", RedisRedirect::Kind::kMoved),
          std::make_pair("ASK ", RedisRedirect::Kind::kAsk)}) {
      if (!absl::StartsWith(line, word)) continue;
      absl::string_view rest = line.substr(absl::string_view(word).size());
      const size_t space = rest.find(' ');
      std::string host;
      int port = 0;
      if (space == absl::string_view::npos ||
          !absl::SimpleAtoi(rest.substr(0, space), &r.slot) || r.slot < 0 ||
          r.slot >= kRedisClusterSlots ||
          !SplitHostPort(rest.substr(space + 1), &host, &port)) {
        return absl::nullopt;
      }
      r.kind = kind;
      r.address = std::string(rest.substr(space + 1));
      return r;
    }
    if (absl::StartsWith(line, "TRYAGAIN")) {
      r.kind = RedisRedirect::Kind::kTryAgain;
      return r;
    }
    if (absl::StartsWith(line, "CLUSTERDOWN")) {
      r.kind = RedisRedirect::Kind::kClusterDown;
      return r;
    }
  }
  if (sentinel) {
    if (absl::StartsWith(line, "READONLY")) {
      r.kind = RedisRedirect::Kind::kReadOnly;
      return r;
    }
    if (absl::StartsWith(line, "MASTERDOWN")) {
      r.kind = RedisRedirect::Kind::kMasterDown;
      return r;
    }
  }
  return absl::nullopt;
}

absl::optional<RedisRedirect> RedirectOf(const absl::Status& status) {
  if (status.ok()) return absl::nullopt;
  absl::optional<absl::Cord> payload = status.GetPayload(kRedirectPayload);
  if (!payload.has_value()) return absl::nullopt;
  return DecodeRedirect(std::string(*payload));
}

// ---------------------------------------------------------------------------

RedisSession::RedisSession(RedisConnection* connection, std::string node,
                           Mode mode, bool asking)
    : connection_(connection),
      node_(std::move(node)),
      mode_(mode),
      asking_(asking) {}

absl::Status RedisSession::ReplyStatus(const RedisReply& reply) const {
  if (!reply.is_error()) return absl::OkStatus();
  if (absl::Status redirect = CheckRedirect(reply); !redirect.ok()) {
    return redirect;
  }
  return StatusFromErrorReply(description(), reply.str);
}

absl::Status RedisSession::CheckRedirect(const RedisReply& reply) const {
  if (!reply.is_error() || mode_ == Mode::kSingleNode) return absl::OkStatus();
  absl::optional<RedisRedirect> redirect = ParseRedirect(
      reply.str, mode_ == Mode::kCluster, mode_ == Mode::kSentinel);
  if (!redirect.has_value()) return absl::OkStatus();
  absl::Status status = absl::UnavailableError(
      absl::StrCat("Redis at ", description(),
                   " cannot serve the command now: ", FirstLine(reply.str)));
  status.SetPayload(kRedirectPayload, absl::Cord(EncodeRedirect(*redirect)));
  return status;
}

absl::StatusOr<RedisReply> RedisSession::Command(const RedisArgs& args) {
  RedisReply reply;
  if (asking_) {
    absl::StatusOr<std::vector<RedisReply>> replies =
        connection_->Pipeline({RedisArgs{"ASKING"}, args});
    if (!replies.ok()) return replies.status();
    reply = std::move((*replies)[1]);
  } else {
    absl::StatusOr<RedisReply> one = connection_->Command(args);
    if (!one.ok()) return one.status();
    reply = *std::move(one);
  }
  if (absl::Status redirect = CheckRedirect(reply); !redirect.ok()) {
    return redirect;
  }
  return reply;
}

absl::StatusOr<std::vector<RedisReply>> RedisSession::Pipeline(
    const std::vector<RedisArgs>& commands) {
  if (!asking_) return connection_->Pipeline(commands);
  std::vector<RedisArgs> with_asking;
  with_asking.reserve(commands.size() * 2);
  for (const RedisArgs& args : commands) {
    with_asking.push_back({"ASKING"});
    with_asking.push_back(args);
  }
  absl::StatusOr<std::vector<RedisReply>> replies =
      connection_->Pipeline(with_asking);
  if (!replies.ok()) return replies.status();
  std::vector<RedisReply> out;
  out.reserve(commands.size());
  for (size_t i = 1; i < replies->size(); i += 2) {
    out.push_back(std::move((*replies)[i]));
  }
  return out;
}

// ---------------------------------------------------------------------------

absl::Status RedisBackend::WithNode(
    absl::string_view key, absl::FunctionRef<absl::Status(RedisSession&)> fn) {
  const absl::Time deadline = absl::Now() + max_retry_time_;
  absl::Duration backoff = absl::Milliseconds(5);
  absl::optional<RedisRedirect> target;
  absl::Status status;
  for (int attempt = 0; attempt < max_attempts_; ++attempt) {
    bool reached = true;
    status =
        Attempt(key, target.has_value() ? &*target : nullptr, fn, &reached);
    if (status.ok()) return status;
    absl::optional<RedisRedirect> redirect = RedirectOf(status);
    if (redirect.has_value()) {
      OnRedirect(*redirect);
      const bool immediate = redirect->kind == RedisRedirect::Kind::kMoved ||
                             redirect->kind == RedisRedirect::Kind::kAsk;
      target = immediate ? redirect : absl::nullopt;
      if (immediate) continue;
    } else {
      target.reset();
      if (!OnFailure(status, reached)) return status;
    }
    // TRYAGAIN, CLUSTERDOWN, READONLY, MASTERDOWN, or no connection: wait
    // a little for the resharding step or the failover.
    if (absl::Now() + backoff > deadline) return status;
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Milliseconds(200));
  }
  return status;
}

absl::StatusOr<std::vector<RedisReply>> RedisBackend::PipelineByKey(
    const std::vector<std::string>& keys,
    const std::vector<RedisArgs>& commands) {
  std::vector<RedisReply> replies(commands.size());
  for (const std::vector<size_t>& group : GroupByNode(keys)) {
    if (group.empty()) continue;
    std::vector<RedisArgs> batch;
    batch.reserve(group.size());
    for (size_t i : group) batch.push_back(commands[i]);
    std::vector<size_t> redirected;
    absl::Status status = WithNode(keys[group[0]], [&](RedisSession& session) {
      // Only the first attempt can be redirected as a whole: a pipeline is
      // sent once, and its redirected commands are resent one by one below.
      redirected.clear();
      absl::StatusOr<std::vector<RedisReply>> got = session.Pipeline(batch);
      if (!got.ok()) return got.status();
      for (size_t j = 0; j < got->size(); ++j) {
        if (!session.CheckRedirect((*got)[j]).ok()) redirected.push_back(j);
        replies[group[j]] = std::move((*got)[j]);
      }
      return absl::OkStatus();
    });
    if (!status.ok()) return status;
    for (size_t j : redirected) {
      const size_t i = group[j];
      absl::Status resent = WithNode(keys[i], [&](RedisSession& session) {
        absl::StatusOr<RedisReply> reply = session.Command(commands[i]);
        if (!reply.ok()) return reply.status();
        replies[i] = *std::move(reply);
        return absl::OkStatus();
      });
      if (!resent.ok()) return resent;
    }
  }
  return replies;
}

// ---------------------------------------------------------------------------

RedisSingleNodeBackend::RedisSingleNodeBackend(
    std::unique_ptr<RedisConnectionPool> pool)
    : pool_(std::move(pool)) {
  max_attempts_ = 1;
}

absl::Status RedisSingleNodeBackend::Attempt(
    absl::string_view /*key*/, const RedisRedirect* /*redirect*/,
    absl::FunctionRef<absl::Status(RedisSession&)> fn, bool* reached) {
  absl::StatusOr<RedisConnectionPool::Lease> lease = pool_->Borrow();
  if (!lease.ok()) {
    *reached = false;
    return lease.status();
  }
  RedisSession session(&lease->connection(), pool_->Describe(),
                       RedisSession::Mode::kSingleNode, false);
  return fn(session);
}

absl::Status RedisSingleNodeBackend::ForEachMaster(
    absl::FunctionRef<absl::Status(absl::string_view, RedisSession&)> fn) {
  return WithNode("", [&](RedisSession& session) { return fn("", session); });
}

std::vector<std::vector<size_t>> RedisSingleNodeBackend::GroupByNode(
    const std::vector<std::string>& keys) {
  std::vector<size_t> all(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) all[i] = i;
  return {std::move(all)};
}

absl::StatusOr<RedisReply> KeyCommand(RedisBackend& backend,
                                      absl::string_view key,
                                      const RedisArgs& args) {
  absl::StatusOr<RedisReply> result = absl::InternalError("Redis call not run");
  absl::Status status =
      backend.WithNode(key, [&](RedisSession& session) -> absl::Status {
        result = session.Command(args);
        if (result.ok()) {
          if (absl::Status error = session.ReplyStatus(*result); !error.ok()) {
            result = std::move(error);
          }
        }
        return result.status();
      });
  if (!status.ok()) return status;
  return result;
}

}  // namespace scepca
