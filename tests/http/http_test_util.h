// File: http_test_util.h
// Helpers for the HTTP endpoint tests: an in-process server fixture, the way
// Fleet and zentral read an NDES page, a raw HTTP exchange that sends exactly
// the bytes a caller sends, and self-signed certificates.
#ifndef SCEPCA_TESTS_HTTP_HTTP_TEST_UTIL_H_
#define SCEPCA_TESTS_HTTP_HTTP_TEST_UTIL_H_

#include <httplib.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "service/core/challenge_authority.h"
#include "service/core/in_memory_challenge_store.h"
#include "service/http/http_server.h"
#include "tests/testing/fake_clock.h"

namespace scepca::testing {

// step-ca's HMAC test vector (shared/docs/integrations.md section 1).
inline constexpr char kDocSecretBase64[] = "c2VjcmV0LWtleS1mb3ItdGVzdHM=";
inline constexpr char kDocSecret[] = "secret-key-for-tests";

// A self-signed EC P-256 certificate.
struct TestCertificate {
  std::string der;
  std::string pem;
  std::string key_pem;
};
TestCertificate MakeSelfSignedCertificate(const std::string& common_name,
                                          uint64_t serial);

// Writes `data` to dir/name with `mode`; returns the path.
std::string WriteTestFile(const std::string& dir, const std::string& name,
                          absl::string_view data, int mode = 0600);

// Decodes an NDES page body as Fleet's decodeHTMLResponse does
// (ee/server/service/scep/scep_proxy.go): UTF-16LE if it starts with the BOM
// FF FE, or with '<' 00, or if >= 90% of the odd bytes of the first 100 are
// 00; otherwise the bytes as they are (UTF-8). Non-ASCII becomes '?'.
std::string DecodeLikeFleet(const std::string& body);
// Decodes as Python's bytes.decode("utf-16") (zentral): the BOM picks the
// byte order (little-endian without one). Non-ASCII becomes '?'.
std::string DecodeLikeZentral(const std::string& body);
// Fleet's regex (?i)The enrollment challenge password is: <B> (\S*);
// returns the capture or "" if it does not match.
std::string ExtractLikeFleet(const std::string& text);
// zentral's regex challenge password is: <B> ([A-Z0-9]{16,32}) </B>.
std::string ExtractLikeZentral(const std::string& text);

// The answer to a raw HTTP request.
struct RawResponse {
  int status = 0;
  std::multimap<std::string, std::string> headers;  // Lower-case names.
  std::string body;  // Gunzipped if Content-Encoding: gzip.
};

// Connects to 127.0.0.1:`port`, sends `request` byte for byte, and reads
// one response (by Content-Length).
absl::StatusOr<RawResponse> RawHttpExchange(int port,
                                            const std::string& request);

// Formats `t` as Go's time.Time JSON does (RFC 3339 with trailing-zero-free
// nanoseconds) in a zone `offset` east of UTC.
std::string GoTimestamp(absl::Time t,
                        absl::Duration offset = absl::ZeroDuration());

// An in-process HTTP server on 127.0.0.1 (a free port) over an in-memory
// authority and a fake clock, with this users file (hash cost 2^10):
//   fleet    password kFleetPassword, ttl=60m, user=alice,
//            label template=wifi, label site=hq
//   viewer   password kViewerPassword, issue=no
//   limited  password kLimitedPassword, quota=2, ttl=15m
// and the step-ca secret of the doc's test vector.
class HttpServerTest : public ::testing::Test {
 protected:
  static constexpr char kFleetPassword[] = "fleet-password-123";
  static constexpr char kViewerPassword[] = "viewer-password-123";
  static constexpr char kLimitedPassword[] = "limited-password-123";

  void SetUp() override;
  void TearDown() override;

  // Starts the server with options_ (tests may change them first).
  void StartServer();
  httplib::Client Client() const;

  // Issues a challenge directly through the authority.
  std::string IssueDirect(const std::string& device_id);

  std::string dir_;
  FakeClock clock_;
  InMemoryChallengeStore store_;
  std::unique_ptr<ChallengeAuthority> authority_;
  HttpServerOptions options_;
  std::unique_ptr<HttpServer> server_;
};

}  // namespace scepca::testing

#endif  // SCEPCA_TESTS_HTTP_HTTP_TEST_UTIL_H_
