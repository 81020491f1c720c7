#include "service/redis/redis_connection.h"

#include <poll.h>
#include <signal.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <mutex>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace scepca {
namespace {

timeval TimevalOf(absl::Duration d) {
  return absl::ToTimeval(std::max(d, absl::Milliseconds(1)));
}

void IgnoreSigpipeOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction current;
    if (sigaction(SIGPIPE, nullptr, &current) == 0 &&
        current.sa_handler == SIG_DFL) {
      signal(SIGPIPE, SIG_IGN);
    }
  });
}

// The first line of a Redis error, at most 200 bytes.
absl::string_view FirstLine(absl::string_view error) {
  error = error.substr(0, error.find_first_of("\r\n"));
  return error.substr(0, 200);
}

bool IsTimeoutErrno(int e) {
  return e == EAGAIN || e == EWOULDBLOCK || e == ETIMEDOUT || e == EINPROGRESS;
}

// Runs one command on a context that is still being set up.
absl::StatusOr<RedisReply> RawCommand(redisContext* context,
                                      const RedisArgs& args, int* saved_errno) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (absl::string_view a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  errno = 0;
  RedisReplyPtr reply(static_cast<redisReply*>(redisCommandArgv(
      context, static_cast<int>(argv.size()), argv.data(), lengths.data())));
  *saved_errno = errno;
  if (reply == nullptr) {
    return absl::UnavailableError("no reply");
  }
  return RedisReply::FromHiredis(*reply);
}

// Describes a context error in words (no key names: hiredis errors carry
// none).
std::string DescribeContextError(const redisContext& context, int saved_errno,
                                 absl::Duration timeout, bool connecting) {
  switch (context.err) {
    case REDIS_ERR_IO:
      if (IsTimeoutErrno(saved_errno) ||
          absl::StrContains(context.errstr, "timed out") ||
          absl::StrContains(context.errstr, "temporarily unavailable")) {
        return connecting
                   ? absl::StrCat("did not accept the connection within ",
                                  absl::FormatDuration(timeout))
                   : absl::StrCat("did not answer within ",
                                  absl::FormatDuration(timeout),
                                  " (the outcome of the command is unknown)");
      }
      return absl::StrCat("I/O error: ", context.errstr);
    case REDIS_ERR_EOF:
      return "closed the connection";
    case REDIS_ERR_PROTOCOL:
      return absl::StrCat("sent a reply that is not valid RESP: ",
                          context.errstr);
    case REDIS_ERR_OOM:
      return "could not be served: out of memory in the Redis client";
    default:
      return absl::StrCat("failed: ", context.errstr);
  }
}

}  // namespace

absl::Status StatusFromErrorReply(absl::string_view description,
                                  absl::string_view error) {
  const absl::string_view line = FirstLine(error);
  const std::string prefix = absl::StrCat("Redis at ", description, " ");
  if (absl::StartsWith(line, "OOM")) {
    return absl::ResourceExhaustedError(absl::StrCat(
        prefix,
        "is out of memory and refuses writes (maxmemory reached with "
        "maxmemory-policy noeviction; raise maxmemory or wait for keys to "
        "expire): ",
        line));
  }
  static constexpr absl::string_view kTransient[] = {
      "READONLY",   "MISCONF",  "LOADING",     "BUSY",
      "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "NOAUTH"};
  for (absl::string_view code : kTransient) {
    if (absl::StartsWith(line, code)) {
      absl::string_view why;
      if (code == "READONLY") {
        why = "is a read-only replica; point the store at the primary";
      } else if (code == "MISCONF") {
        why = "refuses writes because it cannot persist to disk";
      } else if (code == "LOADING") {
        why = "is still loading its data set";
      } else if (code == "NOAUTH") {
        why = "requires authentication (add user:password@ to the URL)";
      } else {
        why = "cannot serve the command right now";
      }
      return absl::UnavailableError(absl::StrCat(prefix, why, ": ", line));
    }
  }
  if (absl::StartsWith(line, "NOPERM")) {
    return absl::InternalError(
        absl::StrCat(prefix,
                     "denied a command the store needs (see the ACL in "
                     "deploy/redis/redis.conf): ",
                     line));
  }
  return absl::InternalError(
      absl::StrCat(prefix, "answered with an error: ", line));
}

RedisConnection::RedisConnection(RedisContextPtr context,
                                 std::string description,
                                 absl::Duration command_timeout)
    : context_(std::move(context)),
      description_(std::move(description)),
      command_timeout_(command_timeout) {}

absl::StatusOr<std::unique_ptr<RedisConnection>> RedisConnection::Connect(
    const RedisConnectOptions& options) {
  if (options.connect_timeout <= absl::ZeroDuration() ||
      options.command_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "Redis connect and command timeouts must be positive");
  }
  IgnoreSigpipeOnce();
  const std::string description = options.url.Redacted();
  const absl::Time deadline = absl::Now() + options.connect_timeout;

  RedisContextPtr context;
  std::string last_error = "no address to connect to";
  if (options.url.transport == RedisUrl::Transport::kUnix) {
    context.reset(redisConnectUnixWithTimeout(
        options.url.socket_path.c_str(), TimevalOf(options.connect_timeout)));
    const int saved_errno = errno;
    if (context == nullptr) {
      last_error = "could not allocate a connection";
    } else if (context->err != 0) {
      last_error = DescribeContextError(*context, saved_errno,
                                        options.connect_timeout, true);
      context.reset();
    }
  } else {
    std::vector<std::string> addresses = options.addresses;
    if (addresses.empty()) addresses.push_back(options.url.host);
    for (const std::string& address : addresses) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) break;
      const absl::Duration timeout = std::min(left, options.connect_timeout);
      context.reset(redisConnectWithTimeout(address.c_str(), options.url.port,
                                            TimevalOf(timeout)));
      const int saved_errno = errno;
      if (context == nullptr) {
        last_error = "could not allocate a connection";
        continue;
      }
      if (context->err == 0) break;
      last_error = DescribeContextError(*context, saved_errno, timeout, true);
      if (addresses.size() > 1) {
        last_error = absl::StrCat(last_error, " (at ", address, ")");
      }
      context.reset();
    }
  }
  if (context == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot connect to Redis at ",
                                               description, ": ", last_error));
  }
  if (redisSetTimeout(context.get(), TimevalOf(options.command_timeout)) !=
      REDIS_OK) {
    return absl::UnavailableError(absl::StrCat(
        "cannot set the command timeout on the connection to Redis at ",
        description, ": ", context->errstr));
  }
  if (options.url.transport == RedisUrl::Transport::kTcp) {
    // Detects a peer that vanished without closing (15 s probes); failure to
    // enable it only loses that detection.
    redisEnableKeepAlive(context.get());
  }

  // AUTH and SELECT, each bounded by the command timeout.
  std::vector<std::pair<RedisArgs, std::string>> setup;
  const std::string db = absl::StrCat(options.url.db);
  if (options.url.has_password) {
    RedisArgs auth = {"AUTH"};
    if (!options.url.user.empty()) auth.push_back(options.url.user);
    auth.push_back(options.url.password);
    setup.emplace_back(std::move(auth), "AUTH");
  }
  if (options.url.db != 0) {
    setup.emplace_back(RedisArgs{"SELECT", db}, absl::StrCat("SELECT ", db));
  }
  for (const auto& [args, what] : setup) {
    int saved_errno = 0;
    absl::StatusOr<RedisReply> reply =
        RawCommand(context.get(), args, &saved_errno);
    if (!reply.ok()) {
      return absl::UnavailableError(
          absl::StrCat("Redis at ", description, " ",
                       DescribeContextError(*context, saved_errno,
                                            options.command_timeout, false),
                       " while sending ", what));
    }
    if (reply->is_error()) {
      return absl::UnavailableError(absl::StrCat("Redis at ", description,
                                                 " refused ", what, ": ",
                                                 FirstLine(reply->str)));
    }
  }
  return absl::WrapUnique(new RedisConnection(std::move(context), description,
                                              options.command_timeout));
}

absl::Status RedisConnection::Fail(int saved_errno) {
  broken_ = true;
  return absl::UnavailableError(absl::StrCat(
      "Redis at ", description_, " ",
      DescribeContextError(*context_, saved_errno, command_timeout_, false)));
}

absl::StatusOr<RedisReply> RedisConnection::Command(const RedisArgs& args) {
  if (broken_) {
    return absl::FailedPreconditionError(
        "internal: command on a broken Redis connection");
  }
  int saved_errno = 0;
  absl::StatusOr<RedisReply> reply =
      RawCommand(context_.get(), args, &saved_errno);
  if (!reply.ok()) return Fail(saved_errno);
  return reply;
}

absl::StatusOr<std::vector<RedisReply>> RedisConnection::Pipeline(
    const std::vector<RedisArgs>& commands) {
  if (broken_) {
    return absl::FailedPreconditionError(
        "internal: command on a broken Redis connection");
  }
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const RedisArgs& args : commands) {
    argv.clear();
    lengths.clear();
    for (absl::string_view a : args) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    errno = 0;
    if (redisAppendCommandArgv(context_.get(), static_cast<int>(argv.size()),
                               argv.data(), lengths.data()) != REDIS_OK) {
      return Fail(errno);
    }
  }
  std::vector<RedisReply> replies;
  replies.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    errno = 0;
    const int rc = redisGetReply(context_.get(), &raw);
    const int saved_errno = errno;
    RedisReplyPtr reply(static_cast<redisReply*>(raw));
    if (rc != REDIS_OK || reply == nullptr) return Fail(saved_errno);
    replies.push_back(RedisReply::FromHiredis(*reply));
  }
  return replies;
}

bool RedisConnection::IdleAndOpen() const {
  if (broken_ || context_ == nullptr || context_->err != 0) return false;
  pollfd fd;
  fd.fd = context_->fd;
  fd.events = POLLIN | POLLRDHUP;
  fd.revents = 0;
  // Nothing may be readable on an idle connection: readable means closed by
  // the server (EOF), reset, or bytes nobody asked for.
  return poll(&fd, 1, 0) == 0;
}

}  // namespace scepca
