// scepca_loadgen: closed-loop load on the ChallengeAuthority API (or on the
// baselines of baseline_server.cc) over gRPC's callback API, so that one
// process keeps hundreds of calls in flight on a few threads.
//
// `--concurrency` calls are always in flight, spread over `--channels`
// HTTP/2 connections; each completion starts the next call at once. After
// `--warmup` seconds, completions are counted for `--duration` seconds (or,
// with `--count`, until that many calls completed or the challenges ran
// out). Prints one JSON line: throughput, latency percentiles, errors.
//
//   --rpc=empty|get               the baselines (Baseline/Empty, Baseline/Get)
//   --rpc=issue_onetime|issue_signed
//   --rpc=validate_onetime        challenges from --challenges=FILE (one per
//                                 line) or --preissue=N (IssueChallenge calls
//                                 made before the measurement)
//   --rpc=validate_signed         tokens minted with --hmac-keys=FILE (the
//                                 codec and key the server uses; signed
//                                 issue touches no store; --pool=N of them)
//                                 or --preissue=N
//   --rpc=mix                     each slot: issue one-time, validate it,
//                                 issue signed, validate it
//   --csr                         Validate with a CSR (EC P-256) carrying the
//                                 challenge, besides the challenge field
//   --tx                          Validate with a fresh transaction id
//   --target=inprocess            an in-process authority on the in-memory
//                                 store (the smoke test)
//   --watch=NAME:PID,...          also report the CPU time each of these
//                                 processes used per call in the window
//
// Exit code: 0 if calls completed without errors or refusals, 1 otherwise,
// 2 for bad flags.
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "scep/challenge/v1/challenge_authority.grpc.pb.h"
#include "service/core/challenge_authority.h"
#include "service/core/clock.h"
#include "service/core/in_memory_challenge_store.h"
#include "service/core/key_ring.h"
#include "service/core/random.h"
#include "service/core/signed_token.h"
#include "service/grpc/authority_server.h"
#include "tests/bench/baseline.grpc.pb.h"
#include "tests/testing/csr_builder.h"

namespace scepca::bench {
namespace {

namespace pb = ::scep::challenge::v1;
namespace bpb = ::scepca::bench::v1;

enum class Mode {
  kEmpty,
  kGet,
  kIssueOneTime,
  kIssueSigned,
  kValidateOneTime,
  kValidateSigned,
  kMix
};

enum class Op { kEmpty, kGet, kIssueOneTime, kIssueSigned, kValidate };

struct Options {
  std::string target = "127.0.0.1:50051";
  std::string rpc = "empty";
  Mode mode = Mode::kEmpty;
  int concurrency = 64;
  int channels = 4;
  double duration_s = 5;
  double warmup_s = 1;
  int64_t count = 0;  // > 0: stop after this many calls instead.
  bool csr = false;
  bool tx = false;
  std::string challenges_file;
  std::string hmac_keys;
  int64_t preissue = 0;
  // Signed tokens minted with --hmac-keys (0: enough for 60,000 calls/s).
  int64_t pool = 0;
  std::string get_key = "bench:value";
  std::string label;
  double deadline_s = 10;
  // name:pid pairs whose CPU time is measured over the window.
  std::vector<std::pair<std::string, int>> watch;
};

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Returns the CPU time (user + system) of process `pid` (0: this one) in
// seconds, or -1 if it cannot be read.
double ProcessCpuSeconds(int pid) {
  std::ifstream in(pid == 0 ? std::string("/proc/self/stat")
                            : absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  // Fields after the command (which may hold spaces) start after ')'.
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return -1;
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(text).substr(close + 2), ' ');
  // utime and stime are fields 14 and 15 of the line: 12 and 13 here.
  int64_t utime = 0, stime = 0;
  if (fields.size() < 14 || !absl::SimpleAtoi(fields[11], &utime) ||
      !absl::SimpleAtoi(fields[12], &stime)) {
    return -1;
  }
  return static_cast<double>(utime + stime) /
         static_cast<double>(sysconf(_SC_CLK_TCK));
}

// A challenge to validate, with its CSR if the run uses CSRs.
struct Item {
  std::string challenge;
  std::string csr;
};

// What one slot saw (only its own completions: no locking needed).
struct SlotStats {
  std::vector<int64_t> latencies_ns;
  int64_t ok = 0;
  int64_t errors = 0;
  int64_t refused = 0;
  std::string first_problem;
  std::vector<std::string> issued;  // Collected when preissuing.
};

struct Channel {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::ChallengeAuthority::Stub> authority;
  std::unique_ptr<bpb::Baseline::Stub> baseline;
};

class LoadRun;

// One closed loop: at most one call in flight.
struct Slot {
  LoadRun* run = nullptr;
  int index = 0;
  Channel* channel = nullptr;
  std::unique_ptr<grpc::ClientContext> context;
  Op op = Op::kEmpty;
  int64_t start_ns = 0;
  int64_t sequence = 0;
  int mix_step = 0;
  std::string mix_challenge;

  bpb::EmptyMessage empty_request, empty_response;
  bpb::GetRequest get_request;
  bpb::GetResponse get_response;
  pb::IssueChallengeRequest issue_request;
  pb::IssueChallengeResponse issue_response;
  pb::ValidateRequest validate_request;
  pb::ValidateResponse validate_response;

  SlotStats stats;
};

struct Result {
  int64_t calls = 0;  // Completed in the measured window.
  double seconds = 0;
  int64_t errors = 0;
  int64_t refused = 0;
  bool exhausted = false;
  std::string first_problem;
  std::vector<int64_t> latencies_ns;
  std::vector<std::string> issued;
  // CPU seconds over the window of "client" and of each watched process.
  std::vector<std::pair<std::string, double>> cpu_seconds;
};

class LoadRun {
 public:
  // `mode` decides the calls; `items` are the challenges to validate (may be
  // empty for other modes); `collect_issued` keeps issued challenges.
  LoadRun(const Options& options, Mode mode, std::vector<Channel>* channels,
          const std::vector<Item>* items, int64_t count, bool collect_issued)
      : options_(options),
        mode_(mode),
        channels_(channels),
        items_(items),
        count_(count),
        collect_issued_(collect_issued) {}

  Result Run() {
    std::vector<std::unique_ptr<Slot>> slots;
    for (int i = 0; i < options_.concurrency; ++i) {
      auto slot = std::make_unique<Slot>();
      slot->run = this;
      slot->index = i;
      slot->channel = &(*channels_)[i % channels_->size()];
      slot->get_request.set_key(options_.get_key);
      slots.push_back(std::move(slot));
    }
    const int64_t start = NowNs();
    if (count_ > 0) {
      measure_start_ns_ = start;
      end_ns_ = INT64_MAX;
    } else {
      measure_start_ns_ = start + static_cast<int64_t>(options_.warmup_s * 1e9);
      end_ns_ =
          measure_start_ns_ + static_cast<int64_t>(options_.duration_s * 1e9);
    }
    active_ = static_cast<int>(slots.size());
    // Samples CPU times at the start and the end of the window.
    std::vector<std::pair<std::string, int>> watched = {{"client", 0}};
    watched.insert(watched.end(), options_.watch.begin(), options_.watch.end());
    std::vector<double> cpu_start(watched.size(), -1);
    std::vector<double> cpu_end(watched.size(), -1);
    std::thread sampler;
    if (count_ == 0) {
      sampler = std::thread([&] {
        auto sample = [&](std::vector<double>* out) {
          for (size_t i = 0; i < watched.size(); ++i) {
            (*out)[i] = ProcessCpuSeconds(watched[i].second);
          }
        };
        std::this_thread::sleep_for(
            std::chrono::nanoseconds(measure_start_ns_ - NowNs()));
        sample(&cpu_start);
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, std::chrono::nanoseconds(end_ns_ - NowNs()),
                     [this] { return active_ == 0; });
        lock.unlock();
        sample(&cpu_end);
      });
    }
    for (auto& slot : slots) Start(slot.get());
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return active_ == 0; });
    }
    const int64_t finish = NowNs();
    if (sampler.joinable()) sampler.join();
    Result result;
    if (count_ > 0 || exhausted_) {
      // Ended by the count or by running out: the window is what was run.
      result.seconds =
          static_cast<double>(std::min(finish, end_ns_) - measure_start_ns_) /
          1e9;
    } else {
      result.seconds = options_.duration_s;
    }
    result.exhausted = exhausted_;
    for (size_t i = 0; i < watched.size(); ++i) {
      if (cpu_start[i] >= 0 && cpu_end[i] >= 0) {
        result.cpu_seconds.emplace_back(watched[i].first,
                                        cpu_end[i] - cpu_start[i]);
      }
    }
    for (auto& slot : slots) {
      SlotStats& s = slot->stats;
      result.calls += s.ok + s.refused;
      result.errors += s.errors;
      result.refused += s.refused;
      if (result.first_problem.empty()) result.first_problem = s.first_problem;
      result.latencies_ns.insert(result.latencies_ns.end(),
                                 s.latencies_ns.begin(), s.latencies_ns.end());
      for (std::string& c : s.issued) result.issued.push_back(std::move(c));
    }
    return result;
  }

 private:
  // Picks and sends the slot's next call, or retires the slot.
  void Start(Slot* slot) {
    if (NowNs() >= end_ns_ || stop_.load(std::memory_order_relaxed)) {
      Retire();
      return;
    }
    if (count_ > 0 && started_.fetch_add(1) >= count_) {
      Retire();
      return;
    }
    if (!Prepare(slot)) {
      exhausted_ = true;
      stop_ = true;
      Retire();
      return;
    }
    slot->context = std::make_unique<grpc::ClientContext>();
    slot->context->set_deadline(std::chrono::system_clock::now() +
                                std::chrono::milliseconds(static_cast<int64_t>(
                                    options_.deadline_s * 1000)));
    slot->start_ns = NowNs();
    auto done = [slot](grpc::Status status) {
      slot->run->Done(slot, std::move(status));
    };
    Channel& ch = *slot->channel;
    switch (slot->op) {
      case Op::kEmpty:
        ch.baseline->async()->Empty(slot->context.get(), &slot->empty_request,
                                    &slot->empty_response, std::move(done));
        break;
      case Op::kGet:
        ch.baseline->async()->Get(slot->context.get(), &slot->get_request,
                                  &slot->get_response, std::move(done));
        break;
      case Op::kIssueOneTime:
      case Op::kIssueSigned:
        ch.authority->async()->IssueChallenge(
            slot->context.get(), &slot->issue_request, &slot->issue_response,
            std::move(done));
        break;
      case Op::kValidate:
        ch.authority->async()->Validate(
            slot->context.get(), &slot->validate_request,
            &slot->validate_response, std::move(done));
        break;
    }
  }

  void SetIssue(Slot* slot, bool is_signed) {
    slot->op = is_signed ? Op::kIssueSigned : Op::kIssueOneTime;
    ++slot->sequence;
    // Distinct devices and users, as in a fleet: the indexes stay small.
    slot->issue_request.set_device_id(
        absl::StrFormat("bench-device-%03d-%09d", slot->index, slot->sequence));
    slot->issue_request.set_user_id(
        absl::StrFormat("bench-user-%03d-%09d", slot->index, slot->sequence));
    slot->issue_request.set_kind(is_signed ? pb::CHALLENGE_KIND_SIGNED
                                           : pb::CHALLENGE_KIND_ONE_TIME);
  }

  void SetValidate(Slot* slot, const std::string& challenge,
                   const std::string& csr) {
    slot->op = Op::kValidate;
    ++slot->sequence;
    slot->validate_request.set_challenge(challenge);
    slot->validate_request.set_csr(csr);
    if (options_.tx) {
      slot->validate_request.set_transaction_id(
          absl::StrFormat("bench-tx-%03d-%09d", slot->index, slot->sequence));
    }
  }

  // Fills the slot's next request; false if there is no work left.
  bool Prepare(Slot* slot) {
    switch (mode_) {
      case Mode::kEmpty:
        slot->op = Op::kEmpty;
        return true;
      case Mode::kGet:
        slot->op = Op::kGet;
        return true;
      case Mode::kIssueOneTime:
      case Mode::kIssueSigned:
        SetIssue(slot, mode_ == Mode::kIssueSigned);
        return true;
      case Mode::kValidateOneTime:
      case Mode::kValidateSigned: {
        const size_t next = next_item_.fetch_add(1);
        if (next >= items_->size()) return false;
        const Item& item = (*items_)[next];
        SetValidate(slot, item.challenge, item.csr);
        return true;
      }
      case Mode::kMix:
        switch (slot->mix_step) {
          case 0:
          case 2:
            SetIssue(slot, slot->mix_step == 2);
            return true;
          default:
            SetValidate(slot, slot->mix_challenge, "");
            return true;
        }
    }
    return false;
  }

  void Done(Slot* slot, grpc::Status status) {
    const int64_t end = NowNs();
    SlotStats& s = slot->stats;
    const bool counted = end >= measure_start_ns_ && end <= end_ns_;
    std::string problem;
    bool refused = false;
    if (!status.ok()) {
      problem = absl::StrCat("status ", status.error_code(), ": ",
                             status.error_message());
    } else if (slot->op == Op::kValidate && !slot->validate_response.valid()) {
      refused = true;
      problem =
          absl::StrCat("refused: reason ", slot->validate_response.reason(),
                       ": ", slot->validate_response.message());
    }
    if (slot->op == Op::kIssueOneTime || slot->op == Op::kIssueSigned) {
      if (status.ok()) {
        if (collect_issued_) {
          s.issued.push_back(slot->issue_response.challenge());
        }
        slot->mix_challenge = slot->issue_response.challenge();
      }
    }
    if (mode_ == Mode::kMix) {
      // After a failed issue, issue again rather than validate nothing.
      slot->mix_step = status.ok() ? (slot->mix_step + 1) % 4
                                   : slot->mix_step - slot->mix_step % 2;
    }
    if (counted) {
      if (!problem.empty() && s.first_problem.empty())
        s.first_problem = problem;
      if (!status.ok()) {
        ++s.errors;
      } else {
        s.latencies_ns.push_back(end - slot->start_ns);
        if (refused) {
          ++s.refused;
        } else {
          ++s.ok;
        }
      }
    }
    Start(slot);
  }

  void Retire() {
    std::lock_guard<std::mutex> lock(mu_);
    if (--active_ == 0) cv_.notify_all();
  }

  const Options& options_;
  const Mode mode_;
  std::vector<Channel>* const channels_;
  const std::vector<Item>* const items_;
  const int64_t count_;
  const bool collect_issued_;
  int64_t measure_start_ns_ = 0;
  int64_t end_ns_ = 0;
  std::atomic<size_t> next_item_{0};
  std::atomic<int64_t> started_{0};
  std::atomic<bool> stop_{false};
  std::atomic<bool> exhausted_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  int active_ = 0;
};

double Percentile(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t i = std::min(
      sorted.size() - 1,
      static_cast<size_t>(
          std::ceil(p / 100 * static_cast<double>(sorted.size())) - 1));
  return static_cast<double>(sorted[i]) / 1e3;
}

std::string JsonEscape(absl::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

bool ParseBool(absl::string_view value, bool* out) {
  if (value == "true" || value == "1" || value.empty()) {
    *out = true;
  } else if (value == "false" || value == "0") {
    *out = false;
  } else {
    return false;
  }
  return true;
}

bool ParseFlags(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg.substr(0, 2) != "--") {
      std::cerr << "loadgen: unexpected argument " << arg << "\n";
      return false;
    }
    arg.remove_prefix(2);
    const size_t eq = arg.find('=');
    const absl::string_view name = arg.substr(0, eq);
    const std::string value(eq == absl::string_view::npos ? absl::string_view()
                                                          : arg.substr(eq + 1));
    bool ok = true;
    if (name == "target") {
      o->target = value;
    } else if (name == "rpc") {
      o->rpc = value;
    } else if (name == "concurrency") {
      ok = absl::SimpleAtoi(value, &o->concurrency) && o->concurrency > 0;
    } else if (name == "channels") {
      ok = absl::SimpleAtoi(value, &o->channels) && o->channels > 0;
    } else if (name == "duration") {
      ok = absl::SimpleAtod(value, &o->duration_s) && o->duration_s > 0;
    } else if (name == "warmup") {
      ok = absl::SimpleAtod(value, &o->warmup_s) && o->warmup_s >= 0;
    } else if (name == "count") {
      ok = absl::SimpleAtoi(value, &o->count) && o->count >= 0;
    } else if (name == "csr") {
      ok = ParseBool(value, &o->csr);
    } else if (name == "tx") {
      ok = ParseBool(value, &o->tx);
    } else if (name == "challenges") {
      o->challenges_file = value;
    } else if (name == "hmac-keys") {
      o->hmac_keys = value;
    } else if (name == "preissue") {
      ok = absl::SimpleAtoi(value, &o->preissue) && o->preissue >= 0;
    } else if (name == "pool") {
      ok = absl::SimpleAtoi(value, &o->pool) && o->pool >= 0;
    } else if (name == "get-key") {
      o->get_key = value;
    } else if (name == "label") {
      o->label = value;
    } else if (name == "watch") {
      for (absl::string_view part : absl::StrSplit(value, ',')) {
        const size_t colon = part.find(':');
        int pid = 0;
        if (colon == absl::string_view::npos ||
            !absl::SimpleAtoi(part.substr(colon + 1), &pid)) {
          ok = false;
          break;
        }
        o->watch.emplace_back(std::string(part.substr(0, colon)), pid);
      }
    } else if (name == "deadline") {
      ok = absl::SimpleAtod(value, &o->deadline_s) && o->deadline_s > 0;
    } else {
      ok = false;
    }
    if (!ok) {
      std::cerr << "loadgen: bad flag --" << arg << "\n";
      return false;
    }
  }
  static const std::pair<const char*, Mode> kModes[] = {
      {"empty", Mode::kEmpty},
      {"get", Mode::kGet},
      {"issue_onetime", Mode::kIssueOneTime},
      {"issue_signed", Mode::kIssueSigned},
      {"validate_onetime", Mode::kValidateOneTime},
      {"validate_signed", Mode::kValidateSigned},
      {"mix", Mode::kMix}};
  for (const auto& [name, mode] : kModes) {
    if (o->rpc == name) {
      o->mode = mode;
      return true;
    }
  }
  std::cerr << "loadgen: unknown --rpc=" << o->rpc << "\n";
  return false;
}

std::vector<Channel> MakeChannels(const std::string& target, int count) {
  std::vector<Channel> channels;
  for (int i = 0; i < count; ++i) {
    grpc::ChannelArguments args;
    // A distinct argument per channel gives each its own connection.
    args.SetInt("scepca.bench.channel", i);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    Channel ch;
    ch.channel = grpc::CreateCustomChannel(
        target, grpc::InsecureChannelCredentials(), args);
    ch.channel->WaitForConnected(std::chrono::system_clock::now() +
                                 std::chrono::seconds(5));
    ch.authority = pb::ChallengeAuthority::NewStub(ch.channel);
    ch.baseline = bpb::Baseline::NewStub(ch.channel);
    channels.push_back(std::move(ch));
  }
  return channels;
}

// Mints `n` signed tokens with the primary key of `path`, as IssueChallenge
// does for kind SIGNED (same codec; one hour of validity).
absl::StatusOr<std::vector<std::string>> MintTokens(const std::string& path,
                                                    int64_t n) {
  absl::StatusOr<KeyRing> ring = KeyRing::LoadFile(path);
  if (!ring.ok()) return ring.status();
  const KeyRing::Key* key = ring->primary();
  if (key == nullptr) return absl::FailedPreconditionError("no primary key");
  const absl::Time now = absl::Now();
  std::vector<std::string> tokens;
  tokens.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    SignedToken token;
    token.key_id = key->id;
    absl::StatusOr<std::string> id = SecureRandomBytes(kTokenIdBytes);
    if (!id.ok()) return id.status();
    token.token_id = *std::move(id);
    token.issued_at = absl::FromUnixSeconds(absl::ToUnixSeconds(now));
    token.expires_at =
        absl::FromUnixSeconds(absl::ToUnixSeconds(now + absl::Hours(1)));
    token.device_id = absl::StrFormat("bench-device-%09d", i);
    token.user_id = absl::StrFormat("bench-user-%09d", i);
    absl::StatusOr<std::string> text = EncodeSignedToken(token, *key);
    if (!text.ok()) return text.status();
    tokens.push_back(*std::move(text));
  }
  return tokens;
}

// Builds one EC P-256 CSR per challenge, each carrying its challenge.
absl::Status AddCsrs(std::vector<Item>* items) {
  testing::CsrSpec spec;
  spec.key = {testing::KeyType::kEcP256, 0};
  spec.common_names = {"bench-device"};
  spec.challenge_shape = testing::ChallengeShape::kSingle;
  for (Item& item : *items) {
    spec.challenge = item.challenge;
    absl::StatusOr<std::string> der = testing::BuildCsrDer(spec);
    if (!der.ok()) return der.status();
    item.csr = *std::move(der);
  }
  return absl::OkStatus();
}

// An authority on the in-memory store with a fresh key ring, on a free port.
struct InProcessServer {
  InMemoryChallengeStore store;
  std::unique_ptr<KeyRingHolder> keys;
  std::unique_ptr<ChallengeAuthority> authority;
  std::unique_ptr<AuthorityServer> server;
};

absl::StatusOr<std::unique_ptr<InProcessServer>> StartInProcess() {
  auto s = std::make_unique<InProcessServer>();
  absl::StatusOr<KeyRing> ring = KeyRing::ParseForEditing("");
  if (!ring.ok()) return ring.status();
  if (absl::StatusOr<uint32_t> id = ring->Generate(); !id.ok()) {
    return id.status();
  }
  s->keys = std::make_unique<KeyRingHolder>(*std::move(ring));
  absl::StatusOr<std::unique_ptr<ChallengeAuthority>> authority =
      ChallengeAuthority::Create(AuthorityOptions(), &s->store,
                                 RealClock::Get(), s->keys.get());
  if (!authority.ok()) return authority.status();
  s->authority = *std::move(authority);
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  absl::StatusOr<std::unique_ptr<AuthorityServer>> server =
      AuthorityServer::Start(options, s->authority.get());
  if (!server.ok()) return server.status();
  s->server = *std::move(server);
  return s;
}

int Run(int argc, char** argv) {
  Options o;
  if (!ParseFlags(argc, argv, &o)) return 2;
  std::unique_ptr<InProcessServer> in_process;
  if (o.target == "inprocess") {
    absl::StatusOr<std::unique_ptr<InProcessServer>> started = StartInProcess();
    if (!started.ok()) {
      std::cerr << "loadgen: " << started.status() << "\n";
      return 1;
    }
    in_process = *std::move(started);
    o.target = absl::StrCat("127.0.0.1:", in_process->server->port());
  }
  std::vector<Channel> channels = MakeChannels(o.target, o.channels);

  // The challenges to validate.
  std::vector<Item> items;
  const bool validating =
      o.mode == Mode::kValidateOneTime || o.mode == Mode::kValidateSigned;
  double preissue_s = 0;
  if (validating) {
    std::vector<std::string> challenges;
    if (!o.challenges_file.empty()) {
      std::ifstream in(o.challenges_file);
      std::string line;
      while (std::getline(in, line)) {
        if (!line.empty()) challenges.push_back(line);
      }
    } else if (o.preissue > 0) {
      const int64_t t0 = NowNs();
      LoadRun issue(o,
                    o.mode == Mode::kValidateSigned ? Mode::kIssueSigned
                                                    : Mode::kIssueOneTime,
                    &channels, nullptr, o.preissue, /*collect_issued=*/true);
      Result issued = issue.Run();
      if (issued.errors > 0) {
        std::cerr << "loadgen: preissue: " << issued.first_problem << "\n";
        return 1;
      }
      challenges = std::move(issued.issued);
      preissue_s = static_cast<double>(NowNs() - t0) / 1e9;
    } else if (o.mode == Mode::kValidateSigned && !o.hmac_keys.empty()) {
      int64_t n = o.pool > 0 ? o.pool : o.count;
      if (n == 0) n = static_cast<int64_t>((o.warmup_s + o.duration_s) * 60e3);
      absl::StatusOr<std::vector<std::string>> minted =
          MintTokens(o.hmac_keys, n);
      if (!minted.ok()) {
        std::cerr << "loadgen: --hmac-keys: " << minted.status() << "\n";
        return 1;
      }
      challenges = *std::move(minted);
    } else {
      std::cerr << "loadgen: validate needs --challenges, --preissue or "
                   "(signed) --hmac-keys\n";
      return 2;
    }
    items.reserve(challenges.size());
    for (std::string& c : challenges) items.push_back({std::move(c), ""});
    if (o.csr) {
      if (absl::Status st = AddCsrs(&items); !st.ok()) {
        std::cerr << "loadgen: CSRs: " << st << "\n";
        return 1;
      }
    }
    if (items.empty()) {
      std::cerr << "loadgen: no challenges to validate\n";
      return 1;
    }
  }

  LoadRun run(o, o.mode, &channels, &items, o.count, /*collect_issued=*/false);
  Result r = run.Run();
  std::sort(r.latencies_ns.begin(), r.latencies_ns.end());
  const double throughput =
      r.seconds > 0 ? static_cast<double>(r.calls) / r.seconds : 0;
  // CPU microseconds per completed call, per process: a cost that the
  // other load on a shared machine disturbs far less than throughput.
  std::string cpu;
  for (const auto& [name, seconds] : r.cpu_seconds) {
    absl::StrAppendFormat(
        &cpu, "%s\"%s\":%.1f", cpu.empty() ? "" : ",", JsonEscape(name),
        r.calls > 0 ? seconds * 1e6 / static_cast<double>(r.calls) : 0.0);
  }
  std::cout << absl::StrFormat(
                   "{\"label\":\"%s\",\"rpc\":\"%s\",\"csr\":%s,\"tx\":%s,"
                   "\"concurrency\":%d,\"channels\":%d,\"seconds\":%.3f,"
                   "\"calls\":%d,\"throughput\":%.1f,\"p50_us\":%.1f,"
                   "\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
                   "\"max_us\":%.1f,\"errors\":%d,\"refused\":%d,"
                   "\"exhausted\":%s,\"challenges\":%d,\"preissue_s\":%.2f,"
                   "\"cpu_us_per_call\":{%s},\"problem\":\"%s\"}",
                   JsonEscape(o.label), o.rpc, o.csr ? "true" : "false",
                   o.tx ? "true" : "false", o.concurrency, o.channels,
                   r.seconds, r.calls, throughput,
                   Percentile(r.latencies_ns, 50),
                   Percentile(r.latencies_ns, 90),
                   Percentile(r.latencies_ns, 99),
                   Percentile(r.latencies_ns, 99.9),
                   Percentile(r.latencies_ns, 100), r.errors, r.refused,
                   r.exhausted ? "true" : "false", items.size(), preissue_s,
                   cpu, JsonEscape(r.first_problem))
            << std::endl;
  channels.clear();
  if (in_process != nullptr) in_process->server->Shutdown(absl::Seconds(1));
  return r.calls > 0 && r.errors == 0 && r.refused == 0 ? 0 : 1;
}

}  // namespace
}  // namespace scepca::bench

int main(int argc, char** argv) { return scepca::bench::Run(argc, argv); }
