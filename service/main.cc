// challenge-authority: the SCEP challenge authority server.
#include <signal.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "service/core/audit_log.h"
#include "service/core/challenge_authority.h"
#include "service/core/in_memory_challenge_store.h"
#include "service/core/key_ring.h"
#include "service/core/log.h"
#include "service/flags/flag_set.h"
#include "service/grpc/authority_server.h"
#include "service/grpc/authorizer.h"
#include "service/grpc/service_metrics.h"
#include "service/http/http_server.h"
#include "service/redis/redis_audit_stream.h"
#include "service/redis/redis_challenge_store.h"
#include "service/redis/redis_outstanding_counter.h"

namespace scepca {
namespace {

constexpr char kUsage[] =
    "challenge-authority [FLAGS]\n"
    "Issues and validates SCEP challenge passwords over gRPC "
    "(scep.challenge.v1.ChallengeAuthority).\n"
    "--store memory (the default) keeps everything in this process and loses "
    "it on restart;\n"
    "--store redis://[user:password@]host:port[/db] or "
    "unix:///path/redis.sock shares\n"
    "challenges between instances and keeps them across restarts.";

absl::StatusOr<std::unique_ptr<ChallengeStore>> OpenStore(
    const std::string& spec, const RedisStoreOptions& redis,
    const std::string& durability) {
  if (spec == "memory") return std::make_unique<InMemoryChallengeStore>();
  if (absl::StartsWith(spec, "redis://") || absl::StartsWith(spec, "unix://") ||
      absl::StartsWith(spec, "redis-sentinel://") ||
      absl::StartsWith(spec, "redis-cluster://")) {
    RedisStoreOptions options = redis;
    options.url = spec;
    absl::StatusOr<RedisDurability> parsed = ParseRedisDurability(durability);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--redis-durability: ", parsed.status().message()));
    }
    options.replication.durability = *parsed;
    return NewRedisChallengeStore(options);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--store: '", spec,
                   "' is not memory, redis://..., unix://..., "
                   "redis-sentinel://... or redis-cluster://..."));
}

int Run(int argc, char** argv) {
  ServerOptions server_options;
  AuthorityOptions authority_options;
  RedisStoreOptions redis_options;
  std::string store = "memory";
  std::string hmac_keys;
  absl::Duration shutdown_grace = absl::Seconds(5);
  HttpServerOptions http_options;  // HTTP webhooks; off without --http-listen.

  FlagSet flags("challenge-authority", kUsage);
  flags.String("listen", &server_options.listen,
               "HOST:PORT for gRPC (port 0 picks a free port)");
  flags.String("store", &store,
               "memory | redis://[user:password@]host:port[/db] | "
               "unix:///path/redis.sock | "
               "redis-sentinel://[user:password@]host:port,.../MASTER[?db=N] | "
               "redis-cluster://[user:password@]host:port,...");
  flags.Duration("default-ttl", &authority_options.default_ttl,
                 "lifetime of a challenge issued without a ttl");
  flags.Duration("max-ttl", &authority_options.max_ttl,
                 "longest lifetime a caller may ask for");
  flags.Duration("expired-retention", &authority_options.expired_retention,
                 "how long an expired, used or revoked challenge is "
                 "remembered so Validate can say why it is refused");
  flags.String("hmac-keys", &hmac_keys,
               "key file for signed challenges (mode 0600; reloaded on "
               "SIGHUP; see 'challengectl keys')");
  flags.Duration("clock-leeway", &authority_options.clock_leeway,
                 "clock difference tolerated when checking signed "
                 "challenges' times");
  flags.String("redis-prefix", &redis_options.prefix,
               "prefix of every Redis key");
  flags.String("redis-password-file", &redis_options.password_file,
               "file (mode 0600) with the Redis password, so it stays out "
               "of --store and ps");
  flags.Duration("redis-connect-timeout", &redis_options.connect_timeout,
                 "Redis connect timeout");
  flags.Duration("redis-command-timeout", &redis_options.command_timeout,
                 "Redis command timeout");
  flags.Int("redis-pool-size", &redis_options.pool_size,
            "Redis connections per instance (per node for a cluster)");
  flags.Int("redis-wait-replicas", &redis_options.replication.wait_replicas,
            "replicas that must confirm (WAIT) each consume and replay "
            "nonce; -1: 1 once a replica is seen, else 0");
  flags.Duration("redis-wait-timeout", &redis_options.replication.wait_timeout,
                 "how long WAIT waits for those replicas");
  std::string redis_durability = "relaxed";
  flags.String("redis-durability", &redis_durability,
               "relaxed: accept a consume no replica confirmed (logged "
               "replication_unconfirmed); strict: answer UNAVAILABLE instead, "
               "and refuse challenges and tokens issued before a Redis "
               "failover or restart (see deploy/redis/README.md)");
  flags.Int("max-threads", &server_options.max_threads,
            "most threads serving gRPC calls");
  flags.Int("max-message-bytes", &server_options.max_receive_message_bytes,
            "largest request accepted");
  flags.Duration("health-interval", &server_options.health_interval,
                 "how often the store's health is checked");
  flags.Duration("shutdown-grace", &shutdown_grace,
                 "how long in-flight calls may run after SIGTERM");
  std::string authz_file, audit_log;
  flags.String("tls-cert", &server_options.tls_cert,
               "PEM certificate chain of the gRPC server (with --tls-key)");
  flags.String("tls-key", &server_options.tls_key,
               "PEM private key of the gRPC server (mode 0600)");
  flags.String("client-ca", &server_options.client_ca,
               "PEM CA certificates for client certificates (mutual TLS)");
  flags.Bool("allow-insecure-listen", &server_options.allow_insecure_listen,
             "allow plaintext gRPC on a non-loopback address");
  flags.String("authz-file", &authz_file,
               "JSON roles of callers (client certificates, bearer tokens); "
               "without it every caller may call every RPC");
  flags.Int("max-outstanding-per-device",
            &authority_options.max_outstanding_per_device,
            "most unused one-time challenges per device (0: no limit)");
  flags.Int("max-failed-validations-per-device",
            &authority_options.max_failed_validations_per_device,
            "refused validations per device within --failed-validation-window "
            "before its Validates get RESOURCE_EXHAUSTED (0: no limit)");
  flags.Duration("failed-validation-window",
                 &authority_options.failed_validation_window,
                 "window of --max-failed-validations-per-device");
  double rate_limit = 0;
  int rate_limit_int = 0, rate_burst = 0;
  flags.Int("rate-limit-per-caller", &rate_limit_int,
            "calls per second each caller may make (0: no limit)");
  flags.Int("rate-limit-burst", &rate_burst,
            "bursts above --rate-limit-per-caller (default: twice it)");
  flags.String("audit-log", &audit_log,
               "append one JSON line per decision to FILE ('-': stdout)");
  bool audit_redis_stream = false;
  flags.Bool("audit-redis-stream", &audit_redis_stream,
             "also append each decision to the capped Redis Stream "
             "<redis-prefix>audit (one trail for every instance; needs a "
             "Redis store)");
  absl::Duration outstanding_interval = absl::Minutes(5);
  flags.Duration("outstanding-count-interval", &outstanding_interval,
                 "Redis store: how often the fleet counts pending "
                 "challenges for scepca_outstanding_challenges (one instance "
                 "scans per interval; 0: never)");
  int audit_redis_maxlen = 1000000;
  flags.Int("audit-redis-maxlen", &audit_redis_maxlen,
            "entries the audit stream keeps (XADD MAXLEN ~)");
  http_options.AddFlags(&flags);

  absl::StatusOr<std::vector<std::string>> rest =
      flags.Parse(std::vector<std::string>(argv + 1, argv + argc));
  if (!rest.ok()) {
    std::cerr << "challenge-authority: " << rest.status().message() << "\n";
    return 2;
  }
  if (flags.help_requested()) {
    std::cout << flags.Usage();
    return 0;
  }
  if (!rest->empty()) {
    std::cerr << "challenge-authority: unexpected argument '" << (*rest)[0]
              << "'\n";
    return 2;
  }
  if (absl::Status st = authority_options.Check(); !st.ok()) {
    std::cerr << "challenge-authority: " << st.message() << "\n";
    return 2;
  }
  if (redis_options.pool_size < server_options.max_threads &&
      !flags.WasSet("redis-pool-size")) {
    redis_options.pool_size = server_options.max_threads;
  }

  // Block the shutdown signals in every thread; main waits for them below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<Authorizer> authorizer;
  if (!authz_file.empty()) {
    absl::StatusOr<std::unique_ptr<Authorizer>> loaded =
        Authorizer::FromFile(authz_file);
    if (!loaded.ok()) {
      std::cerr << "challenge-authority: --authz-file: "
                << loaded.status().message() << "\n";
      return 2;
    }
    authorizer = *std::move(loaded);
    server_options.hooks.authorizer = authorizer.get();
  } else if (!IsLoopbackAddress(server_options.listen)) {
    LogWarning(
        "no --authz-file: every caller that reaches the port may issue, "
        "validate and revoke challenges");
  }
  std::unique_ptr<AuditLog> audit;
  if (!audit_log.empty()) {
    absl::StatusOr<std::unique_ptr<AuditLog>> opened =
        AuditLog::Open(audit_log);
    if (!opened.ok()) {
      std::cerr << "challenge-authority: --audit-log: "
                << opened.status().message() << "\n";
      return 2;
    }
    audit = *std::move(opened);
    server_options.hooks.audit = audit.get();
  }
  ServiceMetrics metrics;
  server_options.hooks.metrics = &metrics;
  std::unique_ptr<RateLimiter> rate_limiter;
  rate_limit = rate_limit_int;
  if (rate_limit < 0 || rate_burst < 0) {
    std::cerr << "challenge-authority: rate limits must not be negative\n";
    return 2;
  }
  if (rate_limit > 0) {
    rate_limiter = std::make_unique<RateLimiter>(
        rate_limit, rate_burst > 0 ? rate_burst : 2 * rate_limit);
    server_options.hooks.rate_limiter = rate_limiter.get();
  }
  http_options.metrics = [&metrics] { return metrics.Render(); };

  absl::StatusOr<std::unique_ptr<ChallengeStore>> challenge_store =
      OpenStore(store, redis_options, redis_durability);
  if (!challenge_store.ok()) {
    std::cerr << "challenge-authority: " << challenge_store.status().message()
              << "\n";
    return 2;
  }
  std::unique_ptr<KeyRingHolder> keys;
  if (!hmac_keys.empty()) {
    absl::StatusOr<KeyRing> ring = KeyRing::LoadFile(hmac_keys);
    if (!ring.ok()) {
      std::cerr << "challenge-authority: --hmac-keys: "
                << ring.status().message() << "\n";
      return 2;
    }
    LogInfo(absl::StrCat("loaded ", ring->keys().size(), " HMAC keys from ",
                         hmac_keys, "; primary key ", ring->primary()->id));
    keys = std::make_unique<KeyRingHolder>(*std::move(ring));
  }
  std::unique_ptr<RedisOutstandingCounter> outstanding_counter;
  absl::StatusOr<std::unique_ptr<ChallengeAuthority>> authority =
      ChallengeAuthority::Create(authority_options, challenge_store->get(),
                                 RealClock::Get(), keys.get());
  if (authority.ok()) {
    if (keys != nullptr) {
      metrics.SetGauge(
          "scepca_key_ring_generation",
          "How many times the HMAC key ring was reloaded.",
          [k = keys.get()] { return static_cast<double>(k->generation()); });
    }
    if (auto* redis =
            dynamic_cast<RedisChallengeStore*>(challenge_store->get());
        redis != nullptr && outstanding_interval > absl::ZeroDuration()) {
      absl::StatusOr<std::unique_ptr<RedisOutstandingCounter>> counter =
          RedisOutstandingCounter::Start(redis, outstanding_interval);
      if (!counter.ok()) {
        std::cerr << "challenge-authority: --outstanding-count-interval: "
                  << counter.status().message() << "\n";
        return 2;
      }
      outstanding_counter = *std::move(counter);
      metrics.SetGauge(
          "scepca_outstanding_challenges",
          "Pending, unexpired one-time challenges, as last counted (-1: not "
          "counted yet).",
          [c = outstanding_counter.get()] {
            absl::optional<RedisOutstandingCounter::Count> count = c->Latest();
            return count.has_value() ? static_cast<double>(count->pending)
                                     : -1.0;
          });
      metrics.SetGauge(
          "scepca_outstanding_challenges_counted_at_seconds",
          "When scepca_outstanding_challenges was counted (Unix time).",
          [c = outstanding_counter.get()] {
            absl::optional<RedisOutstandingCounter::Count> count = c->Latest();
            return count.has_value() ? absl::ToDoubleSeconds(count->counted_at -
                                                             absl::UnixEpoch())
                                     : 0.0;
          });
    }
    if (auto* memory =
            dynamic_cast<InMemoryChallengeStore*>(challenge_store->get())) {
      // Counted per scrape: the records are in this process.
      metrics.SetGauge(
          "scepca_outstanding_challenges",
          "Pending, unexpired one-time challenges (memory store).", [memory] {
            return static_cast<double>(memory->PendingCount(absl::Now()));
          });
    }
  }
  if (!authority.ok()) {
    std::cerr << "challenge-authority: " << authority.status().message()
              << "\n";
    return 2;
  }
  std::unique_ptr<RedisAuditStream> audit_stream;
  std::unique_ptr<AuditTee> audit_tee;
  if (audit_redis_stream) {
    auto* redis = dynamic_cast<RedisChallengeStore*>(challenge_store->get());
    if (redis == nullptr) {
      std::cerr << "challenge-authority: --audit-redis-stream needs a Redis "
                   "--store\n";
      return 2;
    }
    RedisAuditStreamOptions stream_options;
    stream_options.key = absl::StrCat(redis->prefix(), "audit");
    stream_options.max_length = audit_redis_maxlen;
    absl::StatusOr<std::unique_ptr<RedisAuditStream>> started =
        RedisAuditStream::Start(&redis->backend(), stream_options);
    if (!started.ok()) {
      std::cerr << "challenge-authority: --audit-redis-stream: "
                << started.status().message() << "\n";
      return 2;
    }
    audit_stream = *std::move(started);
    metrics.SetGauge(
        "scepca_audit_stream_dropped",
        "Audit entries the Redis Stream lost (queue full while "
        "Redis was unreachable, or undelivered at shutdown).",
        [s = audit_stream.get()] { return static_cast<double>(s->dropped()); });
    if (audit != nullptr) {
      audit_tee = std::make_unique<AuditTee>(
          std::vector<AuditSink*>{audit.get(), audit_stream.get()});
      server_options.hooks.audit = audit_tee.get();
    } else {
      server_options.hooks.audit = audit_stream.get();
    }
    LogInfo(absl::StrCat("audit trail also in the Redis Stream ",
                         stream_options.key));
  }
  if (store == "memory") {
    LogWarning(
        "store is memory: every challenge is lost when this process stops, "
        "and other instances cannot see them; use --store redis://... in "
        "production");
  }
  absl::StatusOr<std::unique_ptr<HttpServer>> http =
      StartHttpServerIfConfigured(http_options, authority->get());
  if (!http.ok()) {
    std::cerr << "challenge-authority: " << http.status().message() << "\n";
    return absl::IsUnavailable(http.status()) ? 1 : 2;
  }
  absl::StatusOr<std::unique_ptr<AuthorityServer>> server =
      AuthorityServer::Start(server_options, authority->get());
  if (!server.ok()) {
    std::cerr << "challenge-authority: " << server.status().message() << "\n";
    return absl::IsInvalidArgument(server.status()) ? 2 : 1;
  }
  const std::string host =
      server_options.listen.substr(0, server_options.listen.rfind(':'));
  LogInfo(absl::StrCat(
      "challenge-authority listening on ", host, ":", (*server)->port(),
      " with store ", (*challenge_store)->Describe(), ", default ttl ",
      absl::FormatDuration(authority_options.default_ttl), ", max ttl ",
      absl::FormatDuration(authority_options.max_ttl)));
  int received = 0;
  while (sigwait(&signals, &received) == 0 && received == SIGHUP) {
    if (*http != nullptr) (*http)->ReloadUsers();
    if (keys == nullptr) {
      LogInfo("SIGHUP: no --hmac-keys to reload");
      continue;
    }
    // Calls in flight keep the ring they started with; new calls see the
    // new one. A bad file keeps the old ring.
    absl::StatusOr<KeyRing> ring = KeyRing::LoadFile(hmac_keys);
    if (!ring.ok()) {
      LogError(absl::StrCat("SIGHUP: keeping the current keys: ",
                            ring.status().message()));
      continue;
    }
    const uint32_t primary = ring->primary()->id;
    const size_t count = ring->keys().size();
    keys->Set(*std::move(ring));
    LogInfo(absl::StrCat("SIGHUP: reloaded ", count, " HMAC keys; primary key ",
                         primary, "; generation ", keys->generation()));
  }
  LogInfo(absl::StrCat("received signal ", received,
                       ", finishing in-flight calls"));
  http->reset();
  (*server)->Shutdown(shutdown_grace);
  server->reset();
  LogInfo("stopped");
  return 0;
}

}  // namespace
}  // namespace scepca

int main(int argc, char** argv) { return scepca::Run(argc, argv); }
