#include "client/challenge_verify.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "client/challenge_client.h"
#include "client/challengectl.h"
#include "client/client_flags.h"
#include "service/core/csr.h"
#include "service/flags/flag_set.h"

namespace scepca {
namespace {

namespace v1 = ::scep::challenge::v1;

constexpr char kProgram[] = "challenge-verify";
constexpr char kDefaultServer[] = "127.0.0.1:50051";
constexpr char kServerEnv[] = "CHALLENGE_VERIFY_SERVER";
constexpr int kDefaultMaxCsrBytes = 64 * 1024;
constexpr char kRedacted[] = "[redacted]";

constexpr char kUsage[] =
    "The CSR verifier for micromdm/scep's -csrverifierexec. Reads a DER\n"
    "PKCS#10 request on stdin, asks the challenge authority to Validate it\n"
    "(the challenge is the CSR's challengePassword) and exits:\n"
    "  0  allowed (valid)\n"
    "  1  denied (not valid: not_found, already_used, identity_mismatch,\n"
    "     csr_invalid, ...)\n"
    "  2  refused: usage error, empty or too large stdin, INVALID_ARGUMENT\n"
    "  3  no answer: authority unreachable, UNAVAILABLE, DEADLINE_EXCEEDED,\n"
    "     INTERNAL, or the overall --deadline (reading stdin included) "
    "expired\n"
    "scepserver passes no arguments: set the flags in a wrapper script, e.g.\n"
    "  #!/bin/sh\n"
    "  exec /usr/local/bin/challenge-verify --server 127.0.0.1:50051 "
    "--deadline 5s --log-file /var/log/scepca/challenge-verify.log \"$@\"\n"
    "Writes one log line per run (never the challenge or the CSR).";

struct Options {
  std::string server = kDefaultServer;
  absl::Duration deadline = absl::Seconds(5);
  std::string log_file;
  int max_csr_bytes = kDefaultMaxCsrBytes;
  ClientFlagValues client;
};

// "REASON_ALREADY_USED" -> "already_used".
std::string ReasonText(v1::Reason reason) {
  std::string name = v1::Reason_Name(reason);
  absl::string_view view = name;
  if (view.substr(0, 7) == "REASON_") view.remove_prefix(7);
  std::string out(view);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out.empty() ? "unknown" : out;
}

// One line of key=value pairs. Values with spaces, quotes, '=', backslashes
// or control characters (or empty ones) are quoted and escaped, so a device
// cannot forge a field or a second line.
class LogLine {
 public:
  LogLine(absl::Time now, absl::string_view secret) : secret_(secret) {
    absl::StrAppend(
        &line_,
        absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", now, absl::UTCTimeZone()), " ",
        kProgram);
  }

  // Adds key=value, quoting the value only if it needs it.
  LogLine& Add(absl::string_view key, absl::string_view value) {
    return Append(key, value, /*always_quote=*/false);
  }
  // Adds key="value".
  LogLine& AddQuoted(absl::string_view key, absl::string_view value) {
    return Append(key, value, /*always_quote=*/true);
  }
  // Adds key=value if value is not empty.
  LogLine& AddIfSet(absl::string_view key, absl::string_view value) {
    if (!value.empty()) Add(key, value);
    return *this;
  }
  LogLine& Add(absl::string_view key, int64_t value) {
    absl::StrAppend(&line_, " ", key, "=", value);
    return *this;
  }

  std::string Finish() const { return absl::StrCat(line_, "\n"); }

 private:
  LogLine& Append(absl::string_view key, absl::string_view raw,
                  bool always_quote) {
    std::string value(raw);
    if (!secret_.empty()) {
      value = absl::StrReplaceAll(value, {{secret_, kRedacted}});
    }
    bool quote = always_quote || value.empty();
    std::string escaped;
    for (char c : value) {
      const unsigned char u = static_cast<unsigned char>(c);
      switch (c) {
        case '"':
          escaped += "\\\"";
          quote = true;
          break;
        case '\\':
          escaped += "\\\\";
          quote = true;
          break;
        case '\n':
          escaped += "\\n";
          quote = true;
          break;
        case '\r':
          escaped += "\\r";
          quote = true;
          break;
        case '\t':
          escaped += "\\t";
          quote = true;
          break;
        case ' ':
        case '=':
          escaped += c;
          quote = true;
          break;
        default:
          if (u < 0x20 || u == 0x7f) {
            absl::StrAppendFormat(&escaped, "\\x%02x", u);
            quote = true;
          } else {
            escaped += c;
          }
      }
    }
    absl::StrAppend(&line_, " ", key, "=", quote ? "\"" : "", escaped,
                    quote ? "\"" : "");
    return *this;
  }

  std::string secret_;
  std::string line_;
};

// Appends `line` to `path` with one write(2) on an O_APPEND descriptor, so
// that the lines of verifiers running side by side do not interleave.
absl::Status AppendToFile(const std::string& path, const std::string& line) {
  const int fd =
      open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  size_t written = 0;
  while (written < line.size()) {
    const ssize_t n = write(fd, line.data() + written, line.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int saved = errno;
      close(fd);
      return absl::UnavailableError(
          absl::StrCat("cannot write ", path, ": ", std::strerror(saved)));
    }
    written += static_cast<size_t>(n);
  }
  if (close(fd) != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

// Writes the decision's log line to the log file, or to `err` if there is
// none or it cannot be written (then with the reason, so that a hand run
// shows it).
void WriteLog(const Options& options, const LogLine& log, std::ostream& err) {
  const std::string line = log.Finish();
  if (!options.log_file.empty()) {
    absl::Status st = AppendToFile(options.log_file, line);
    if (st.ok()) return;
    err << kProgram << ": " << st.message() << "\n";
  }
  err << line;
  err.flush();
}

int64_t LatencyMs(absl::Time start) {
  return absl::ToInt64Milliseconds(absl::Now() - start);
}

// Logs decision=error for `status` and returns its exit code.
int LogError(const Options& options, absl::Time start, absl::string_view secret,
             const absl::Status& status, int exit_code, size_t csr_bytes,
             std::ostream& err) {
  LogLine log(absl::Now(), secret);
  log.Add("decision", "error")
      .Add("code", absl::StatusCodeToString(status.code()))
      .AddQuoted("message", status.message())
      .Add("server", options.server);
  if (csr_bytes > 0) log.Add("csr_bytes", static_cast<int64_t>(csr_bytes));
  log.Add("latency_ms", LatencyMs(start));
  WriteLog(options, log, err);
  return exit_code;
}

}  // namespace

CsrReader FdCsrReader(int fd) {
  return [fd](size_t limit,
              absl::Time deadline) -> absl::StatusOr<std::string> {
    std::string data;
    char buffer[16 * 1024];
    while (data.size() <= limit) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) {
        return absl::DeadlineExceededError(
            absl::StrCat("stdin did not end within the deadline (", data.size(),
                         " bytes read)"));
      }
      // Round up so that a sub-millisecond remainder does not spin.
      const int64_t wait_ms = std::min<int64_t>(
          absl::ToInt64Milliseconds(left) + 1, static_cast<int64_t>(INT_MAX));
      pollfd p{fd, POLLIN, 0};
      const int ready = poll(&p, 1, static_cast<int>(wait_ms));
      if (ready < 0) {
        if (errno == EINTR) continue;
        return absl::InvalidArgumentError(
            absl::StrCat("cannot read stdin: ", std::strerror(errno)));
      }
      if (ready == 0) continue;
      const size_t want = std::min(sizeof(buffer), limit + 1 - data.size());
      const ssize_t n = read(fd, buffer, want);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return absl::InvalidArgumentError(
            absl::StrCat("cannot read stdin: ", std::strerror(errno)));
      }
      if (n == 0) break;
      data.append(buffer, static_cast<size_t>(n));
    }
    return data;
  };
}

CsrReader StringCsrReader(std::string data) {
  return [data = std::move(data)](
             size_t limit,
             absl::Time /*deadline*/) -> absl::StatusOr<std::string> {
    return data.substr(0, limit + 1);
  };
}

int RunChallengeVerify(
    const std::vector<std::string>& args, const CsrReader& stdin_data,
    std::ostream& out, std::ostream& err,
    const std::function<void(absl::Time deadline)>& on_deadline) {
  const absl::Time start = absl::Now();
  Options options;
  if (const char* env = std::getenv(kServerEnv);
      env != nullptr && *env != '\0') {
    options.server = env;
  }
  FlagSet flags(
      "challenge-verify [--server HOST:PORT] [--deadline D] [--log-file FILE] "
      "[--max-csr-bytes N] < request.der",
      kUsage);
  flags.String(
      "server", &options.server,
      absl::StrCat("authority address HOST:PORT (or $", kServerEnv, ")"));
  flags.Duration("deadline", &options.deadline,
                 "overall deadline: reading stdin and the Validate call");
  flags.String("log-file", &options.log_file,
               "append the decision's log line to FILE (default: stderr)");
  flags.Int("max-csr-bytes", &options.max_csr_bytes,
            "refuse a larger request on stdin");
  AddClientFlags(&flags, &options.client);
  absl::StatusOr<std::vector<std::string>> rest = flags.Parse(args);
  std::string usage_error;
  if (!rest.ok()) {
    usage_error = std::string(rest.status().message());
  } else if (flags.help_requested()) {
    out << flags.Usage();
    return kExitOk;
  } else if (!rest->empty()) {
    usage_error = absl::StrCat("unexpected argument '", (*rest)[0],
                               "' (scepserver passes none; flags only)");
  } else if (options.deadline <= absl::ZeroDuration()) {
    usage_error = "--deadline must be positive";
  } else if (options.max_csr_bytes <= 0) {
    usage_error = "--max-csr-bytes must be positive";
  } else if (options.server.empty()) {
    usage_error = "--server must not be empty";
  }
  if (!usage_error.empty()) {
    err << kProgram << ": " << usage_error << " (see '" << kProgram
        << " --help')\n";
    // stderr is discarded under scepserver: leave a trace in the log too,
    // if the flags got as far as naming it.
    if (!options.log_file.empty()) {
      LogError(options, start, "",
               absl::InvalidArgumentError(absl::StrCat("usage: ", usage_error)),
               kExitRefused, 0, err);
    }
    return kExitRefused;
  }

  const absl::Time deadline = start + options.deadline;
  if (on_deadline) on_deadline(deadline);

  const size_t limit = static_cast<size_t>(options.max_csr_bytes);
  absl::StatusOr<std::string> csr = stdin_data(limit, deadline);
  if (!csr.ok()) {
    const int code = csr.status().code() == absl::StatusCode::kDeadlineExceeded
                         ? kExitNoAnswer
                         : kExitRefused;
    return LogError(options, start, "", csr.status(), code, 0, err);
  }
  if (csr->empty()) {
    return LogError(options, start, "",
                    absl::InvalidArgumentError("no CSR on stdin"), kExitRefused,
                    0, err);
  }
  if (csr->size() > limit) {
    return LogError(
        options, start, "",
        absl::InvalidArgumentError(absl::StrCat(
            "CSR on stdin is larger than --max-csr-bytes (", limit, ")")),
        kExitRefused, csr->size(), err);
  }

  // The authority decides; the local parse only learns the challenge, so
  // that it can be kept out of the log whatever the authority or the CSR's
  // own fields say.
  std::string secret;
  {
    CsrPolicy lenient;
    lenient.max_der_bytes = limit;
    lenient.min_rsa_bits = 1024;
    lenient.max_rsa_bits = 16384;
    absl::StatusOr<ParsedCsr> parsed = ParseCsr(*csr, lenient);
    if (parsed.ok() && parsed->has_challenge) secret = parsed->challenge;
  }

  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) {
    return LogError(options, start, secret,
                    absl::DeadlineExceededError(
                        "deadline expired before the Validate call"),
                    kExitNoAnswer, csr->size(), err);
  }
  ClientOptions client_options;
  client_options.target = options.server;
  client_options.deadline = left;
  if (absl::Status st = ApplyClientFlags(options.client, &client_options);
      !st.ok()) {
    return LogError(options, start, secret, st, kExitRefused, csr->size(), err);
  }
  absl::StatusOr<std::unique_ptr<ChallengeClient>> client =
      ChallengeClient::Create(client_options);
  if (!client.ok()) {
    return LogError(options, start, secret, client.status(), kExitRefused,
                    csr->size(), err);
  }
  v1::ValidateRequest request;
  request.set_csr(*csr);  // challenge and transaction_id stay empty.
  absl::StatusOr<v1::ValidateResponse> response = (*client)->Validate(request);
  if (!response.ok()) {
    return LogError(options, start, secret, response.status(),
                    ExitCodeForStatus(response.status()), csr->size(), err);
  }

  LogLine log(absl::Now(), secret);
  if (response->valid()) {
    log.Add("decision", "allow")
        .Add("reason", "valid")
        .Add("challenge_id", response->challenge_id())
        .Add("device", response->device_id())
        .Add("user", response->user_id())
        .Add("cn", response->csr().common_name());
    if (response->repeat()) log.Add("repeat", "true");
  } else {
    log.Add("decision", "deny")
        .Add("reason", ReasonText(response->reason()))
        .AddIfSet("challenge_id", response->challenge_id())
        .AddIfSet("device", response->device_id())
        .AddIfSet("user", response->user_id())
        .AddIfSet("cn", response->csr().common_name())
        .AddQuoted("message", response->message());
  }
  log.Add("csr_bytes", static_cast<int64_t>(csr->size()))
      .Add("latency_ms", LatencyMs(start));
  WriteLog(options, log, err);
  return response->valid() ? kExitOk : kExitDenied;
}

}  // namespace scepca
