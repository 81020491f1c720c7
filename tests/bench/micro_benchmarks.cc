// scepca_micro_bench: Google Benchmark micro-benchmarks of the hot pieces of
// IssueChallenge and Validate, each without gRPC:
//   - challenge generation and hashing (one-time challenges, ids);
//   - signed-token sign and verify;
//   - CSR parse + signature check (ParseCsr) beside a bare OpenSSL
//     d2i_X509_REQ + X509_REQ_verify of the same CSR;
//   - the in-memory store and the Redis store operations, and whole
//     ChallengeAuthority::Validate/Issue calls on each.
// The Redis benchmarks use $SCEPCA_BENCH_REDIS (a redis:// or unix:// URL),
// or start their own redis-server (tests/testing/redis_server.h); they are
// skipped when neither works. Each Redis operation is one blocking round trip
// from one thread: these are latencies, not throughputs.
#include <openssl/x509.h>

#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "service/core/challenge_authority.h"
#include "service/core/clock.h"
#include "service/core/csr.h"
#include "service/core/in_memory_challenge_store.h"
#include "service/core/key_ring.h"
#include "service/core/one_time_challenge.h"
#include "service/core/random.h"
#include "service/core/signed_token.h"
#include "service/redis/redis_challenge_store.h"
#include "service/redis/redis_connection.h"
#include "service/redis/redis_url.h"
#include "tests/testing/csr_builder.h"
#include "tests/testing/redis_server.h"

namespace scepca::bench {
namespace {

// ---------------------------------------------------------------------------
// Challenges and tokens.

void BM_GenerateOneTimeChallenge(benchmark::State& state) {
  for (auto _ : state) {
    absl::StatusOr<std::string> c = GenerateOneTimeChallenge();
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_GenerateOneTimeChallenge);

void BM_ChallengeIdOf(benchmark::State& state) {
  const std::string challenge = *GenerateOneTimeChallenge();
  for (auto _ : state) benchmark::DoNotOptimize(ChallengeIdOf(challenge));
}
BENCHMARK(BM_ChallengeIdOf);

void BM_IsOneTimeChallengeFormat(benchmark::State& state) {
  const std::string challenge = *GenerateOneTimeChallenge();
  for (auto _ : state) {
    benchmark::DoNotOptimize(IsOneTimeChallengeFormat(challenge));
  }
}
BENCHMARK(BM_IsOneTimeChallengeFormat);

const KeyRing& BenchRing() {
  static const KeyRing* const ring = [] {
    auto* r = new KeyRing(*KeyRing::ParseForEditing(""));
    if (!r->Generate().ok()) std::abort();
    return r;
  }();
  return *ring;
}

SignedToken SampleToken() {
  SignedToken token;
  token.key_id = BenchRing().primary()->id;
  token.token_id = *SecureRandomBytes(kTokenIdBytes);
  const absl::Time now = absl::Now();
  token.issued_at = absl::FromUnixSeconds(absl::ToUnixSeconds(now));
  token.expires_at =
      absl::FromUnixSeconds(absl::ToUnixSeconds(now + absl::Hours(1)));
  token.device_id = "0f8fad5b-d9cb-469f-a165-70867728950e";  // A UUID.
  token.user_id = "alice@example.com";
  return token;
}

void BM_SignToken(benchmark::State& state) {
  const SignedToken token = SampleToken();
  for (auto _ : state) {
    benchmark::DoNotOptimize(EncodeSignedToken(token, *BenchRing().primary()));
  }
}
BENCHMARK(BM_SignToken);

void BM_VerifyToken(benchmark::State& state) {
  const std::string text =
      *EncodeSignedToken(SampleToken(), *BenchRing().primary());
  for (auto _ : state) {
    benchmark::DoNotOptimize(DecodeSignedToken(text, BenchRing()));
  }
}
BENCHMARK(BM_VerifyToken);

// ---------------------------------------------------------------------------
// CSRs: arg 0 = EC P-256, 1 = RSA 2048.

const std::string& SampleCsr(int64_t kind) {
  static std::string* const csrs = [] {
    auto* out = new std::string[2];
    for (int k = 0; k < 2; ++k) {
      testing::CsrSpec spec;
      spec.key = k == 0 ? testing::KeySpec{testing::KeyType::kEcP256, 0}
                        : testing::KeySpec{testing::KeyType::kRsa, 2048};
      spec.common_names = {"0f8fad5b-d9cb-469f-a165-70867728950e"};
      spec.challenge_shape = testing::ChallengeShape::kSingle;
      spec.challenge = *GenerateOneTimeChallenge();
      out[k] = *testing::BuildCsrDer(spec);
    }
    return out;
  }();
  return csrs[kind];
}

void CsrLabel(benchmark::State& state) {
  state.SetLabel(state.range(0) == 0 ? "EC P-256" : "RSA 2048");
}

void BM_ParseCsr(benchmark::State& state) {
  const std::string& der = SampleCsr(state.range(0));
  for (auto _ : state) {
    absl::StatusOr<ParsedCsr> parsed = ParseCsr(der);
    if (!parsed.ok()) state.SkipWithError("ParseCsr failed");
    benchmark::DoNotOptimize(parsed);
  }
  CsrLabel(state);
}
BENCHMARK(BM_ParseCsr)->Arg(0)->Arg(1);

// The least any CSR check must do: decode, then verify the signature.
void BM_OpenSslCsrVerify(benchmark::State& state) {
  const std::string& der = SampleCsr(state.range(0));
  for (auto _ : state) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
    X509_REQ* req = d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size()));
    const int ok =
        req != nullptr && X509_REQ_verify(req, X509_REQ_get0_pubkey(req)) == 1;
    X509_REQ_free(req);
    if (!ok) state.SkipWithError("X509_REQ_verify failed");
  }
  CsrLabel(state);
}
BENCHMARK(BM_OpenSslCsrVerify)->Arg(0)->Arg(1);

// ---------------------------------------------------------------------------
// Stores and the authority.

ChallengeRecord SampleRecord(absl::Time now) {
  ChallengeRecord r;
  r.id = ChallengeIdOf(*GenerateOneTimeChallenge());
  r.device_id = "0f8fad5b-d9cb-469f-a165-70867728950e";
  r.user_id = "alice@example.com";
  r.kind = ChallengeKind::kOneTime;
  r.created_at = now;
  r.expires_at = now + absl::Hours(1);
  r.forget_at = r.expires_at + absl::Hours(1);
  return r;
}

// Returns the Redis store under test, or null (the benchmark then skips).
ChallengeStore* RedisStore() {
  static ChallengeStore* const store = []() -> ChallengeStore* {
    std::string url;
    if (const char* env = std::getenv("SCEPCA_BENCH_REDIS")) url = env;
    if (url.empty()) {
      static std::unique_ptr<testing::RedisServer> server;
      absl::StatusOr<std::unique_ptr<testing::RedisServer>> started =
          testing::RedisServer::Start();
      if (!started.ok()) {
        std::cerr << "no Redis: " << started.status() << "\n";
        return nullptr;
      }
      server = *std::move(started);
      url = server->tcp_url();
    }
    RedisStoreOptions options;
    options.url = url;
    options.prefix = "scepbench:";
    absl::StatusOr<std::unique_ptr<RedisChallengeStore>> s =
        RedisChallengeStore::Create(options);
    if (!s.ok()) return nullptr;
    return s->release();
  }();
  return store;
}

ChallengeStore* StoreFor(benchmark::State& state) {
  if (state.range(0) == 0) {
    static InMemoryChallengeStore* const memory = new InMemoryChallengeStore();
    state.SetLabel("memory");
    return memory;
  }
  state.SetLabel("redis");
  return RedisStore();
}

void BM_StoreInsert(benchmark::State& state) {
  ChallengeStore* store = StoreFor(state);
  if (store == nullptr) return state.SkipWithError("no Redis");
  const absl::Time now = absl::Now();
  ChallengeRecord r = SampleRecord(now);
  for (auto _ : state) {
    r.id = ChallengeIdOf(*GenerateOneTimeChallenge());
    if (!store->Insert(r, now).ok()) state.SkipWithError("Insert failed");
  }
}
BENCHMARK(BM_StoreInsert)->Arg(0)->Arg(1);

// Inserts `n` pending records (outside the timed loop) and returns their ids.
std::vector<std::string> Prefill(ChallengeStore* store, int64_t n,
                                 absl::Time now) {
  std::vector<std::string> ids;
  ChallengeRecord r = SampleRecord(now);
  for (int64_t i = 0; i < n; ++i) {
    r.id = ChallengeIdOf(*GenerateOneTimeChallenge());
    if (store->Insert(r, now).ok()) ids.push_back(r.id);
  }
  return ids;
}

void BM_StoreGet(benchmark::State& state) {
  ChallengeStore* store = StoreFor(state);
  if (store == nullptr) return state.SkipWithError("no Redis");
  const absl::Time now = absl::Now();
  const std::vector<std::string> ids = Prefill(store, 1, now);
  for (auto _ : state) {
    benchmark::DoNotOptimize(store->Get(ids[0], now));
  }
}
BENCHMARK(BM_StoreGet)->Arg(0)->Arg(1);

void BM_StoreConsume(benchmark::State& state) {
  ChallengeStore* store = StoreFor(state);
  if (store == nullptr) return state.SkipWithError("no Redis");
  const absl::Time now = absl::Now();
  const std::vector<std::string> ids =
      Prefill(store, static_cast<int64_t>(state.max_iterations), now);
  UseInfo use;
  use.transaction_id = "tx";
  size_t i = 0;
  for (auto _ : state) {
    absl::StatusOr<ConsumeResult> r = store->Consume(ids[i++], use, now);
    if (!r.ok() || r->outcome != ConsumeResult::Outcome::kConsumed) {
      state.SkipWithError("Consume failed");
    }
  }
}
BENCHMARK(BM_StoreConsume)->Arg(0)->Arg(1);

void BM_StoreConsumeToken(benchmark::State& state) {
  ChallengeStore* store = StoreFor(state);
  if (store == nullptr) return state.SkipWithError("no Redis");
  const absl::Time now = absl::Now();
  ChallengeRecord token = SampleRecord(now);
  token.kind = ChallengeKind::kSigned;
  UseInfo use;
  for (auto _ : state) {
    token.id = SignedChallengeId(*SecureRandomBytes(kTokenIdBytes));
    benchmark::DoNotOptimize(store->ConsumeToken(token, false, use, now));
  }
}
BENCHMARK(BM_StoreConsumeToken)->Arg(0)->Arg(1);

void BM_StoreRevokedBefore(benchmark::State& state) {
  ChallengeStore* store = StoreFor(state);
  if (store == nullptr) return state.SkipWithError("no Redis");
  const absl::Time now = absl::Now();
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        store->RevokedBefore(SubjectType::kDevice, "device", now));
  }
}
BENCHMARK(BM_StoreRevokedBefore)->Arg(0)->Arg(1);

void BM_StoreIndexTransaction(benchmark::State& state) {
  ChallengeStore* store = StoreFor(state);
  if (store == nullptr) return state.SkipWithError("no Redis");
  const absl::Time now = absl::Now();
  const std::string id = ChallengeIdOf("x");
  int64_t n = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(store->IndexTransaction(
        absl::StrCat("tx-", ++n), id, now + absl::Hours(2), now));
  }
}
BENCHMARK(BM_StoreIndexTransaction)->Arg(0)->Arg(1);

// The floor of any Redis operation: one PING round trip on the store's
// connection class.
void BM_RedisPing(benchmark::State& state) {
  if (RedisStore() == nullptr) return state.SkipWithError("no Redis");
  for (auto _ : state) {
    if (!RedisStore()->Ping().ok()) state.SkipWithError("PING failed");
  }
}
BENCHMARK(BM_RedisPing);

struct AuthorityUnderTest {
  std::unique_ptr<KeyRingHolder> keys;
  std::unique_ptr<ChallengeAuthority> authority;
};

ChallengeAuthority* AuthorityFor(benchmark::State& state) {
  static AuthorityUnderTest* const cache = new AuthorityUnderTest[2];
  ChallengeStore* store = StoreFor(state);
  if (store == nullptr) return nullptr;
  AuthorityUnderTest& a = cache[state.range(0)];
  if (a.authority == nullptr) {
    a.keys = std::make_unique<KeyRingHolder>(BenchRing());
    a.authority = *ChallengeAuthority::Create(AuthorityOptions(), store,
                                              RealClock::Get(), a.keys.get());
  }
  return a.authority.get();
}

void BM_AuthorityIssueOneTime(benchmark::State& state) {
  ChallengeAuthority* authority = AuthorityFor(state);
  if (authority == nullptr) return state.SkipWithError("no Redis");
  IssueRequest request;
  request.device_id = "0f8fad5b-d9cb-469f-a165-70867728950e";
  request.user_id = "alice@example.com";
  for (auto _ : state) {
    if (!authority->Issue(request).ok()) state.SkipWithError("Issue failed");
  }
}
BENCHMARK(BM_AuthorityIssueOneTime)->Arg(0)->Arg(1);

void BM_AuthorityIssueSigned(benchmark::State& state) {
  ChallengeAuthority* authority = AuthorityFor(state);
  if (authority == nullptr) return state.SkipWithError("no Redis");
  IssueRequest request;
  request.device_id = "0f8fad5b-d9cb-469f-a165-70867728950e";
  request.user_id = "alice@example.com";
  request.kind = ChallengeKind::kSigned;
  for (auto _ : state) {
    if (!authority->Issue(request).ok()) state.SkipWithError("Issue failed");
  }
}
BENCHMARK(BM_AuthorityIssueSigned)->Arg(0)->Arg(1);

// range(1): 0 = challenge only, 1 = with an EC P-256 CSR (built outside the
// timed loop), 2 = challenge only, with a transaction id.
void BM_AuthorityValidateOneTime(benchmark::State& state) {
  ChallengeAuthority* authority = AuthorityFor(state);
  if (authority == nullptr) return state.SkipWithError("no Redis");
  const int64_t n = static_cast<int64_t>(state.max_iterations);
  std::vector<ValidateRequest> requests;
  requests.reserve(static_cast<size_t>(n));
  IssueRequest issue;
  issue.device_id = "0f8fad5b-d9cb-469f-a165-70867728950e";
  testing::CsrSpec spec;
  spec.challenge_shape = testing::ChallengeShape::kSingle;
  for (int64_t i = 0; i < n; ++i) {
    ValidateRequest v;
    v.challenge = authority->Issue(issue)->challenge;
    if (state.range(1) == 1) {
      spec.challenge = v.challenge;
      v.csr = *testing::BuildCsrDer(spec);
    }
    if (state.range(1) == 2) v.transaction_id = absl::StrCat("tx-", i);
    requests.push_back(std::move(v));
  }
  size_t i = 0;
  for (auto _ : state) {
    absl::StatusOr<Verdict> v = authority->Validate(requests[i++]);
    if (!v.ok() || !v->valid) state.SkipWithError("Validate failed");
  }
  state.SetLabel(absl::StrCat(
      state.range(0) == 0 ? "memory" : "redis",
      state.range(1) == 1 ? " +csr" : (state.range(1) == 2 ? " +tx" : "")));
}
BENCHMARK(BM_AuthorityValidateOneTime)
    ->ArgsProduct({{0, 1}, {0, 1, 2}})
    ->Iterations(3000);

void BM_AuthorityValidateSigned(benchmark::State& state) {
  ChallengeAuthority* authority = AuthorityFor(state);
  if (authority == nullptr) return state.SkipWithError("no Redis");
  const int64_t n = static_cast<int64_t>(state.max_iterations);
  std::vector<ValidateRequest> requests;
  IssueRequest issue;
  issue.device_id = "0f8fad5b-d9cb-469f-a165-70867728950e";
  issue.kind = ChallengeKind::kSigned;
  for (int64_t i = 0; i < n; ++i) {
    ValidateRequest v;
    v.challenge = authority->Issue(issue)->challenge;
    requests.push_back(std::move(v));
  }
  size_t i = 0;
  for (auto _ : state) {
    absl::StatusOr<Verdict> v = authority->Validate(requests[i++]);
    if (!v.ok() || !v->valid) state.SkipWithError("Validate failed");
  }
}
BENCHMARK(BM_AuthorityValidateSigned)->Arg(0)->Arg(1)->Iterations(3000);

}  // namespace
}  // namespace scepca::bench

BENCHMARK_MAIN();
