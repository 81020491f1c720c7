#include "tests/http/http_test_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <regex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "service/http/http_users.h"
#include "tests/testing/subprocess.h"

namespace scepca::testing {
namespace {

// Turns UTF-16 code units into ASCII ('?' for anything else).
std::string Utf16ToAscii(absl::string_view bytes, bool little_endian) {
  std::string out;
  for (size_t i = 0; i + 1 < bytes.size(); i += 2) {
    const auto lo =
        static_cast<unsigned char>(bytes[little_endian ? i : i + 1]);
    const auto hi =
        static_cast<unsigned char>(bytes[little_endian ? i + 1 : i]);
    const unsigned unit = lo | (hi << 8);
    out.push_back(unit < 0x80 ? static_cast<char>(unit) : '?');
  }
  return out;
}

std::string Gunzip(const std::string& data) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return "";
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  std::string out;
  char buf[4096];
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof(buf) - zs.avail_out);
  }
  inflateEnd(&zs);
  return rc == Z_STREAM_END ? out : "";
}

}  // namespace

TestCertificate MakeSelfSignedCertificate(const std::string& common_name,
                                          uint64_t serial) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  if (key == nullptr || cert == nullptr) std::abort();
  X509_set_version(cert, 2);
  BIGNUM* bn = BN_new();
  BN_set_word(bn, serial);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600L * 24 * 365 * 20);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(
      name, "CN", MBSTRING_UTF8,
      reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509_set_pubkey(cert, key);
  if (X509_sign(cert, key, EVP_sha256()) == 0) std::abort();
  TestCertificate out;
  unsigned char* der = nullptr;
  const int len = i2d_X509(cert, &der);
  out.der.assign(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  out.pem.assign(data, static_cast<size_t>(n));
  BIO_free(bio);
  bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  n = BIO_get_mem_data(bio, &data);
  out.key_pem.assign(data, static_cast<size_t>(n));
  BIO_free(bio);
  X509_free(cert);
  EVP_PKEY_free(key);
  return out;
}

std::string WriteTestFile(const std::string& dir, const std::string& name,
                          absl::string_view data, int mode) {
  const std::string path = absl::StrCat(dir, "/", name);
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();
  std::fwrite(data.data(), 1, data.size(), f);
  std::fclose(f);
  chmod(path.c_str(), static_cast<mode_t>(mode));
  return path;
}

std::string DecodeLikeFleet(const std::string& body) {
  const absl::string_view b = body;
  if (absl::StartsWith(b, "\xFF\xFE")) return Utf16ToAscii(b.substr(2), true);
  if (absl::StartsWith(b, "\xFE\xFF")) return Utf16ToAscii(b.substr(2), false);
  if (b.size() >= 2 && b[0] == '<' && b[1] == '\0') {
    return Utf16ToAscii(b, true);
  }
  int odd = 0, zero = 0;
  for (size_t i = 1; i < b.size() && i < 100; i += 2) {
    ++odd;
    if (b[i] == '\0') ++zero;
  }
  if (odd > 0 && zero * 10 >= odd * 9) return Utf16ToAscii(b, true);
  return body;
}

std::string DecodeLikeZentral(const std::string& body) {
  const absl::string_view b = body;
  if (absl::StartsWith(b, "\xFE\xFF")) return Utf16ToAscii(b.substr(2), false);
  if (absl::StartsWith(b, "\xFF\xFE")) return Utf16ToAscii(b.substr(2), true);
  return Utf16ToAscii(b, true);
}

std::string ExtractLikeFleet(const std::string& text) {
  static const std::regex re("The enrollment challenge password is: <B> (\\S*)",
                             std::regex::icase);
  std::smatch m;
  return std::regex_search(text, m, re) ? m[1].str() : "";
}

std::string ExtractLikeZentral(const std::string& text) {
  static const std::regex re(
      "challenge password is: <B> ([A-Z0-9]{16,32}) </B>");
  std::smatch m;
  return std::regex_search(text, m, re) ? m[1].str() : "";
}

absl::StatusOr<RawResponse> RawHttpExchange(int port,
                                            const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError("socket");
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return absl::UnavailableError("connect");
  }
  size_t off = 0;
  while (off < request.size()) {
    const ssize_t n = send(fd, request.data() + off, request.size() - off, 0);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  std::string in;
  size_t header_end = std::string::npos;
  size_t need = std::string::npos;
  char buf[4096];
  while (true) {
    if (header_end == std::string::npos) {
      header_end = in.find("\r\n\r\n");
      if (header_end != std::string::npos) {
        need = header_end + 4;
        for (absl::string_view line : absl::StrSplit(
                 absl::string_view(in).substr(0, header_end), "\r\n")) {
          size_t length = 0;
          if (absl::StartsWithIgnoreCase(line, "content-length:") &&
              absl::SimpleAtoi(line.substr(15), &length)) {
            need += length;
          }
        }
      }
    }
    if (need != std::string::npos && in.size() >= need) break;
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    in.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  if (header_end == std::string::npos) {
    return absl::DataLossError(absl::StrCat("no response: '", in, "'"));
  }
  RawResponse out;
  std::vector<std::string> lines =
      absl::StrSplit(in.substr(0, header_end), "\r\n");
  std::vector<std::string> status_line = absl::StrSplit(lines[0], ' ');
  if (status_line.size() < 2 ||
      !absl::SimpleAtoi(status_line[1], &out.status)) {
    return absl::DataLossError(absl::StrCat("bad status line: ", lines[0]));
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == std::string::npos) continue;
    out.headers.emplace(
        absl::AsciiStrToLower(lines[i].substr(0, colon)),
        std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1))));
  }
  out.body = in.substr(header_end + 4);
  auto enc = out.headers.find("content-encoding");
  if (enc != out.headers.end() && enc->second == "gzip") {
    out.body = Gunzip(out.body);
  }
  return out;
}

std::string GoTimestamp(absl::Time t, absl::Duration offset) {
  const absl::TimeZone zone =
      absl::FixedTimeZone(static_cast<int>(absl::ToInt64Seconds(offset)));
  std::string s = absl::FormatTime("%Y-%m-%dT%H:%M:%E*S", t, zone);
  if (offset == absl::ZeroDuration()) return absl::StrCat(s, "Z");
  return absl::StrCat(s, absl::FormatTime("%Ez", t, zone));
}

void HttpServerTest::SetUp() {
  dir_ = MakeTempDir();
  absl::StatusOr<std::unique_ptr<ChallengeAuthority>> authority =
      ChallengeAuthority::Create(AuthorityOptions(), &store_, &clock_);
  ASSERT_TRUE(authority.ok()) << authority.status();
  authority_ = *std::move(authority);
  const ScryptParams cheap{.log_n = 10, .r = 8, .p = 1};
  std::string users = "# test users\n";
  for (const auto& [name, password, extra] :
       {std::make_tuple(
            "fleet", kFleetPassword,
            " ttl=60m user=alice label=template=wifi label=site=hq"),
        std::make_tuple("viewer", kViewerPassword, " issue=no"),
        std::make_tuple("limited", kLimitedPassword, " quota=2 ttl=15m")}) {
    absl::StatusOr<std::string> hash = HashPassword(password, cheap);
    ASSERT_TRUE(hash.ok()) << hash.status();
    absl::StrAppend(&users, "user ", name, " ", *hash, extra, "\n");
  }
  options_.listen = "127.0.0.1:0";
  options_.users_file = WriteTestFile(dir_, "users", users);
  options_.stepca_secret_file = WriteTestFile(
      dir_, "stepca-secret", absl::StrCat(kDocSecretBase64, "\n"));
  options_.users_file_options.min_scrypt_log_n = 10;
  options_.clock = &clock_;
  options_.threads = 4;
}

void HttpServerTest::TearDown() {
  if (server_ != nullptr) server_->Stop();
  server_.reset();
}

void HttpServerTest::StartServer() {
  absl::StatusOr<std::unique_ptr<HttpServer>> server =
      HttpServer::Start(options_, authority_.get());
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = *std::move(server);
}

httplib::Client HttpServerTest::Client() const {
  httplib::Client client("127.0.0.1", server_->port());
  client.set_connection_timeout(5);
  client.set_read_timeout(5);
  return client;
}

std::string HttpServerTest::IssueDirect(const std::string& device_id) {
  IssueRequest request;
  request.device_id = device_id;
  request.labels = {{"profile", "wifi"}};
  absl::StatusOr<IssueResult> result = authority_->Issue(request);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? result->challenge : "";
}

}  // namespace scepca::testing
