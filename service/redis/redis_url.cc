#include "service/redis/redis_url.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace scepca {
namespace {

constexpr absl::string_view kTcpScheme = "redis://";
constexpr absl::string_view kUnixScheme = "unix://";
constexpr absl::string_view kSentinelScheme = "redis-sentinel://";
constexpr absl::string_view kClusterScheme = "redis-cluster://";

absl::Status UrlError(absl::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat("bad Redis URL: ", problem,
                   " (expected redis://[user:password@]host:port[/db], "
                   "unix:///path/to/redis.sock[?db=N], "
                   "redis-sentinel://[user:password@]host:port,.../MASTER"
                   "[?db=N] or redis-cluster://[user:password@]host:port,"
                   "...)"));
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes %XX escapes; `what` names the part in errors.
absl::StatusOr<std::string> PercentDecode(absl::string_view in,
                                          absl::string_view what) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) {
      return UrlError(absl::StrCat("truncated %-escape in the ", what));
    }
    const int high = HexValue(in[i + 1]);
    const int low = HexValue(in[i + 2]);
    if (high < 0 || low < 0) {
      return UrlError(absl::StrCat("bad %-escape in the ", what));
    }
    out.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return out;
}

bool HasControlOrSpace(absl::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const unsigned char u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f;
  });
}

absl::StatusOr<int> ParseDb(absl::string_view text) {
  int db = 0;
  if (text.empty() || text.size() > 9 ||
      !std::all_of(text.begin(), text.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(text, &db)) {
    return UrlError("the database must be a non-negative integer");
  }
  return db;
}

// Splits "user:password@rest" into the credentials and "rest".
absl::Status ParseUserInfo(absl::string_view* rest, RedisUrl* url) {
  // The user info ends at the last '@' before the first '/' (a raw '@' in a
  // password is accepted, though it should be written %40).
  const size_t slash = rest->find('/');
  const absl::string_view authority = rest->substr(0, slash);
  const size_t at = authority.rfind('@');
  if (at == absl::string_view::npos) return absl::OkStatus();
  const absl::string_view userinfo = authority.substr(0, at);
  rest->remove_prefix(at + 1);
  const size_t colon = userinfo.find(':');
  if (colon == absl::string_view::npos) {
    // "redis://password@host" is ambiguous; Redis URLs put the password
    // after a colon. Refuse rather than send a password as a user name.
    return UrlError(
        "user info without ':' (write user:password@ or :password@)");
  }
  absl::StatusOr<std::string> user =
      PercentDecode(userinfo.substr(0, colon), "user");
  if (!user.ok()) return user.status();
  absl::StatusOr<std::string> password =
      PercentDecode(userinfo.substr(colon + 1), "password");
  if (!password.ok()) return password.status();
  if (password->empty()) return UrlError("empty password after ':'");
  if (HasControlOrSpace(*user)) {
    return UrlError("the user contains spaces or control characters");
  }
  url->user = *std::move(user);
  url->password = *std::move(password);
  url->has_password = true;
  return absl::OkStatus();
}

// Parses "host[:port]" or "[v6]:port" into url->host and url->port (left
// as is without a port).
absl::Status ParseHostPort(absl::string_view hostport, RedisUrl* out) {
  RedisUrl& url = *out;
  absl::string_view port_text;
  if (absl::StartsWith(hostport, "[")) {
    const size_t close = hostport.find(']');
    if (close == absl::string_view::npos) {
      return UrlError("IPv6 host without closing ']'");
    }
    url.host = std::string(hostport.substr(1, close - 1));
    absl::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return UrlError("junk after the IPv6 host");
      port_text = after.substr(1);
      if (port_text.empty()) return UrlError("empty port after ':'");
    }
    in6_addr addr;
    if (inet_pton(AF_INET6, url.host.c_str(), &addr) != 1) {
      return UrlError("the bracketed host is not an IPv6 address");
    }
  } else {
    const size_t colon = hostport.rfind(':');
    url.host = std::string(hostport.substr(0, colon));
    if (colon != absl::string_view::npos) {
      port_text = hostport.substr(colon + 1);
      if (port_text.empty()) return UrlError("empty port after ':'");
    }
    if (url.host.find(':') != std::string::npos) {
      return UrlError("an IPv6 host must be written in brackets");
    }
  }
  if (url.host.empty()) return UrlError("missing host");
  if (HasControlOrSpace(url.host) || url.host.find('%') != std::string::npos) {
    return UrlError("the host contains spaces, control characters or '%'");
  }
  if (!port_text.empty()) {
    int port = 0;
    if (port_text.size() > 5 ||
        !std::all_of(port_text.begin(), port_text.end(), absl::ascii_isdigit) ||
        !absl::SimpleAtoi(port_text, &port) || port < 1 || port > 65535) {
      return UrlError("the port must be a number from 1 to 65535");
    }
    url.port = port;
  }
  return absl::OkStatus();
}

absl::StatusOr<RedisUrl> ParseTcp(absl::string_view rest) {
  RedisUrl url;
  url.transport = RedisUrl::Transport::kTcp;
  if (absl::Status s = ParseUserInfo(&rest, &url); !s.ok()) return s;
  if (rest.find('?') != absl::string_view::npos) {
    return UrlError("redis:// URLs take the database as a path (/N), not ?");
  }
  const size_t slash = rest.find('/');
  absl::string_view hostport = rest.substr(0, slash);
  if (slash != absl::string_view::npos) {
    absl::string_view path = rest.substr(slash + 1);
    if (!path.empty()) {
      absl::StatusOr<int> db = ParseDb(path);
      if (!db.ok()) return db.status();
      url.db = *db;
    }
  }
  if (absl::Status s = ParseHostPort(hostport, &url); !s.ok()) return s;
  return url;
}

// Parses "host:port,host:port,..." after the user info of a Sentinel or
// Cluster URL into one RedisUrl per host, each with `credentials`' user,
// password and db.
absl::StatusOr<std::vector<RedisUrl>> ParseHostList(
    absl::string_view list, int default_port, const RedisUrl& credentials) {
  std::vector<RedisUrl> hosts;
  if (list.empty()) return UrlError("missing host list");
  size_t start = 0;
  while (true) {
    const size_t comma = list.find(',', start);
    absl::string_view hostport = list.substr(
        start, comma == absl::string_view::npos ? absl::string_view::npos
                                                : comma - start);
    if (hostport.empty()) return UrlError("empty host in the host list");
    RedisUrl host = credentials;
    host.transport = RedisUrl::Transport::kTcp;
    host.port = default_port;
    if (absl::Status s = ParseHostPort(hostport, &host); !s.ok()) return s;
    hosts.push_back(std::move(host));
    if (hosts.size() > 64) return UrlError("more than 64 hosts");
    if (comma == absl::string_view::npos) break;
    start = comma + 1;
  }
  return hosts;
}

bool IsMasterNameChar(char c) {
  return absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-';
}

absl::StatusOr<RedisDeployment> ParseSentinel(absl::string_view rest) {
  RedisDeployment d;
  d.kind = RedisDeployment::Kind::kSentinel;
  d.server.transport = RedisUrl::Transport::kTcp;
  if (absl::Status s = ParseUserInfo(&rest, &d.server); !s.ok()) return s;
  const size_t slash = rest.find('/');
  if (slash == absl::string_view::npos) {
    return UrlError("redis-sentinel:// needs the master name: /MASTER_NAME");
  }
  absl::string_view path = rest.substr(slash + 1);
  const size_t question = path.find('?');
  absl::string_view name = path.substr(0, question);
  if (question != absl::string_view::npos) {
    absl::string_view query = path.substr(question + 1);
    if (!absl::StartsWith(query, "db=")) {
      return UrlError("the only query parameter allowed is db=N");
    }
    absl::StatusOr<int> db = ParseDb(query.substr(3));
    if (!db.ok()) return db.status();
    d.server.db = *db;
  }
  if (name.empty() || name.size() > 128 ||
      !std::all_of(name.begin(), name.end(), IsMasterNameChar)) {
    return UrlError(
        "the master name must be 1-128 letters, digits, '.', '_' or '-'");
  }
  d.master_name = std::string(name);
  absl::StatusOr<std::vector<RedisUrl>> hosts =
      ParseHostList(rest.substr(0, slash), 26379, d.server);
  if (!hosts.ok()) return hosts.status();
  d.hosts = *std::move(hosts);
  return d;
}

absl::StatusOr<RedisDeployment> ParseCluster(absl::string_view rest) {
  RedisDeployment d;
  d.kind = RedisDeployment::Kind::kCluster;
  d.server.transport = RedisUrl::Transport::kTcp;
  if (absl::Status s = ParseUserInfo(&rest, &d.server); !s.ok()) return s;
  if (rest.find('?') != absl::string_view::npos) {
    return UrlError("redis-cluster:// URLs take no query parameters");
  }
  const size_t slash = rest.find('/');
  if (slash != absl::string_view::npos && slash + 1 < rest.size()) {
    return UrlError("Redis Cluster has only database 0: remove the /db");
  }
  absl::StatusOr<std::vector<RedisUrl>> hosts =
      ParseHostList(rest.substr(0, slash), 6379, d.server);
  if (!hosts.ok()) return hosts.status();
  d.hosts = *std::move(hosts);
  return d;
}

absl::StatusOr<RedisUrl> ParseUnix(absl::string_view rest) {
  RedisUrl url;
  url.transport = RedisUrl::Transport::kUnix;
  url.port = 0;
  if (!absl::StartsWith(rest, "/")) {
    if (absl::Status s = ParseUserInfo(&rest, &url); !s.ok()) return s;
  }
  const size_t question = rest.find('?');
  absl::string_view path = rest.substr(0, question);
  if (question != absl::string_view::npos) {
    absl::string_view query = rest.substr(question + 1);
    if (!absl::StartsWith(query, "db=")) {
      return UrlError("the only query parameter allowed is db=N");
    }
    absl::StatusOr<int> db = ParseDb(query.substr(3));
    if (!db.ok()) return db.status();
    url.db = *db;
  }
  if (path.empty()) return UrlError("missing socket path");
  if (!absl::StartsWith(path, "/")) {
    return UrlError("the socket path must be absolute (unix:///path)");
  }
  if (absl::EndsWith(path, "/")) {
    return UrlError("the socket path names a directory");
  }
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return UrlError(absl::StrCat("the socket path is longer than ",
                                 sizeof(sockaddr_un{}.sun_path) - 1, " bytes"));
  }
  if (HasControlOrSpace(path)) {
    return UrlError("the socket path contains spaces or control characters");
  }
  url.socket_path = std::string(path);
  return url;
}

}  // namespace

std::string RedisUrl::Redacted() const {
  if (transport == Transport::kUnix) {
    return absl::StrCat("unix://", socket_path, "?db=", db);
  }
  const bool ipv6 = host.find(':') != std::string::npos;
  return absl::StrCat("redis://", ipv6 ? "[" : "", host, ipv6 ? "]" : "", ":",
                      port, "/", db);
}

absl::StatusOr<RedisUrl> ParseRedisUrl(absl::string_view url) {
  if (url.empty()) return UrlError("empty URL");
  if (url.find('#') != absl::string_view::npos) {
    return UrlError("fragments (#) are not allowed");
  }
  if (absl::StartsWith(url, kTcpScheme)) {
    return ParseTcp(url.substr(kTcpScheme.size()));
  }
  if (absl::StartsWith(url, kUnixScheme)) {
    return ParseUnix(url.substr(kUnixScheme.size()));
  }
  if (absl::StartsWith(url, "rediss://")) {
    return UrlError(
        "TLS (rediss://) is not supported by hiredis 0.14; use a unix socket "
        "or a local TLS tunnel");
  }
  return UrlError("unknown scheme");
}

std::string RedisDeployment::Redacted() const {
  if (kind == Kind::kStandalone) return server.Redacted();
  std::string out =
      kind == Kind::kSentinel ? "redis-sentinel://" : "redis-cluster://";
  for (size_t i = 0; i < hosts.size(); ++i) {
    const bool ipv6 = hosts[i].host.find(':') != std::string::npos;
    absl::StrAppend(&out, i == 0 ? "" : ",", ipv6 ? "[" : "", hosts[i].host,
                    ipv6 ? "]" : "", ":", hosts[i].port);
  }
  if (kind == Kind::kSentinel) {
    absl::StrAppend(&out, "/", master_name, "?db=", server.db);
  }
  return out;
}

absl::StatusOr<RedisDeployment> ParseRedisDeployment(absl::string_view url) {
  if (url.find('#') != absl::string_view::npos) {
    return UrlError("fragments (#) are not allowed");
  }
  if (absl::StartsWith(url, kSentinelScheme)) {
    return ParseSentinel(url.substr(kSentinelScheme.size()));
  }
  if (absl::StartsWith(url, kClusterScheme)) {
    return ParseCluster(url.substr(kClusterScheme.size()));
  }
  absl::StatusOr<RedisUrl> server = ParseRedisUrl(url);
  if (!server.ok()) return server.status();
  RedisDeployment d;
  d.server = *std::move(server);
  return d;
}

absl::StatusOr<std::vector<std::string>> ResolveRedisHost(
    absl::string_view host) {
  const std::string name(host);
  in_addr v4;
  in6_addr v6;
  if (inet_pton(AF_INET, name.c_str(), &v4) == 1 ||
      inet_pton(AF_INET6, name.c_str(), &v6) == 1) {
    return std::vector<std::string>{name};
  }
  addrinfo hints;
  std::memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* results = nullptr;
  const int rc = getaddrinfo(name.c_str(), nullptr, &hints, &results);
  if (rc != 0) {
    return absl::UnavailableError(absl::StrCat("cannot resolve Redis host ",
                                               name, ": ", gai_strerror(rc)));
  }
  std::vector<std::string> v4_addresses;
  std::vector<std::string> v6_addresses;
  for (addrinfo* ai = results; ai != nullptr; ai = ai->ai_next) {
    char text[INET6_ADDRSTRLEN] = {0};
    if (ai->ai_family == AF_INET) {
      const auto* sa = reinterpret_cast<const sockaddr_in*>(ai->ai_addr);
      inet_ntop(AF_INET, &sa->sin_addr, text, sizeof(text));
      v4_addresses.emplace_back(text);
    } else if (ai->ai_family == AF_INET6) {
      const auto* sa = reinterpret_cast<const sockaddr_in6*>(ai->ai_addr);
      inet_ntop(AF_INET6, &sa->sin6_addr, text, sizeof(text));
      v6_addresses.emplace_back(text);
    }
  }
  freeaddrinfo(results);
  std::vector<std::string> addresses;
  for (std::vector<std::string>* list : {&v4_addresses, &v6_addresses}) {
    for (std::string& a : *list) {
      if (addresses.size() < 4 &&
          std::find(addresses.begin(), addresses.end(), a) == addresses.end()) {
        addresses.push_back(std::move(a));
      }
    }
  }
  if (addresses.empty()) {
    return absl::UnavailableError(
        absl::StrCat("Redis host ", name, " has no IPv4 or IPv6 address"));
  }
  return addresses;
}

}  // namespace scepca
