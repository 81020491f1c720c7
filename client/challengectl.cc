#include "client/challengectl.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <openssl/crypto.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "client/challenge_client.h"
#include "client/client_flags.h"
#include "client/doctor.h"
#include "client/explain.h"
#include "client/mobileconfig.h"
#include "service/core/csr.h"
#include "service/core/hashing.h"
#include "service/core/key_ring.h"
#include "service/flags/flag_set.h"
#include "service/http/http_users.h"

namespace scepca {
namespace {

namespace v1 = ::scep::challenge::v1;

constexpr char kMainUsage[] =
    "challengectl [--server HOST:PORT] [--json] [--deadline D] COMMAND ...\n"
    "Issues, validates, inspects and revokes SCEP challenges.\n"
    "\n"
    "Commands:\n"
    "  issue     issue a challenge for a device (prints only the challenge)\n"
    "  validate  check a challenge (and consume it unless --dry-run)\n"
    "  revoke    revoke by challenge id, challenge, device or user\n"
    "  get       show one challenge by its id\n"
    "  list      list the challenges of a device or a user\n"
    "  stats     this instance's counters: calls, verdicts by reason\n"
    "  notify    report an enrollment's outcome (certificate issued or "
    "failed)\n"
    "  keys      manage the HMAC key file of signed challenges\n"
    "  http-user manage the accounts of the HTTP endpoints (NDES page, Jamf,\n"
    "            step-ca): add, remove, list\n"
    "  csr       inspect a PKCS#10 request as the authority reads it\n"
    "  doctor    probe a SCEP endpoint as an Apple device does: TLS\n"
    "            certificate rules, GetCACaps, GetCACert, and (--challenge)\n"
    "            the authority's verdict on a challenge\n"
    "  explain   what a device or server error code means (MCSCEPErrorDomain\n"
    "            22000-22013, SCEP failInfo, NDES) and what to check\n"
    "  mobileconfig  issue a bound challenge and write an Apple profile\n"
    "            with a SCEP payload for it\n"
    "\n"
    "Run 'challengectl COMMAND --help' for a command's flags.\n"
    "Exit codes: 0 success or valid; 1 denied (not valid, or not found);\n"
    "2 refused (usage, INVALID_ARGUMENT, UNAUTHENTICATED, PERMISSION_DENIED,\n"
    "RESOURCE_EXHAUSTED, FAILED_PRECONDITION); 3 no answer (unreachable,\n"
    "UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, ...).";

struct Globals {
  std::string server = "127.0.0.1:50051";
  bool json = false;
  absl::Duration deadline = absl::Seconds(5);
  ClientFlagValues client;
};

struct Io {
  std::ostream& out;
  std::ostream& err;
};

std::string ToJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  options.preserve_proto_field_names = false;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options)
           .ok()) {
    return "{}";
  }
  return json;
}

std::string TimeText(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "-";
  return google::protobuf::util::TimeUtil::ToString(t);
}

int Fail(Io io, const std::string& command, const absl::Status& status) {
  io.err << "challengectl " << command << ": "
         << absl::StatusCodeToString(status.code()) << ": " << status.message()
         << "\n";
  return ExitCodeForStatus(status);
}

int UsageError(Io io, const std::string& command, const std::string& message) {
  io.err << "challengectl " << command << ": " << message
         << " (see 'challengectl " << command << " --help')\n";
  return kExitRefused;
}

// Parses a command's flags; returns -1 to continue, or an exit code.
int ParseCommandFlags(FlagSet& flags, const std::vector<std::string>& args,
                      Io io, const std::string& command,
                      std::vector<std::string>* positional,
                      size_t max_positional) {
  absl::StatusOr<std::vector<std::string>> rest = flags.Parse(args);
  if (!rest.ok())
    return UsageError(io, command, std::string(rest.status().message()));
  if (flags.help_requested()) {
    io.out << flags.Usage();
    return kExitOk;
  }
  if (rest->size() > max_positional) {
    return UsageError(
        io, command,
        absl::StrCat("unexpected argument '", (*rest)[max_positional], "'"));
  }
  *positional = *std::move(rest);
  return -1;
}

absl::StatusOr<std::unique_ptr<ChallengeClient>> Connect(const Globals& g) {
  ClientOptions options;
  options.target = g.server;
  options.deadline = g.deadline;
  if (absl::Status st = ApplyClientFlags(g.client, &options); !st.ok()) {
    return st;
  }
  return ChallengeClient::Create(options);
}

// "REASON_ALREADY_USED" -> "already_used".
std::string EnumText(const std::string& name, absl::string_view prefix) {
  std::string out(absl::StripPrefix(name, prefix));
  for (char& c : out) c = static_cast<char>(std::tolower(c));
  return out;
}

std::string ReasonText(v1::Reason reason) {
  return EnumText(v1::Reason_Name(reason), "REASON_");
}

std::string StateText(v1::ChallengeState state) {
  return EnumText(v1::ChallengeState_Name(state), "CHALLENGE_STATE_");
}

std::string KindText(v1::ChallengeKind kind) {
  return kind == v1::CHALLENGE_KIND_SIGNED ? "signed" : "one-time";
}

int Issue(const Globals& g, const std::vector<std::string>& args, Io io) {
  std::string device, user, kind = "one-time", cn, idempotency_key;
  bool multi_use = false;
  std::string ttl_text;
  std::vector<std::string> dns, email, uri, labels;
  FlagSet flags("challengectl issue --device ID [FLAGS]",
                "Issues a challenge and prints it (only it, so that\n"
                "C=$(challengectl issue --device X) works; --json prints the "
                "whole response).");
  flags.String("device", &device, "device id (required)");
  flags.String("user", &user, "user id");
  flags.String("kind", &kind, "one-time | signed");
  flags.String("ttl", &ttl_text,
               "lifetime, e.g. 15m, 1h, 7d (server default "
               "if unset)");
  flags.String("cn", &cn, "subject CN the CSR must ask for");
  flags.StringList("dns", &dns, "allowed DNS SAN (repeatable)");
  flags.StringList("email", &email, "allowed e-mail SAN (repeatable)");
  flags.StringList("uri", &uri, "allowed URI SAN (repeatable)");
  flags.StringList("label", &labels,
                   "KEY=VALUE returned by Validate "
                   "(repeatable)");
  flags.String("idempotency-key", &idempotency_key,
               "the same key and request return the same challenge");
  flags.Bool("multi-use", &multi_use,
             "signed only: valid any number of times until it expires");
  std::vector<std::string> rest;
  if (int rc = ParseCommandFlags(flags, args, io, "issue", &rest, 0); rc >= 0) {
    return rc;
  }
  if (device.empty()) return UsageError(io, "issue", "--device is required");
  v1::IssueChallengeRequest request;
  request.set_device_id(device);
  request.set_user_id(user);
  if (kind == "one-time" || kind == "one_time") {
    request.set_kind(v1::CHALLENGE_KIND_ONE_TIME);
  } else if (kind == "signed") {
    request.set_kind(v1::CHALLENGE_KIND_SIGNED);
  } else {
    return UsageError(io, "issue", "--kind must be one-time or signed");
  }
  if (!ttl_text.empty()) {
    absl::StatusOr<absl::Duration> ttl = ParseDurationFlag(ttl_text);
    if (!ttl.ok()) {
      return UsageError(io, "issue",
                        absl::StrCat("--ttl: ", ttl.status().message()));
    }
    const int64_t nanos = absl::ToInt64Nanoseconds(*ttl);
    request.mutable_ttl()->set_seconds(nanos / 1'000'000'000);
    request.mutable_ttl()->set_nanos(
        static_cast<int32_t>(nanos % 1'000'000'000));
  }
  request.mutable_binding()->set_common_name(cn);
  for (const auto& v : dns) request.mutable_binding()->add_dns_names(v);
  for (const auto& v : email) request.mutable_binding()->add_email_addresses(v);
  for (const auto& v : uri) request.mutable_binding()->add_uris(v);
  for (const std::string& label : labels) {
    const size_t eq = label.find('=');
    if (eq == std::string::npos || eq == 0) {
      return UsageError(io, "issue",
                        absl::StrCat("--label '", label, "' is not KEY=VALUE"));
    }
    (*request.mutable_labels())[label.substr(0, eq)] = label.substr(eq + 1);
  }
  request.set_idempotency_key(idempotency_key);
  request.set_multi_use(multi_use);
  auto client = Connect(g);
  if (!client.ok()) return Fail(io, "issue", client.status());
  auto response = (*client)->IssueChallenge(request);
  if (!response.ok()) return Fail(io, "issue", response.status());
  if (g.json) {
    io.out << ToJson(*response) << "\n";
  } else {
    io.out << response->challenge() << "\n";
  }
  return kExitOk;
}

int Validate(const Globals& g, const std::vector<std::string>& args, Io io) {
  std::string challenge, csr_path, transaction_id;
  bool dry_run = false;
  FlagSet flags("challengectl validate [--challenge C] [--csr FILE] [FLAGS]",
                "Validates a challenge; consumes it unless --dry-run.\n"
                "Exit code 0 if valid, 1 if not (the reason is printed).");
  flags.String("challenge", &challenge,
               "the challenge (default: the CSR's challengePassword)");
  flags.String("csr", &csr_path, "PKCS#10 request file, DER or PEM");
  flags.String("transaction-id", &transaction_id, "SCEP transactionID");
  flags.Bool("dry-run", &dry_run, "check without consuming");
  std::vector<std::string> rest;
  if (int rc = ParseCommandFlags(flags, args, io, "validate", &rest, 0);
      rc >= 0) {
    return rc;
  }
  if (challenge.empty() && csr_path.empty()) {
    return UsageError(io, "validate", "--challenge or --csr is required");
  }
  v1::ValidateRequest request;
  request.set_challenge(challenge);
  if (!csr_path.empty()) {
    std::ifstream in(csr_path, std::ios::binary);
    if (!in) {
      return UsageError(io, "validate",
                        absl::StrCat("--csr: cannot read ", csr_path));
    }
    std::stringstream ss;
    ss << in.rdbuf();
    request.set_csr(ss.str());
  }
  request.set_transaction_id(transaction_id);
  request.set_dry_run(dry_run);
  auto client = Connect(g);
  if (!client.ok()) return Fail(io, "validate", client.status());
  auto response = (*client)->Validate(request);
  if (!response.ok()) return Fail(io, "validate", response.status());
  if (g.json) {
    io.out << ToJson(*response) << "\n";
  } else if (response->valid()) {
    io.out << "valid: device " << response->device_id();
    if (!response->user_id().empty())
      io.out << ", user " << response->user_id();
    io.out << ", challenge id " << response->challenge_id();
    if (response->repeat()) io.out << " (repeat of the successful request)";
    io.out << "\n";
  } else {
    io.out << "invalid: " << ReasonText(response->reason()) << ": "
           << response->message() << "\n";
  }
  return response->valid() ? kExitOk : kExitDenied;
}

int Revoke(const Globals& g, const std::vector<std::string>& args, Io io) {
  std::string challenge_id, challenge, device, user, reason;
  FlagSet flags(
      "challengectl revoke (--challenge-id ID | --challenge C | --device ID | "
      "--user ID) [--reason TEXT]",
      "Revokes challenges; by device or user, every challenge issued before "
      "the\ncommand returns. Prints how many pending challenges were revoked.");
  flags.String("challenge-id", &challenge_id, "a challenge's id");
  flags.String("challenge", &challenge, "a challenge itself");
  flags.String("device", &device, "every challenge of this device");
  flags.String("user", &user, "every challenge of this user");
  flags.String("reason", &reason, "free text recorded with the revocation");
  std::vector<std::string> rest;
  if (int rc = ParseCommandFlags(flags, args, io, "revoke", &rest, 0);
      rc >= 0) {
    return rc;
  }
  v1::RevokeRequest request;
  int selectors = 0;
  if (flags.WasSet("challenge-id")) {
    request.set_challenge_id(challenge_id);
    ++selectors;
  }
  if (flags.WasSet("challenge")) {
    request.set_challenge(challenge);
    ++selectors;
  }
  if (flags.WasSet("device")) {
    request.set_device_id(device);
    ++selectors;
  }
  if (flags.WasSet("user")) {
    request.set_user_id(user);
    ++selectors;
  }
  if (selectors != 1) {
    return UsageError(io, "revoke",
                      "exactly one of --challenge-id, --challenge, --device, "
                      "--user is required");
  }
  request.set_reason(reason);
  auto client = Connect(g);
  if (!client.ok()) return Fail(io, "revoke", client.status());
  auto response = (*client)->Revoke(request);
  if (!response.ok()) return Fail(io, "revoke", response.status());
  if (g.json) {
    io.out << ToJson(*response) << "\n";
  } else {
    io.out << "revoked " << response->revoked_count() << "\n";
  }
  return kExitOk;
}

void PrintInfo(const v1::ChallengeInfo& info, std::ostream& out) {
  out << "challenge_id: " << info.challenge_id() << "\n"
      << "state:        " << StateText(info.state()) << "\n"
      << "kind:         " << KindText(info.kind()) << "\n"
      << "device_id:    " << info.device_id() << "\n"
      << "user_id:      " << info.user_id() << "\n"
      << "created_at:   " << TimeText(info.created_at()) << "\n"
      << "expires_at:   " << TimeText(info.expires_at()) << "\n";
  if (info.state() == v1::CHALLENGE_STATE_USED) {
    out << "used_at:      " << TimeText(info.used_at()) << "\n"
        << "transaction:  " << info.used_transaction_id() << "\n";
  }
  if (info.state() == v1::CHALLENGE_STATE_REVOKED) {
    out << "revoked_at:   " << TimeText(info.revoked_at()) << "\n"
        << "revoke_reason: " << info.revoke_reason() << "\n";
  }
  std::map<std::string, std::string> labels(info.labels().begin(),
                                            info.labels().end());
  for (const auto& [k, v] : labels)
    out << "label:        " << k << "=" << v << "\n";
  const auto& b = info.binding();
  if (!b.common_name().empty())
    out << "bind cn:      " << b.common_name() << "\n";
  for (const auto& v : b.dns_names()) out << "bind dns:     " << v << "\n";
  for (const auto& v : b.email_addresses())
    out << "bind email:   " << v << "\n";
  for (const auto& v : b.uris()) out << "bind uri:     " << v << "\n";
  if (info.history_size() > 0) out << "history:\n";
  for (const auto& e : info.history()) {
    out << "  " << TimeText(e.at()) << "  "
        << EnumText(v1::ChallengeEvent::Type_Name(e.type()), "TYPE_");
    if (!e.transaction_id().empty()) {
      out << "  transaction " << e.transaction_id();
    }
    if (!e.certificate_serial().empty()) {
      out << "  serial " << e.certificate_serial();
    }
    if (!e.certificate_sha256().empty()) {
      out << "  sha256 " << e.certificate_sha256();
    }
    if (!e.detail().empty()) out << "  " << e.detail();
    out << "\n";
  }
}

int Stats(const Globals& g, const std::vector<std::string>& args, Io io) {
  FlagSet flags("challengectl stats",
                "Shows the counters of the instance --server reaches, since "
                "it started:\ncalls by method and status, Validate verdicts "
                "by reason, and pending\nchallenges (memory store only). "
                "Admin role needed when authorization is on.");
  std::vector<std::string> rest;
  if (int rc = ParseCommandFlags(flags, args, io, "stats", &rest, 0); rc >= 0) {
    return rc;
  }
  auto client = Connect(g);
  if (!client.ok()) return Fail(io, "stats", client.status());
  auto stats = (*client)->GetStats(v1::GetStatsRequest());
  if (!stats.ok()) return Fail(io, "stats", stats.status());
  if (g.json) {
    io.out << ToJson(*stats) << "\n";
    return kExitOk;
  }
  io.out << "store:        " << stats->store() << "\n"
         << "started at:   " << TimeText(stats->started_at()) << "\n"
         << "outstanding:  "
         << (stats->outstanding_challenges() < 0
                 ? std::string("not counted (yet) by this store")
                 : absl::StrCat(stats->outstanding_challenges()))
         << "\n";
  const std::map<std::string, int64_t> validations(stats->validations().begin(),
                                                   stats->validations().end());
  io.out << "validations by reason:\n";
  for (const auto& [reason, n] : validations) {
    io.out << absl::StrFormat("  %-20s %d\n", reason, n);
  }
  const std::map<std::string, int64_t> calls(stats->calls().begin(),
                                             stats->calls().end());
  io.out << "calls by method/status:\n";
  for (const auto& [key, n] : calls) {
    io.out << absl::StrFormat("  %-36s %d\n", key, n);
  }
  return kExitOk;
}

int Notify(const Globals& g, const std::vector<std::string>& args, Io io) {
  std::string challenge_id, transaction_id, serial, fingerprint, failure;
  bool issued = false, failed = false;
  FlagSet flags(
      "challengectl notify (--challenge-id ID | --transaction-id TX) "
      "(--issued [--serial HEX] [--fingerprint HEX] | --failed [--failure "
      "TEXT])",
      "Reports what became of an enrollment (NotifyOutcome); 'get' shows it "
      "in the\nchallenge's history.");
  flags.String("challenge-id", &challenge_id, "the challenge's id");
  flags.String("transaction-id", &transaction_id,
               "the SCEP transactionID it was validated with");
  flags.Bool("issued", &issued, "a certificate was issued");
  flags.Bool("failed", &failed, "issuance failed");
  flags.String("serial", &serial, "certificate serial number (hex)");
  flags.String("fingerprint", &fingerprint,
               "SHA-256 of the certificate's DER (hex)");
  flags.String("failure", &failure, "why issuance failed");
  std::vector<std::string> rest;
  if (int rc = ParseCommandFlags(flags, args, io, "notify", &rest, 0);
      rc >= 0) {
    return rc;
  }
  if (issued == failed) {
    return UsageError(io, "notify", "exactly one of --issued and --failed");
  }
  v1::NotifyOutcomeRequest request;
  request.set_challenge_id(challenge_id);
  request.set_transaction_id(transaction_id);
  request.set_outcome(issued ? v1::OUTCOME_ISSUED : v1::OUTCOME_FAILED);
  request.set_certificate_serial(serial);
  request.set_certificate_sha256(fingerprint);
  request.set_failure(failure);
  auto client = Connect(g);
  if (!client.ok()) return Fail(io, "notify", client.status());
  auto response = (*client)->NotifyOutcome(request);
  if (!response.ok()) return Fail(io, "notify", response.status());
  if (g.json) {
    io.out << ToJson(*response) << "\n";
  } else {
    io.out << "recorded for challenge " << response->challenge_id() << "\n";
  }
  return kExitOk;
}

int Get(const Globals& g, const std::vector<std::string>& args, Io io) {
  FlagSet flags("challengectl get CHALLENGE_ID",
                "Shows what the authority knows of a challenge (never the "
                "secret).");
  std::vector<std::string> rest;
  if (int rc = ParseCommandFlags(flags, args, io, "get", &rest, 1); rc >= 0) {
    return rc;
  }
  if (rest.size() != 1)
    return UsageError(io, "get", "CHALLENGE_ID is required");
  v1::GetChallengeRequest request;
  request.set_challenge_id(rest[0]);
  auto client = Connect(g);
  if (!client.ok()) return Fail(io, "get", client.status());
  auto response = (*client)->GetChallenge(request);
  if (!response.ok()) return Fail(io, "get", response.status());
  if (g.json) {
    io.out << ToJson(*response) << "\n";
  } else {
    PrintInfo(*response, io.out);
  }
  return kExitOk;
}

int List(const Globals& g, const std::vector<std::string>& args, Io io) {
  std::string device, user, state, kind;
  int page_size = 100;
  FlagSet flags(
      "challengectl list (--device ID | --user ID) [--state STATE] [--kind "
      "KIND]",
      "Lists a device's or user's challenges (all pages) as a table, or as "
      "JSON\nwith --json. --state keeps one of pending, used, revoked, "
      "expired;\n--kind keeps one-time or signed (signed challenges are "
      "listed once used\nor revoked).");
  flags.String("device", &device, "device id");
  flags.String("user", &user, "user id");
  flags.String("state", &state, "pending | used | revoked | expired");
  flags.String("kind", &kind, "one-time | signed");
  flags.Int("page-size", &page_size, "challenges fetched per call");
  std::vector<std::string> rest;
  if (int rc = ParseCommandFlags(flags, args, io, "list", &rest, 0); rc >= 0) {
    return rc;
  }
  if (device.empty() == user.empty()) {
    return UsageError(io, "list",
                      "exactly one of --device and --user is "
                      "required");
  }
  if (!state.empty() && state != "pending" && state != "used" &&
      state != "revoked" && state != "expired") {
    return UsageError(io, "list",
                      "--state must be pending, used, revoked or expired");
  }
  if (!kind.empty() && kind != "one-time" && kind != "signed") {
    return UsageError(io, "list", "--kind must be one-time or signed");
  }
  auto client = Connect(g);
  if (!client.ok()) return Fail(io, "list", client.status());
  v1::ListChallengesResponse all;
  v1::ListChallengesRequest request;
  request.set_device_id(device);
  request.set_user_id(user);
  request.set_page_size(page_size);
  do {
    auto page = (*client)->ListChallenges(request);
    if (!page.ok()) return Fail(io, "list", page.status());
    for (const auto& c : page->challenges()) {
      if (!state.empty() && StateText(c.state()) != state) continue;
      if (!kind.empty() && KindText(c.kind()) != kind) continue;
      *all.add_challenges() = c;
    }
    request.set_page_token(page->next_page_token());
  } while (!request.page_token().empty());
  if (g.json) {
    io.out << ToJson(all) << "\n";
    return kExitOk;
  }
  io.out << absl::StrFormat("%-32s  %-8s  %-8s  %-20s  %s\n", "CHALLENGE_ID",
                            "STATE", "KIND", "EXPIRES_AT", "USER");
  for (const auto& c : all.challenges()) {
    io.out << absl::StrFormat("%-32s  %-8s  %-8s  %-20s  %s\n",
                              c.challenge_id(), StateText(c.state()),
                              KindText(c.kind()), TimeText(c.expires_at()),
                              c.user_id());
  }
  return kExitOk;
}

std::string ReadWholeFile(const std::string& path, bool* ok) {
  std::ifstream in(path, std::ios::binary);
  *ok = static_cast<bool>(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int Csr(const Globals& g, const std::vector<std::string>& args, Io io) {
  bool show_challenge = false;
  FlagSet flags("challengectl csr inspect FILE [--show-challenge]",
                "Prints what the authority reads from a PKCS#10 request (DER "
                "or PEM):\nsubject, SANs, key, and the challengePassword's "
                "type and presence\n(its value only with --show-challenge). "
                "Exit code 1 if the authority would\nrefuse the request as "
                "CSR_INVALID (the rule is printed).");
  flags.Bool("show-challenge", &show_challenge,
             "also print the challengePassword itself");
  std::vector<std::string> rest;
  if (int rc = ParseCommandFlags(flags, args, io, "csr", &rest, 2); rc >= 0) {
    return rc;
  }
  if (rest.size() != 2 || rest[0] != "inspect") {
    return UsageError(io, "csr", "usage: csr inspect FILE");
  }
  bool ok = false;
  const std::string body = ReadWholeFile(rest[1], &ok);
  if (!ok) return UsageError(io, "csr", absl::StrCat("cannot read ", rest[1]));
  absl::StatusOr<ParsedCsr> csr = ParseCsr(body);
  if (!csr.ok()) {
    io.out << "invalid: " << csr.status().message() << "\n";
    return kExitDenied;
  }
  if (g.json) {
    v1::CsrInfo info;
    info.set_subject(csr->subject);
    info.set_common_name(csr->common_name);
    for (const auto& v : csr->dns_names) info.add_dns_names(v);
    for (const auto& v : csr->email_addresses) info.add_email_addresses(v);
    for (const auto& v : csr->uris) info.add_uris(v);
    for (const auto& v : csr->ip_addresses) info.add_ip_addresses(v);
    info.set_key_type(csr->key_type);
    info.set_key_bits(csr->key_bits);
    info.set_key_curve(csr->key_curve);
    info.set_public_key_sha256(csr->public_key_sha256);
    info.set_challenge_type(
        std::string(ChallengeStringTypeName(csr->challenge_type)));
    io.out << ToJson(info) << "\n";
    return kExitOk;
  }
  io.out << "subject:      " << csr->subject << "\n"
         << "common name:  " << csr->common_name << "\n";
  for (const auto& v : csr->dns_names) io.out << "DNS SAN:      " << v << "\n";
  for (const auto& v : csr->email_addresses) {
    io.out << "e-mail SAN:   " << v << "\n";
  }
  for (const auto& v : csr->uris) io.out << "URI SAN:      " << v << "\n";
  for (const auto& v : csr->ip_addresses)
    io.out << "IP SAN:       " << v << "\n";
  io.out << "key:          " << csr->key_type << " " << csr->key_bits
         << (csr->key_curve.empty() ? "" : absl::StrCat(" ", csr->key_curve))
         << "\n"
         << "key sha256:   " << HexEncode(csr->public_key_sha256) << "\n"
         << "challenge:    "
         << (csr->has_challenge
                 ? absl::StrCat("present (",
                                ChallengeStringTypeName(csr->challenge_type),
                                ")")
                 : "absent")
         << "\n";
  if (show_challenge && csr->has_challenge) {
    io.out << "challenge value: " << csr->challenge << "\n";
  }
  return kExitOk;
}

int Keys(const Globals& /*g*/, const std::vector<std::string>& args, Io io) {
  std::string file;
  std::string id_text;
  FlagSet flags(
      "challengectl keys (generate | promote --id ID | disable --id ID | "
      "list) --file FILE",
      "Manages the HMAC key file of signed challenges (given to the server "
      "with\n--hmac-keys; send the server SIGHUP after a change). The file is "
      "edited in\nplace and kept private (mode 0600). Rotation: generate, "
      "promote the new key,\nSIGHUP; once every token signed with the old key "
      "has expired, disable it,\nSIGHUP.\n"
      "  generate  adds a random 32-byte key (primary if it is the first) and\n"
      "            prints its id on the last line\n"
      "  promote   makes a key primary (the old primary stays enabled)\n"
      "  disable   disables a key (tokens signed with it are refused)\n"
      "  list      shows ids and states, never secrets");
  flags.String("file", &file, "the key file");
  flags.String("id", &id_text, "key id (promote, disable)");
  std::vector<std::string> rest;
  if (int rc = ParseCommandFlags(flags, args, io, "keys", &rest, 1); rc >= 0) {
    return rc;
  }
  if (rest.size() != 1) {
    return UsageError(io, "keys",
                      "a subcommand is required: generate, promote, "
                      "disable or list");
  }
  if (file.empty()) return UsageError(io, "keys", "--file is required");
  const std::string& sub = rest[0];
  absl::StatusOr<KeyRing> ring = KeyRing::LoadFileForEditing(file);
  if (!ring.ok()) return Fail(io, "keys", ring.status());
  uint32_t id = 0;
  if (sub == "promote" || sub == "disable") {
    if (!absl::SimpleAtoi(id_text, &id) || id == 0) {
      return UsageError(io, "keys", "--id must be a key id (a number)");
    }
  }
  absl::Status changed = absl::OkStatus();
  if (sub == "generate") {
    absl::StatusOr<uint32_t> added = ring->Generate();
    if (!added.ok()) return Fail(io, "keys", added.status());
    id = *added;
  } else if (sub == "promote") {
    changed = ring->Promote(id);
  } else if (sub == "disable") {
    changed = ring->Disable(id);
  } else if (sub == "list") {
    io.out << "KEY_ID      STATE\n";
    for (const KeyRing::Key& k : ring->keys()) {
      io.out << absl::StrFormat("%-10u  %s\n", k.id, KeyStateName(k.state));
    }
    return kExitOk;
  } else {
    return UsageError(io, "keys",
                      absl::StrCat("unknown subcommand '", sub, "'"));
  }
  if (!changed.ok()) return Fail(io, "keys", changed);
  if (absl::Status st = WriteKeyFile(file, *ring); !st.ok()) {
    return Fail(io, "keys", st);
  }
  if (sub == "generate") {
    io.out << id << "\n";
  } else {
    io.out << "key " << id << " is now "
           << (sub == "promote" ? "primary" : "disabled") << "\n";
  }
  return kExitOk;
}

int HttpUser(const Globals& /*g*/, const std::vector<std::string>& args,
             Io io) {
  std::string file, name, ttl_text, user;
  std::vector<std::string> labels;
  bool no_issue = false, replace = false;
  int quota = 0;
  FlagSet flags(
      "challengectl http-user (add --name NAME [FLAGS] | remove --name NAME "
      "| list) --file FILE",
      "Manages the users file of the HTTP endpoints (the server's\n"
      "--http-users-file: NDES page, Jamf webhook, step-ca Basic auth). The "
      "file is\nedited in place and kept private (mode 0600); send the server "
      "SIGHUP after\na change.\n"
      "  add     adds an account, or changes one with --replace; reads the\n"
      "          password from the first line of stdin (at least 12 "
      "characters)\n          and stores only its scrypt hash\n"
      "  remove  removes an account\n"
      "  list    shows the accounts and their options, never hashes");
  flags.String("file", &file, "the users file");
  flags.String("name", &name, "account name (A-Z a-z 0-9 . _ @ -)");
  flags.Bool("no-issue", &no_issue, "add: the account may not get challenges");
  flags.String("ttl", &ttl_text,
               "add: lifetime of its challenges, e.g. 60m (default: the "
               "server's --default-ttl)");
  flags.String("user", &user, "add: user_id of its challenges");
  flags.StringList("label", &labels,
                   "add: KEY=VALUE on its challenges (repeatable)");
  flags.Int("quota", &quota,
            "add: NDES page: at most N challenges outstanding (0: no limit)");
  flags.Bool("replace", &replace, "add: replace an existing account");
  std::vector<std::string> rest;
  if (int rc = ParseCommandFlags(flags, args, io, "http-user", &rest, 1);
      rc >= 0) {
    return rc;
  }
  if (rest.size() != 1) {
    return UsageError(io, "http-user",
                      "a subcommand is required: add, remove or list");
  }
  if (file.empty()) return UsageError(io, "http-user", "--file is required");
  const std::string& sub = rest[0];
  if (sub != "add" && sub != "remove" && sub != "list") {
    return UsageError(io, "http-user",
                      absl::StrCat("unknown subcommand '", sub, "'"));
  }
  if (sub != "list" && name.empty()) {
    return UsageError(io, "http-user", "--name is required");
  }
  absl::StatusOr<std::string> text = ReadUsersFile(file);
  if (absl::IsNotFound(text.status()) && sub == "add") text = std::string();
  if (!text.ok()) return Fail(io, "http-user", text.status());
  if (sub == "list") {
    // Any hash cost is listed; the server applies its own minimum.
    absl::StatusOr<std::vector<HttpAccount>> accounts =
        ParseUsersFile(*text, {.min_scrypt_log_n = 10});
    if (!accounts.ok()) return Fail(io, "http-user", accounts.status());
    io.out << absl::StrFormat("%-24s  %-5s  %-8s  %-16s  %-5s  %s\n", "NAME",
                              "ISSUE", "TTL", "USER", "QUOTA", "LABELS");
    for (const HttpAccount& a : *accounts) {
      std::vector<std::string> kv;
      for (const auto& [k, v] : a.labels) kv.push_back(absl::StrCat(k, "=", v));
      io.out << absl::StrFormat(
          "%-24s  %-5s  %-8s  %-16s  %-5d  %s\n", a.name,
          a.may_issue ? "yes" : "no",
          a.ttl.has_value() ? absl::FormatDuration(*a.ttl) : "-",
          a.user_id.empty() ? "-" : a.user_id, a.quota,
          kv.empty() ? "-" : absl::StrJoin(kv, ","));
    }
    return kExitOk;
  }
  absl::StatusOr<std::string> edited;
  bool replaced = false;
  if (sub == "remove") {
    edited = RemoveAccountLine(*text, name);
  } else {
    HttpAccount account;
    account.name = name;
    account.may_issue = !no_issue;
    account.user_id = user;
    account.quota = quota;
    if (!ttl_text.empty()) {
      absl::StatusOr<absl::Duration> ttl = ParseDurationFlag(ttl_text);
      if (!ttl.ok()) {
        return UsageError(io, "http-user",
                          absl::StrCat("--ttl: ", ttl.status().message()));
      }
      account.ttl = *ttl;
    }
    for (const std::string& label : labels) {
      const size_t eq = label.find('=');
      if (eq == std::string::npos || eq == 0) {
        return UsageError(
            io, "http-user",
            absl::StrCat("--label '", label, "' is not KEY=VALUE"));
      }
      account.labels[label.substr(0, eq)] = label.substr(eq + 1);
    }
    std::string password;
    std::getline(std::cin, password);
    if (!password.empty() && password.back() == '\r') password.pop_back();
    if (password.size() < kMinHttpPasswordLength) {
      return UsageError(
          io, "http-user",
          absl::StrCat("the password (first line of stdin) must have at "
                       "least ",
                       kMinHttpPasswordLength, " characters"));
    }
    absl::StatusOr<std::string> hash = HashPassword(password);
    OPENSSL_cleanse(password.data(), password.size());
    if (!hash.ok()) return Fail(io, "http-user", hash.status());
    account.password_hash = *std::move(hash);
    if (absl::Status st = CheckAccount(account); !st.ok()) {
      return UsageError(io, "http-user", std::string(st.message()));
    }
    edited = UpsertAccountLine(*text, account, replace, &replaced);
  }
  if (!edited.ok()) return Fail(io, "http-user", edited.status());
  if (absl::Status st = WriteUsersFile(file, *edited); !st.ok()) {
    return Fail(io, "http-user", st);
  }
  io.out << (sub == "remove" ? "removed"
             : replaced      ? "replaced"
                             : "added")
         << " account " << name << " (send the server SIGHUP to load it)\n";
  return kExitOk;
}

int Doctor(const Globals& g, const std::vector<std::string>& args, Io io) {
  DoctorOptions options;
  std::string challenge;
  bool json = false;
  FlagSet flags(
      "challengectl [--server HOST:PORT] doctor --scep-url URL [--scep-ca "
      "FILE] [--challenge C] [--ca-fingerprint HEX] [--timeout D] [--json]",
      kDoctorHelp);
  flags.String("scep-url", &options.scep_url,
               "the SCEP URL as in the devices' profile (required)");
  flags.String("scep-ca", &options.scep_ca_file,
               "PEM trust anchors for an https endpoint (default: the "
               "system store)");
  flags.String("challenge", &challenge,
               "also ask the authority whether this challenge would be "
               "accepted (dry run)");
  flags.String("ca-fingerprint", &options.ca_fingerprint,
               "expected SHA-256 (or SHA-1, MD5) of the CA certificate, hex");
  flags.Duration("timeout", &options.timeout,
                 "timeout of each connection and read");
  flags.Bool("json", &json,
             "print {checks:[{id,status,message,advice}],verdict}");
  std::vector<std::string> rest;
  if (int rc = ParseCommandFlags(flags, args, io, "doctor", &rest, 0);
      rc >= 0) {
    return rc;
  }
  if (options.scep_url.empty()) {
    return UsageError(io, "doctor", "--scep-url is required");
  }
  absl::StatusOr<DoctorReport> report = RunDoctor(options);
  if (!report.ok()) {
    return UsageError(io, "doctor", std::string(report.status().message()));
  }
  if (flags.WasSet("challenge")) {
    auto client = Connect(g);
    report->checks.push_back(
        client.ok() ? CheckChallengeWithAuthority(**client, challenge)
                    : ChallengeCheckFromValidate(client.status()));
  }
  io.out << (json || g.json ? FormatDoctorJson(*report)
                            : FormatDoctorText(*report));
  return DoctorExitCode(*report);
}

int Explain(const Globals& /*g*/, const std::vector<std::string>& args, Io io) {
  FlagSet flags("challengectl explain [CODE]", kExplainHelp);
  std::vector<std::string> rest;
  if (int rc = ParseCommandFlags(flags, args, io, "explain", &rest, 16);
      rc >= 0) {
    return rc;
  }
  if (rest.empty()) {
    io.out << FormatExplainList();
    return kExitOk;
  }
  const std::string code = absl::StrJoin(rest, " ");
  std::vector<const ExplainEntry*> found = FindExplainEntries(code);
  if (found.empty()) {
    io.err << "challengectl explain: unknown code '" << code
           << "'; run 'challengectl explain' to list the codes it knows\n";
    return kExitDenied;
  }
  for (size_t i = 0; i < found.size(); ++i) {
    io.out << (i == 0 ? "" : "\n") << FormatExplainEntry(*found[i]);
  }
  return kExitOk;
}

int Mobileconfig(const Globals& g, const std::vector<std::string>& args,
                 Io io) {
  MobileconfigOptions o;
  FlagSet flags(
      "challengectl [--server HOST:PORT] mobileconfig --scep-url URL "
      "--device ID [--user ID] [--cn NAME] [--dns NAME]... [--kind "
      "one-time|signed] [--key-size 2048] [--name TEXT] [--ca-name TEXT] "
      "[--ttl D] --out FILE",
      kMobileconfigHelp);
  flags.String("scep-url", &o.scep_url, "the SCEP URL devices use (required)");
  flags.String("device", &o.device_id, "device id (required)");
  flags.String("user", &o.user_id, "user id");
  flags.String("cn", &o.common_name,
               "subject CN to enroll, bound to the challenge (default: the "
               "device id)");
  flags.StringList("dns", &o.dns_names,
                   "DNS subjectAltName to enroll, bound to the challenge "
                   "(repeatable)");
  flags.String("kind", &o.kind, "one-time | signed");
  flags.Int("key-size", &o.key_size, "RSA key size: 2048 or 4096");
  flags.String("name", &o.display_name,
               "the profile's display name (default: SCEP enrollment for "
               "DEVICE)");
  flags.String("ca-name", &o.ca_name,
               "the payload's Name, sent to the server as message= (default: "
               "the URL's host)");
  flags.String("ttl", &o.ttl,
               "lifetime of the challenge, e.g. 1h, 7d (server default if "
               "unset)");
  flags.String("out", &o.out_path, "the profile file to write (required)");
  std::vector<std::string> rest;
  if (int rc = ParseCommandFlags(flags, args, io, "mobileconfig", &rest, 0);
      rc >= 0) {
    return rc;
  }
  if (absl::Status st = CheckMobileconfigOptions(o); !st.ok()) {
    return UsageError(io, "mobileconfig", std::string(st.message()));
  }
  auto client = Connect(g);
  if (!client.ok()) return Fail(io, "mobileconfig", client.status());
  absl::StatusOr<MobileconfigResult> written = WriteMobileconfig(**client, o);
  if (!written.ok()) return Fail(io, "mobileconfig", written.status());
  if (g.json) {
    using doctor_internal::JsonQuote;  // The challenge is not shown.
    io.out << "{\"out\":" << JsonQuote(written->out_path)
           << ",\"challengeId\":" << JsonQuote(written->challenge_id)
           << ",\"expiresAt\":" << JsonQuote(written->expires_at)
           << ",\"profileUuid\":" << JsonQuote(written->profile_uuid)
           << ",\"payloadUuid\":" << JsonQuote(written->payload_uuid) << "}\n";
  } else {
    io.out << "wrote " << written->out_path
           << " (mode 0600): SCEP profile for CN=" << written->common_name
           << ", challenge id " << written->challenge_id << ", expires at "
           << written->expires_at << "\n";
  }
  return kExitOk;
}

}  // namespace

int ExitCodeForStatus(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kNotFound:
      return kExitDenied;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kUnimplemented:
      return kExitRefused;
    default:
      return kExitNoAnswer;
  }
}

int RunChallengectl(const std::vector<std::string>& args, std::ostream& out,
                    std::ostream& err) {
  Io io{out, err};
  Globals g;
  if (const char* env = std::getenv("CHALLENGECTL_SERVER"); env != nullptr) {
    g.server = env;
  }
  FlagSet flags("", kMainUsage);
  flags.String("server", &g.server,
               "authority address HOST:PORT (or $CHALLENGECTL_SERVER)");
  flags.Bool("json", &g.json, "print responses as JSON (protobuf mapping)");
  flags.Duration("deadline", &g.deadline, "deadline of each call");
  AddClientFlags(&flags, &g.client);
  absl::StatusOr<std::vector<std::string>> rest =
      flags.Parse(args, /*stop_at_positional=*/true);
  if (!rest.ok()) {
    err << "challengectl: " << rest.status().message() << "\n";
    return kExitRefused;
  }
  if (flags.help_requested() || rest->empty()) {
    (rest->empty() && !flags.help_requested() ? err : out) << flags.Usage();
    return flags.help_requested() ? kExitOk : kExitRefused;
  }
  const std::string command = (*rest)[0];
  const std::vector<std::string> command_args(rest->begin() + 1, rest->end());
  static const auto* const kCommands = new std::map<
      std::string,
      std::function<int(const Globals&, const std::vector<std::string>&, Io)>>{
      {"issue", Issue},
      {"validate", Validate},
      {"revoke", Revoke},
      {"get", Get},
      {"list", List},
      {"keys", Keys},
      {"csr", Csr},
      {"notify", Notify},
      {"stats", Stats},
      {"http-user", HttpUser},
      {"doctor", Doctor},
      {"explain", Explain},
      {"mobileconfig", Mobileconfig}};
  auto it = kCommands->find(command);
  if (it == kCommands->end()) {
    err << "challengectl: unknown command '" << command
        << "' (see challengectl --help)\n";
    return kExitRefused;
  }
  return it->second(g, command_args, io);
}

}  // namespace scepca
