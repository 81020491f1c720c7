// File: redis_reply.h
// RAII ownership of hiredis objects, and RedisReply: a reply copied out of
// hiredis into an ordinary value, so that no hiredis memory outlives the call
// that produced it.
#ifndef SCEPCA_SERVICE_REDIS_REDIS_REPLY_H_
#define SCEPCA_SERVICE_REDIS_REDIS_REPLY_H_

#include <hiredis/hiredis.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace scepca {

// Frees a redisContext (closing its socket).
struct RedisContextDeleter {
  void operator()(redisContext* context) const {
    if (context != nullptr) redisFree(context);
  }
};
using RedisContextPtr = std::unique_ptr<redisContext, RedisContextDeleter>;

// Frees a reply returned by redisCommandArgv/redisGetReply.
struct RedisReplyDeleter {
  void operator()(redisReply* reply) const {
    if (reply != nullptr) freeReplyObject(reply);
  }
};
using RedisReplyPtr = std::unique_ptr<redisReply, RedisReplyDeleter>;

// One reply of Redis, as a plain copyable value. Strings are binary-safe.
struct RedisReply {
  enum class Type { kNil, kStatus, kError, kInteger, kString, kArray };

  Type type = Type::kNil;
  // The bytes of a kString, the text of a kStatus ("OK", "PONG") or of a
  // kError ("OOM command not allowed ...").
  std::string str;
  int64_t integer = 0;
  std::vector<RedisReply> elements;  // kArray only.

  bool is_nil() const { return type == Type::kNil; }
  bool is_error() const { return type == Type::kError; }
  bool is_string() const { return type == Type::kString; }
  bool is_integer() const { return type == Type::kInteger; }
  bool is_array() const { return type == Type::kArray; }
  bool is_status(absl::string_view text) const {
    return type == Type::kStatus && str == text;
  }

  // Copies a hiredis reply (recursively).
  static RedisReply FromHiredis(const redisReply& reply) {
    RedisReply out;
    switch (reply.type) {
      case REDIS_REPLY_STRING:
        out.type = Type::kString;
        out.str.assign(reply.str, reply.len);
        break;
      case REDIS_REPLY_STATUS:
        out.type = Type::kStatus;
        out.str.assign(reply.str, reply.len);
        break;
      case REDIS_REPLY_ERROR:
        out.type = Type::kError;
        out.str.assign(reply.str, reply.len);
        break;
      case REDIS_REPLY_INTEGER:
        out.type = Type::kInteger;
        out.integer = reply.integer;
        break;
      case REDIS_REPLY_ARRAY:
        out.type = Type::kArray;
        out.elements.reserve(reply.elements);
        for (size_t i = 0; i < reply.elements; ++i) {
          out.elements.push_back(reply.element[i] == nullptr
                                     ? RedisReply()
                                     : FromHiredis(*reply.element[i]));
        }
        break;
      default:
        out.type = Type::kNil;
        break;
    }
    return out;
  }
};

}  // namespace scepca

#endif  // SCEPCA_SERVICE_REDIS_REDIS_REPLY_H_
