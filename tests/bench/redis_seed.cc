// scepca_bench_redis: fills the benchmarks' Redis with outstanding one-time
// challenges, fast.
//
//   seed  --store=redis://... --count=N [--out=FILE] [--out-limit=K]
//         [--flush]
//     Issues ONE challenge through ChallengeAuthority::Issue on the real
//     RedisChallengeStore (the server's write path: record, device and user
//     index, whatever else it writes), reads back every key that wrote
//     (TYPE, PTTL, contents), then writes N clones of those keys, pipelined:
//     the same types, field names, value lengths and TTLs, with a fresh
//     challenge id (and a fresh device and user of the same length) each.
//     A clone's record is a valid pending challenge: Validate accepts it.
//     Writes the first K (all if 0) challenges to FILE, one per line.
//
//   issue --store=redis://... --count=N [--threads=T] [--out=FILE]
//     Issues N challenges through ChallengeAuthority::Issue (no gRPC), from
//     T threads: the store API in bulk, to check what seed writes.
//
// Prints one JSON line.
#include <algorithm>
#include <atomic>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "service/core/challenge_authority.h"
#include "service/core/clock.h"
#include "service/core/hashing.h"
#include "service/core/one_time_challenge.h"
#include "service/redis/redis_challenge_store.h"
#include "service/redis/redis_connection.h"
#include "service/redis/redis_url.h"

namespace scepca::bench {
namespace {

struct Flags {
  std::string command;
  std::string store;
  int64_t count = 0;
  std::string out;
  int64_t out_limit = 0;
  bool flush = false;
  int threads = 8;
};

// A key the template issue wrote, and how to rewrite it.
struct TemplateKey {
  std::string name;
  std::string type;
  int64_t pttl = -1;
  std::vector<std::string> items;  // hash: field, value...; zset: member,
                                   // score...; string: the value.
};

absl::StatusOr<std::unique_ptr<RedisConnection>> Connect(
    const std::string& url_text) {
  absl::StatusOr<RedisUrl> url = ParseRedisUrl(url_text);
  if (!url.ok()) return url.status();
  RedisConnectOptions options;
  options.url = *url;
  options.connect_timeout = absl::Seconds(2);
  options.command_timeout = absl::Seconds(60);
  return RedisConnection::Connect(options);
}

absl::StatusOr<RedisReply> Run(RedisConnection* c, const RedisArgs& args) {
  absl::StatusOr<RedisReply> reply = c->Command(args);
  if (reply.ok() && reply->is_error()) {
    return absl::InternalError(absl::StrCat(args[0], ": ", reply->str));
  }
  return reply;
}

absl::StatusOr<std::set<std::string>> AllKeys(RedisConnection* c) {
  absl::StatusOr<RedisReply> keys = Run(c, {"KEYS", "*"});
  if (!keys.ok()) return keys.status();
  std::set<std::string> out;
  for (const RedisReply& k : keys->elements) out.insert(k.str);
  return out;
}

absl::StatusOr<std::unique_ptr<ChallengeAuthority>> MakeAuthority(
    ChallengeStore* store) {
  return ChallengeAuthority::Create(AuthorityOptions(), store, RealClock::Get(),
                                    nullptr);
}

std::string Device(int64_t i) {
  return absl::StrFormat("bench-device-%010d", i);
}
std::string User(int64_t i) { return absl::StrFormat("bench-user-%010d", i); }

// Replaces every "{...}" part of `key`: the template id by `id`, any other
// hash by one of the same length derived from it and `i`.
std::string CloneKeyName(absl::string_view key, absl::string_view template_id,
                         absl::string_view id, int64_t i) {
  std::string out;
  while (!key.empty()) {
    const size_t open = key.find('{');
    const size_t close =
        open == absl::string_view::npos ? open : key.find('}', open);
    if (close == absl::string_view::npos) {
      absl::StrAppend(&out, key);
      break;
    }
    const absl::string_view tag = key.substr(open + 1, close - open - 1);
    absl::StrAppend(&out, key.substr(0, open + 1));
    if (tag == template_id) {
      absl::StrAppend(&out, id);
    } else {
      std::string h = HexEncode(Sha256(absl::StrCat(tag, "/", i)));
      while (h.size() < tag.size()) h += h;
      absl::StrAppend(&out, absl::string_view(h).substr(0, tag.size()));
    }
    absl::StrAppend(&out, "}");
    key.remove_prefix(close + 1);
  }
  return out;
}

int Seed(const Flags& f) {
  absl::StatusOr<std::unique_ptr<RedisConnection>> c = Connect(f.store);
  if (!c.ok()) {
    std::cerr << "seed: " << c.status() << "\n";
    return 1;
  }
  if (f.flush) {
    if (absl::StatusOr<RedisReply> r = Run(c->get(), {"FLUSHALL"}); !r.ok()) {
      std::cerr << "seed: " << r.status() << "\n";
      return 1;
    }
  }
  absl::StatusOr<std::set<std::string>> before = AllKeys(c->get());
  if (!before.ok()) {
    std::cerr << "seed: " << before.status() << "\n";
    return 1;
  }
  RedisStoreOptions store_options;
  store_options.url = f.store;
  absl::StatusOr<std::unique_ptr<RedisChallengeStore>> store =
      RedisChallengeStore::Create(store_options);
  if (!store.ok()) {
    std::cerr << "seed: " << store.status() << "\n";
    return 1;
  }
  absl::StatusOr<std::unique_ptr<ChallengeAuthority>> authority =
      MakeAuthority(store->get());
  if (!authority.ok()) {
    std::cerr << "seed: " << authority.status() << "\n";
    return 1;
  }
  IssueRequest request;
  request.device_id = Device(0);
  request.user_id = User(0);
  absl::StatusOr<IssueResult> issued = (*authority)->Issue(request);
  if (!issued.ok()) {
    std::cerr << "seed: template issue: " << issued.status() << "\n";
    return 1;
  }
  absl::StatusOr<std::set<std::string>> after = AllKeys(c->get());
  if (!after.ok()) {
    std::cerr << "seed: " << after.status() << "\n";
    return 1;
  }
  std::vector<TemplateKey> keys;
  for (const std::string& name : *after) {
    if (before->count(name) > 0) continue;
    TemplateKey k;
    k.name = name;
    absl::StatusOr<RedisReply> type = Run(c->get(), {"TYPE", name});
    absl::StatusOr<RedisReply> pttl = Run(c->get(), {"PTTL", name});
    if (!type.ok() || !pttl.ok()) {
      std::cerr << "seed: cannot read the template key\n";
      return 1;
    }
    k.type = type->str;
    k.pttl = pttl->integer;
    absl::StatusOr<RedisReply> content;
    if (k.type == "hash") {
      content = Run(c->get(), {"HGETALL", name});
    } else if (k.type == "zset") {
      content = Run(c->get(), {"ZRANGE", name, "0", "-1", "WITHSCORES"});
    } else if (k.type == "string") {
      content = Run(c->get(), {"GET", name});
    } else {
      std::cerr << "seed: the store wrote a " << k.type
                << " key; this tool clones hashes, sorted sets and strings\n";
      return 1;
    }
    if (!content.ok()) {
      std::cerr << "seed: " << content.status() << "\n";
      return 1;
    }
    if (content->is_array()) {
      for (const RedisReply& e : content->elements) k.items.push_back(e.str);
    } else {
      k.items.push_back(content->str);
    }
    keys.push_back(std::move(k));
  }
  // The template itself stays: it is one of the N.
  const std::string& template_id = issued->challenge_id;
  std::vector<std::string> challenges = {issued->challenge};
  const absl::Time t0 = absl::Now();
  constexpr int64_t kBatch = 256;
  std::vector<std::vector<std::string>> storage;
  std::vector<RedisArgs> commands;
  for (int64_t i = 1; i < f.count; i += kBatch) {
    storage.clear();
    commands.clear();
    for (int64_t j = i; j < std::min(f.count, i + kBatch); ++j) {
      absl::StatusOr<std::string> challenge = GenerateOneTimeChallenge();
      if (!challenge.ok()) {
        std::cerr << "seed: " << challenge.status() << "\n";
        return 1;
      }
      const std::string id = ChallengeIdOf(*challenge);
      const std::string device = Device(j);
      const std::string user = User(j);
      auto rewrite = [&](const std::string& v) -> std::string {
        if (v == template_id) return id;
        if (v == request.device_id) return device;
        if (v == request.user_id) return user;
        return v;
      };
      for (const TemplateKey& k : keys) {
        std::string name = CloneKeyName(k.name, template_id, id, j);
        std::vector<std::string> args;
        if (k.type == "hash") {
          args = {"HSET", name};
          for (const std::string& v : k.items) args.push_back(rewrite(v));
        } else if (k.type == "zset") {
          args = {"ZADD", name};
          for (size_t m = 0; m + 1 < k.items.size(); m += 2) {
            args.push_back(k.items[m + 1]);
            args.push_back(rewrite(k.items[m]));
          }
        } else {
          args = {"SET", name, rewrite(k.items[0])};
        }
        storage.push_back(std::move(args));
        if (k.pttl > 0) {
          storage.push_back({"PEXPIRE", name, absl::StrCat(k.pttl)});
        }
      }
      if (static_cast<int64_t>(challenges.size()) < f.out_limit ||
          f.out_limit == 0) {
        challenges.push_back(*std::move(challenge));
      }
    }
    for (const std::vector<std::string>& s : storage) {
      commands.emplace_back(s.begin(), s.end());
    }
    absl::StatusOr<std::vector<RedisReply>> replies = (*c)->Pipeline(commands);
    if (!replies.ok()) {
      std::cerr << "seed: " << replies.status() << "\n";
      return 1;
    }
    for (const RedisReply& r : *replies) {
      if (r.is_error()) {
        std::cerr << "seed: " << r.str << "\n";
        return 1;
      }
    }
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - t0);
  if (!f.out.empty()) {
    std::ofstream out(f.out);
    for (const std::string& ch : challenges) out << ch << "\n";
  }
  std::string types;
  for (const TemplateKey& k : keys) {
    absl::StrAppend(&types, types.empty() ? "" : ",", k.type);
  }
  std::cout << absl::StrFormat(
                   "{\"seeded\":%d,\"keys_per_challenge\":%d,\"key_types\":"
                   "\"%s\",\"seconds\":%.2f,\"written_out\":%d}",
                   f.count, keys.size(), types, seconds, challenges.size())
            << std::endl;
  return 0;
}

int Issue(const Flags& f) {
  RedisStoreOptions store_options;
  store_options.url = f.store;
  store_options.pool_size = f.threads;
  absl::StatusOr<std::unique_ptr<RedisChallengeStore>> store =
      RedisChallengeStore::Create(store_options);
  if (!store.ok()) {
    std::cerr << "issue: " << store.status() << "\n";
    return 1;
  }
  absl::StatusOr<std::unique_ptr<ChallengeAuthority>> authority =
      MakeAuthority(store->get());
  if (!authority.ok()) {
    std::cerr << "issue: " << authority.status() << "\n";
    return 1;
  }
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> failed{0};
  std::vector<std::vector<std::string>> issued(f.threads);
  const absl::Time t0 = absl::Now();
  std::vector<std::thread> threads;
  for (int t = 0; t < f.threads; ++t) {
    threads.emplace_back([&, t] {
      for (int64_t i; (i = next.fetch_add(1)) < f.count;) {
        IssueRequest request;
        request.device_id = Device(i + 1'000'000'000);
        request.user_id = User(i + 1'000'000'000);
        absl::StatusOr<IssueResult> r = (*authority)->Issue(request);
        if (!r.ok()) {
          failed.fetch_add(1);
          continue;
        }
        issued[t].push_back(r->challenge);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - t0);
  if (!f.out.empty()) {
    std::ofstream out(f.out);
    for (const auto& v : issued) {
      for (const std::string& ch : v) out << ch << "\n";
    }
  }
  std::cout << absl::StrFormat(
                   "{\"issued\":%d,\"failed\":%d,\"seconds\":%.2f,\"rate\":%."
                   "0f}",
                   f.count - failed.load(), failed.load(), seconds,
                   static_cast<double>(f.count) / seconds)
            << std::endl;
  return failed.load() == 0 ? 0 : 1;
}

int Main(int argc, char** argv) {
  Flags f;
  if (argc < 2) {
    std::cerr << "usage: scepca_bench_redis seed|issue --store=URL "
                 "--count=N ...\n";
    return 2;
  }
  f.command = argv[1];
  for (int i = 2; i < argc; ++i) {
    absl::string_view arg = argv[i];
    const size_t eq = arg.find('=');
    const absl::string_view name = arg.substr(0, eq);
    const std::string value(eq == absl::string_view::npos ? ""
                                                          : arg.substr(eq + 1));
    bool ok = true;
    if (name == "--store") {
      f.store = value;
    } else if (name == "--count") {
      ok = absl::SimpleAtoi(value, &f.count) && f.count > 0;
    } else if (name == "--out") {
      f.out = value;
    } else if (name == "--out-limit") {
      ok = absl::SimpleAtoi(value, &f.out_limit);
    } else if (name == "--flush") {
      f.flush = true;
    } else if (name == "--threads") {
      ok = absl::SimpleAtoi(value, &f.threads) && f.threads > 0;
    } else {
      ok = false;
    }
    if (!ok) {
      std::cerr << "scepca_bench_redis: bad flag " << arg << "\n";
      return 2;
    }
  }
  if (f.store.empty() || f.count <= 0) {
    std::cerr << "scepca_bench_redis: --store and --count are required\n";
    return 2;
  }
  if (f.command == "seed") return Seed(f);
  if (f.command == "issue") return Issue(f);
  std::cerr << "scepca_bench_redis: unknown command " << f.command << "\n";
  return 2;
}

}  // namespace
}  // namespace scepca::bench

int main(int argc, char** argv) { return scepca::bench::Main(argc, argv); }
