#include "service/redis/redis_audit_stream.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "service/core/hashing.h"
#include "service/core/log.h"
#include "service/core/random.h"
#include "service/core/status_macros.h"
#include "service/redis/redis_connection.h"

namespace scepca {

absl::StatusOr<std::unique_ptr<RedisAuditStream>> RedisAuditStream::Start(
    RedisBackend* backend, RedisAuditStreamOptions options) {
  if (options.key.empty()) {
    return absl::InvalidArgumentError("audit stream key is empty");
  }
  if (options.max_length < 1 || options.queue_capacity < 1 ||
      options.batch_size < 1) {
    return absl::InvalidArgumentError(
        "audit stream max length, queue capacity and batch size must be "
        "positive");
  }
  SCEPCA_ASSIGN_OR_RETURN(std::string raw, SecureRandomBytes(8));
  std::unique_ptr<RedisAuditStream> stream(
      new RedisAuditStream(backend, std::move(options), HexEncode(raw)));
  stream->thread_ = std::thread([s = stream.get()] { s->Run(); });
  return stream;
}

RedisAuditStream::RedisAuditStream(RedisBackend* backend,
                                   RedisAuditStreamOptions options,
                                   std::string instance)
    : backend_(backend),
      options_(std::move(options)),
      instance_(std::move(instance)),
      max_length_text_(absl::StrCat(options_.max_length)) {}

RedisAuditStream::~RedisAuditStream() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    give_up_at_ = absl::Now() + options_.flush_on_close;
  }
  thread_.join();
  absl::MutexLock lock(&mu_);
  if (!queue_.empty()) {
    dropped_ += queue_.size();
    LogWarning(absl::StrCat("audit stream ", options_.key, ": ", queue_.size(),
                            " entries not delivered at shutdown (they are in "
                            "--audit-log, if set)"));
  }
}

void RedisAuditStream::Record(const AuditEntry& entry) {
  Command command = {"XADD",           options_.key, "MAXLEN",   "~",
                     max_length_text_, "*",          "instance", instance_};
  command.reserve(command.size() + 20);
  auto field = [&command](absl::string_view name, absl::string_view value) {
    if (value.empty()) return;
    command.emplace_back(name);
    command.emplace_back(value);
  };
  field("method", entry.method);
  field("outcome", entry.outcome);
  field("caller", entry.caller);
  field("challenge_id", entry.challenge_id);
  field("device_id", entry.device_id);
  field("user_id", entry.user_id);
  field("transaction_id", entry.transaction_id);
  std::string json = AuditJson(entry);
  if (!json.empty() && json.back() == '\n') json.pop_back();
  command.emplace_back("json");
  command.push_back(std::move(json));
  absl::MutexLock lock(&mu_);
  if (queue_.size() >= options_.queue_capacity) {
    ++dropped_;
    return;
  }
  command.emplace_back("seq");
  command.push_back(absl::StrCat(next_seq_++));
  queue_.push_back(std::move(command));
}

bool RedisAuditStream::Flush(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  const uint64_t target = next_seq_ - 1;
  // Queued entries are numbered and written in order (entries dropped at
  // the door never got a number).
  auto done = [this, target]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return written_seq_ >= target;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
}

absl::Status RedisAuditStream::Write(const std::vector<Command>& batch) {
  std::vector<RedisArgs> commands;
  commands.reserve(batch.size());
  for (const Command& command : batch) {
    commands.emplace_back(command.begin(), command.end());
  }
  return backend_->WithNode(
      options_.key, [&](RedisSession& session) -> absl::Status {
        SCEPCA_ASSIGN_OR_RETURN(std::vector<RedisReply> replies,
                                session.Pipeline(commands));
        for (const RedisReply& reply : replies) {
          SCEPCA_RETURN_IF_ERROR(session.ReplyStatus(reply));
        }
        return absl::OkStatus();
      });
}

void RedisAuditStream::Run() {
  absl::Duration backoff = absl::Milliseconds(50);
  std::vector<Command> batch;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !queue_.empty() || stopping_;
      };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty() || (stopping_ && absl::Now() >= give_up_at_)) return;
      // Copies: the entries stay queued (and counted) until Redis has them.
      const size_t n = std::min(queue_.size(), options_.batch_size);
      batch.assign(queue_.begin(), queue_.begin() + n);
    }
    absl::Status written = Write(batch);
    if (written.ok()) {
      absl::MutexLock lock(&mu_);
      for (size_t i = 0; i < batch.size(); ++i) queue_.pop_front();
      // The last field of a command is its sequence number.
      uint64_t seq = 0;
      if (absl::SimpleAtoi(batch.back().back(), &seq)) written_seq_ = seq;
      written_ += batch.size();
      backoff = absl::Milliseconds(50);
      continue;
    }
    ++failed_attempts_;
    if (failed_attempts_.load() == 1 || failed_attempts_.load() % 100 == 0) {
      LogWarning(absl::StrCat("audit stream ", options_.key,
                              ": cannot append (", written.message(),
                              "); retrying"));
    }
    absl::MutexLock lock(&mu_);
    auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopping_ && absl::Now() >= give_up_at_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&stop), backoff);
    if (stop()) return;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

}  // namespace scepca
