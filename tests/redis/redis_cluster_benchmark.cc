// Measures the Redis store's throughput on Redis Clusters of one, two and
// three masters (no replicas, so no WAIT) started on this machine: THREADS
// threads run Insert then Consume of fresh challenges through one store for
// SECONDS seconds. Not a test; run by hand:
//
//   build/tests/redis/redis_cluster_benchmark [SECONDS=5] [THREADS=8]
//
// The numbers in deploy/redis/README.md ("Scaling") come from it.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "service/redis/redis_challenge_store.h"
#include "tests/testing/redis_topology.h"

namespace scepca::testing {
namespace {

int Run(int seconds, int threads) {
  std::printf("%-8s %10s %14s %12s\n", "masters", "threads", "pairs/s",
              "errors");
  for (int masters = 1; masters <= 3; ++masters) {
    RedisClusterTopologyOptions options;
    options.masters = masters;
    options.replicas_per_master = 0;
    absl::StatusOr<std::unique_ptr<RedisClusterTopology>> cluster =
        RedisClusterTopology::Start(options);
    if (!cluster.ok()) {
      std::fprintf(stderr, "%s\n", cluster.status().ToString().c_str());
      return 1;
    }
    RedisStoreOptions store_options;
    store_options.url = (*cluster)->url();
    store_options.pool_size = threads;
    absl::StatusOr<std::unique_ptr<RedisChallengeStore>> store =
        RedisChallengeStore::Create(store_options);
    if (!store.ok()) {
      std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
      return 1;
    }
    std::atomic<int64_t> pairs{0}, errors{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        for (int64_t n = 0; !stop.load(); ++n) {
          const absl::Time now =
              absl::FromUnixMicros(absl::ToUnixMicros(absl::Now()));
          ChallengeRecord r;
          r.id = absl::StrCat(absl::Hex(t + 1, absl::kZeroPad8),
                              absl::Hex(masters, absl::kZeroPad8),
                              absl::Hex(n, absl::kZeroPad16));
          r.device_id = absl::StrCat("bench-", t, "-", n % 64);
          r.created_at = now;
          r.expires_at = now + absl::Minutes(5);
          r.forget_at = r.expires_at + absl::Minutes(1);
          if (!(*store)->Insert(r, now).ok()) {
            errors.fetch_add(1);
            continue;
          }
          absl::StatusOr<ConsumeResult> c =
              (*store)->Consume(r.id, UseInfo{"bench", ""}, now);
          if (!c.ok() || c->outcome != ConsumeResult::Outcome::kConsumed) {
            errors.fetch_add(1);
            continue;
          }
          pairs.fetch_add(1);
        }
      });
    }
    absl::SleepFor(absl::Seconds(seconds));
    stop.store(true);
    for (std::thread& w : workers) w.join();
    std::printf("%-8d %10d %14.0f %12lld\n", masters, threads,
                static_cast<double>(pairs.load()) / seconds,
                static_cast<long long>(errors.load()));
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace scepca::testing

int main(int argc, char** argv) {
  const int seconds = argc > 1 ? std::atoi(argv[1]) : 5;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 8;
  if (seconds < 1 || threads < 1) {
    std::fprintf(stderr, "usage: %s [SECONDS] [THREADS]\n", argv[0]);
    return 2;
  }
  return scepca::testing::Run(seconds, threads);
}
