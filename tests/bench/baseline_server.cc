// scepca_baseline_server: the reference servers the benchmarks compare the
// authority with (tests/bench/README.md).
//
//   Empty: the cheapest unary call gRPC can serve.
//   Get:   the same plus one Redis GET.
//
// Every variant uses the authority's transport settings
// (ApplyServerSettings() of AuthorityServer):
//   --api async     the authority's threading: `--max-threads` serving
//                   threads take calls from completion queues and run each to
//                   its end, the GET blocking on a connection borrowed from a
//                   pool (as the authority's Redis store does). The matching
//                   baseline of the authority.
//   --api sync      gRPC's synchronous server with the same thread quota:
//                   what the authority used before (for the before/after).
//   --api callback  the callback API, each GET sent over one shared,
//                   pipelined Redis connection (no thread blocks): the
//                   fastest design for one process, the "physical limit".
#include <grpcpp/grpcpp.h>
#include <hiredis/hiredis.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "service/grpc/authority_server.h"
#include "tests/bench/baseline.grpc.pb.h"

namespace scepca::bench {
namespace {

namespace v1 = ::scepca::bench::v1;

struct Flags {
  std::string listen = "127.0.0.1:0";
  std::string api = "async";  // async | sync | callback
  std::string redis_host;     // Empty: Get answers UNAVAILABLE.
  int redis_port = 6379;
  std::string redis_socket;  // Unix socket; wins over host/port.
  int max_threads = ServerOptions().max_threads;
  int completion_queues = ServerOptions().completion_queues;
  int pipelines = 1;  // callback: pipelined Redis connections.
};

redisContext* ConnectRedis(const Flags& flags) {
  const timeval timeout = {1, 0};
  redisContext* c =
      flags.redis_socket.empty()
          ? redisConnectWithTimeout(flags.redis_host.c_str(), flags.redis_port,
                                    timeout)
          : redisConnectUnixWithTimeout(flags.redis_socket.c_str(), timeout);
  if (c == nullptr || c->err != 0) {
    std::cerr << "baseline: cannot connect to Redis: "
              << (c == nullptr ? "out of memory" : c->errstr) << "\n";
    if (c != nullptr) redisFree(c);
    return nullptr;
  }
  redisSetTimeout(c, timeout);
  return c;
}

// A blocking GET on `c`; false if the connection failed.
bool BlockingGet(redisContext* c, absl::string_view key, std::string* value) {
  const char* argv[] = {"GET", key.data()};
  const size_t lengths[] = {3, key.size()};
  redisReply* reply =
      static_cast<redisReply*>(redisCommandArgv(c, 2, argv, lengths));
  if (reply == nullptr) return false;
  if (reply->type == REDIS_REPLY_STRING) value->assign(reply->str, reply->len);
  freeReplyObject(reply);
  return true;
}

// A pool of blocking connections, one per concurrent caller (as the store's
// RedisConnectionPool, without its health checks and timeouts).
class BlockingPool {
 public:
  explicit BlockingPool(const Flags& flags) : flags_(flags) {}
  ~BlockingPool() {
    for (redisContext* c : idle_) redisFree(c);
  }
  redisContext* Borrow() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!idle_.empty()) {
        redisContext* c = idle_.back();
        idle_.pop_back();
        return c;
      }
    }
    return ConnectRedis(flags_);
  }
  void Return(redisContext* c, bool ok) {
    if (!ok) {
      redisFree(c);
      return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    idle_.push_back(c);
  }

 private:
  const Flags flags_;
  std::mutex mu_;
  std::vector<redisContext*> idle_;
};

class SyncBaseline final : public v1::Baseline::Service {
 public:
  explicit SyncBaseline(BlockingPool* pool) : pool_(pool) {}

  grpc::Status Empty(grpc::ServerContext* /*context*/,
                     const v1::EmptyMessage* /*request*/,
                     v1::EmptyMessage* /*response*/) override {
    return grpc::Status::OK;
  }

  grpc::Status Get(grpc::ServerContext* /*context*/,
                   const v1::GetRequest* request,
                   v1::GetResponse* response) override {
    if (pool_ == nullptr) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no Redis");
    }
    redisContext* c = pool_->Borrow();
    if (c == nullptr) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "cannot connect");
    }
    const bool ok = BlockingGet(c, request->key(), response->mutable_value());
    pool_->Return(c, ok);
    if (!ok) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "Redis");
    return grpc::Status::OK;
  }

 private:
  BlockingPool* const pool_;
};

// One Redis connection shared by every caller: commands queued while a batch
// is in flight go out together as the next batch (one write), and their
// replies come back together (one read).
class PipelinedConnection {
 public:
  using Callback = std::function<void(bool ok, std::string value)>;

  static std::unique_ptr<PipelinedConnection> Create(const Flags& flags) {
    redisContext* c = ConnectRedis(flags);
    if (c == nullptr) return nullptr;
    return std::unique_ptr<PipelinedConnection>(new PipelinedConnection(c));
  }
  ~PipelinedConnection() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
    redisFree(context_);
  }

  void Get(std::string key, Callback done) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back({std::move(key), std::move(done)});
    }
    cv_.notify_one();
  }

 private:
  struct Pending {
    std::string key;
    Callback done;
  };

  explicit PipelinedConnection(redisContext* c)
      : context_(c), thread_([this] { Loop(); }) {}

  void Loop() {
    std::deque<Pending> batch;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (stop_) return;
        batch.swap(queue_);
      }
      bool ok = true;
      for (const Pending& p : batch) {
        const char* argv[] = {"GET", p.key.data()};
        const size_t lengths[] = {3, p.key.size()};
        if (ok &&
            redisAppendCommandArgv(context_, 2, argv, lengths) != REDIS_OK) {
          ok = false;
        }
      }
      for (Pending& p : batch) {
        std::string value;
        void* raw = nullptr;
        if (ok && redisGetReply(context_, &raw) == REDIS_OK && raw != nullptr) {
          redisReply* reply = static_cast<redisReply*>(raw);
          if (reply->type == REDIS_REPLY_STRING) {
            value.assign(reply->str, reply->len);
          }
          freeReplyObject(reply);
        } else {
          ok = false;
        }
        p.done(ok, std::move(value));
      }
      batch.clear();
      if (!ok) {
        std::cerr << "baseline: the pipelined Redis connection failed\n";
        std::abort();
      }
    }
  }

  redisContext* const context_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  bool stop_ = false;
  std::thread thread_;
};

class CallbackBaseline final : public v1::Baseline::CallbackService {
 public:
  explicit CallbackBaseline(
      std::vector<std::unique_ptr<PipelinedConnection>>* pipelines)
      : pipelines_(pipelines) {}

  grpc::ServerUnaryReactor* Empty(grpc::CallbackServerContext* context,
                                  const v1::EmptyMessage* /*request*/,
                                  v1::EmptyMessage* /*response*/) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* context,
                                const v1::GetRequest* request,
                                v1::GetResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    if (pipelines_->empty()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "no Redis"));
      return reactor;
    }
    const size_t n = next_.fetch_add(1, std::memory_order_relaxed);
    (*pipelines_)[n % pipelines_->size()]->Get(
        request->key(), [reactor, response](bool ok, std::string value) {
          if (!ok) {
            reactor->Finish(
                grpc::Status(grpc::StatusCode::UNAVAILABLE, "Redis"));
            return;
          }
          response->set_value(std::move(value));
          reactor->Finish(grpc::Status::OK);
        });
    return reactor;
  }

 private:
  std::vector<std::unique_ptr<PipelinedConnection>>* const pipelines_;
  std::atomic<size_t> next_{0};
};

// The authority's serving model (authority_server.cc) for the baseline
// methods: a slot per waiting call, run to its end by the serving thread
// that takes it from the queue.
class AsyncSlot {
 public:
  AsyncSlot(v1::Baseline::AsyncService* service, BlockingPool* pool,
            grpc::ServerCompletionQueue* queue, bool get,
            const std::atomic<bool>* stopping)
      : service_(service),
        pool_(pool),
        queue_(queue),
        get_(get),
        stopping_(stopping) {}

  void Await() {
    empty_writer_.reset();
    get_writer_.reset();
    context_.emplace();
    get_request_.Clear();
    get_response_.Clear();
    answering_ = false;
    if (get_) {
      get_writer_.emplace(&*context_);
      service_->RequestGet(&*context_, &get_request_, &*get_writer_, queue_,
                           queue_, this);
    } else {
      empty_writer_.emplace(&*context_);
      service_->RequestEmpty(&*context_, &empty_request_, &*empty_writer_,
                             queue_, queue_, this);
    }
  }

  void Proceed(bool ok) {
    if (answering_) {
      if (!stopping_->load()) Await();
      return;
    }
    if (!ok) return;
    answering_ = true;
    if (!get_) {
      empty_writer_->Finish(empty_response_, grpc::Status::OK, this);
      return;
    }
    grpc::Status status = grpc::Status::OK;
    redisContext* c = pool_ == nullptr ? nullptr : pool_->Borrow();
    if (c == nullptr) {
      status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "no Redis");
    } else {
      const bool got =
          BlockingGet(c, get_request_.key(), get_response_.mutable_value());
      pool_->Return(c, got);
      if (!got) status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "Redis");
    }
    if (status.ok()) {
      get_writer_->Finish(get_response_, status, this);
    } else {
      get_writer_->FinishWithError(status, this);
    }
  }

 private:
  v1::Baseline::AsyncService* const service_;
  BlockingPool* const pool_;
  grpc::ServerCompletionQueue* const queue_;
  const bool get_;
  const std::atomic<bool>* const stopping_;
  std::optional<grpc::ServerContext> context_;
  std::optional<grpc::ServerAsyncResponseWriter<v1::EmptyMessage>>
      empty_writer_;
  std::optional<grpc::ServerAsyncResponseWriter<v1::GetResponse>> get_writer_;
  v1::EmptyMessage empty_request_, empty_response_;
  v1::GetRequest get_request_;
  v1::GetResponse get_response_;
  bool answering_ = false;
};

bool ParseFlags(int argc, char** argv, Flags* flags) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    const size_t eq = arg.find('=');
    if (arg.substr(0, 2) != "--" || eq == absl::string_view::npos) {
      std::cerr << "baseline: expected --name=value, got " << arg << "\n";
      return false;
    }
    const absl::string_view name = arg.substr(2, eq - 2);
    const std::string value(arg.substr(eq + 1));
    bool ok = true;
    if (name == "listen") {
      flags->listen = value;
    } else if (name == "api") {
      flags->api = value;
      ok = value == "async" || value == "sync" || value == "callback";
    } else if (name == "redis-host") {
      flags->redis_host = value;
    } else if (name == "redis-port") {
      ok = absl::SimpleAtoi(value, &flags->redis_port);
    } else if (name == "redis-socket") {
      flags->redis_socket = value;
    } else if (name == "max-threads") {
      ok = absl::SimpleAtoi(value, &flags->max_threads);
    } else if (name == "completion-queues") {
      ok = absl::SimpleAtoi(value, &flags->completion_queues);
    } else if (name == "pipelines") {
      ok = absl::SimpleAtoi(value, &flags->pipelines) && flags->pipelines > 0;
    } else {
      ok = false;
    }
    if (!ok) {
      std::cerr << "baseline: bad flag " << arg << "\n";
      return false;
    }
  }
  return true;
}

int Run(int argc, char** argv) {
  Flags flags;
  if (!ParseFlags(argc, argv, &flags)) return 2;
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  const bool with_redis =
      !flags.redis_host.empty() || !flags.redis_socket.empty();
  std::unique_ptr<BlockingPool> pool;
  std::vector<std::unique_ptr<PipelinedConnection>> pipelines;
  std::unique_ptr<grpc::Service> service;
  v1::Baseline::AsyncService async_service;
  if (flags.api == "async") {
    if (with_redis) pool = std::make_unique<BlockingPool>(flags);
  } else if (flags.api == "sync") {
    if (with_redis) pool = std::make_unique<BlockingPool>(flags);
    service = std::make_unique<SyncBaseline>(pool.get());
  } else {
    for (int i = 0; with_redis && i < flags.pipelines; ++i) {
      std::unique_ptr<PipelinedConnection> p =
          PipelinedConnection::Create(flags);
      if (p == nullptr) return 1;
      pipelines.push_back(std::move(p));
    }
    service = std::make_unique<CallbackBaseline>(&pipelines);
  }

  ServerOptions options;
  options.listen = flags.listen;
  options.max_threads = flags.max_threads;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(flags.listen, grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(service != nullptr
                              ? static_cast<grpc::Service*>(service.get())
                              : &async_service);
  ApplyServerSettings(options, &builder);
  // As AuthorityServer::Start: threads, queues, one waiting call per method
  // and thread.
  const int threads = std::max(1, flags.max_threads);
  const int queue_count = flags.api != "async"
                              ? 0
                              : std::min(threads, flags.completion_queues > 0
                                                      ? flags.completion_queues
                                                      : (threads + 63) / 64);
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues;
  for (int i = 0; i < queue_count; ++i) {
    queues.push_back(builder.AddCompletionQueue());
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::cerr << "baseline: cannot listen on " << flags.listen << "\n";
    return 1;
  }
  std::atomic<bool> stopping{false};
  std::vector<std::unique_ptr<AsyncSlot>> slots;
  std::vector<std::thread> serving;
  for (int q = 0; q < queue_count; ++q) {
    const int per_queue = (threads + queue_count - 1 - q) / queue_count;
    for (int i = 0; i < per_queue; ++i) {
      for (bool get : {false, true}) {
        slots.push_back(std::make_unique<AsyncSlot>(
            &async_service, pool.get(), queues[q].get(), get, &stopping));
      }
    }
  }
  for (auto& slot : slots) slot->Await();
  for (int i = 0; i < threads && queue_count > 0; ++i) {
    serving.emplace_back([cq = queues[i % queue_count].get()] {
      void* tag = nullptr;
      bool ok = false;
      while (cq->Next(&tag, &ok)) static_cast<AsyncSlot*>(tag)->Proceed(ok);
    });
  }
  std::cout << "baseline listening on port " << port << " (api " << flags.api
            << (with_redis ? ", with Redis" : "") << ")" << std::endl;
  int received = 0;
  sigwait(&signals, &received);
  stopping = true;
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  for (auto& cq : queues) cq->Shutdown();
  for (std::thread& t : serving) t.join();
  server->Wait();
  return 0;
}

}  // namespace
}  // namespace scepca::bench

int main(int argc, char** argv) { return scepca::bench::Run(argc, argv); }
