#include "client/doctor.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs7.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/types/optional.h"
#include "google/protobuf/util/time_util.h"

namespace scepca {
namespace doctor_internal {
namespace {

namespace v1 = ::scep::challenge::v1;

// The largest GetCACaps / GetCACert answer read.
constexpr size_t kMaxBodyBytes = 1 << 20;
// Apple's limits for TLS server certificates.
constexpr int64_t kMaxDays = 825;
constexpr int64_t kMaxDaysPublic = 398;
constexpr int64_t kSecondsPerDay = 86400;
// Warn when a certificate expires within this many days.
constexpr int64_t kExpiryWarningDays = 30;

struct Free {
  void operator()(X509* p) const { X509_free(p); }
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
  void operator()(STACK_OF(X509) * p) const { sk_X509_pop_free(p, X509_free); }
  void operator()(PKCS7* p) const { PKCS7_free(p); }
  void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
  void operator()(SSL* p) const { SSL_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
  void operator()(RSA_PSS_PARAMS* p) const { RSA_PSS_PARAMS_free(p); }
};
template <typename T>
using Ptr = std::unique_ptr<T, Free>;

Check Pass(std::string id, std::string message) {
  return Check{std::move(id), CheckStatus::kPass, std::move(message), ""};
}
Check Warn(std::string id, std::string message, std::string advice) {
  return Check{std::move(id), CheckStatus::kWarn, std::move(message),
               std::move(advice)};
}
Check Fail(std::string id, std::string message, std::string advice) {
  return Check{std::move(id), CheckStatus::kFail, std::move(message),
               std::move(advice)};
}

// Keeps printable ASCII of text that came from the network.
std::string Printable(absl::string_view text, size_t max = 200) {
  std::string out;
  for (char c : text.substr(0, max)) {
    const unsigned char u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
  }
  if (text.size() > max) out += "...";
  return out;
}

std::string OpenSslError() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "no detail from OpenSSL";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

bool IsIpLiteral(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 ||
         inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

absl::optional<absl::Time> AsnTime(const ASN1_TIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return absl::nullopt;
  return absl::FromTimeT(timegm(&tm));
}

std::string Day(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d", t, absl::UTCTimeZone());
}

// Apple's dates: the 825-day and EKU rules apply to certificates issued
// after 2019-07-01, the 398-day rule to those issued on or after 2020-09-01
// (both 00:00 UTC).
constexpr absl::Time kAppleRules2019 = absl::FromUnixSeconds(1561939200);
constexpr absl::Time kAppleRules2020 = absl::FromUnixSeconds(1598918400);

std::string Name(X509* cert) {
  Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0,
                     XN_FLAG_RFC2253);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  std::string name(data, static_cast<size_t>(n > 0 ? n : 0));
  return name.empty() ? "(empty subject)" : Printable(name);
}

bool SelfSigned(X509* cert) {
  return (X509_get_extension_flags(cert) & EXFLAG_SS) != 0;
}

std::string Der(X509* cert) {
  unsigned char* out = nullptr;
  const int n = i2d_X509(cert, &out);
  if (n <= 0) return "";
  std::string der(reinterpret_cast<char*>(out), static_cast<size_t>(n));
  OPENSSL_free(out);
  return der;
}

Ptr<X509> ParseDer(absl::string_view der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  Ptr<X509> cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  return cert;
}

std::string Hex(const unsigned char* data, size_t n, bool colons) {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    if (colons && i > 0) out.push_back(':');
    absl::StrAppendFormat(&out, "%02X", data[i]);
  }
  return out;
}

std::string Digest(const EVP_MD* md, X509* cert) {
  unsigned char buf[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(cert, md, buf, &n) != 1) return "";
  return std::string(reinterpret_cast<char*>(buf), n);
}

// "RSA 2048", "EC 256", ...
std::string KeyText(X509* cert, int* rsa_bits) {
  *rsa_bits = 0;
  EVP_PKEY* key = X509_get0_pubkey(cert);
  if (key == nullptr) return "unreadable key";
  const int bits = EVP_PKEY_get_bits(key);
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS:
      *rsa_bits = bits;
      return absl::StrCat("RSA ", bits);
    case EVP_PKEY_EC:
      return absl::StrCat("EC ", bits);
    default:
      return absl::StrCat(OBJ_nid2sn(EVP_PKEY_get_base_id(key)), " ", bits);
  }
}

bool IsSha2(int md_nid) {
  return md_nid == NID_sha224 || md_nid == NID_sha256 || md_nid == NID_sha384 ||
         md_nid == NID_sha512 || md_nid == NID_sha512_224 ||
         md_nid == NID_sha512_256;
}

// The hash of the certificate's signature; NID_undef if there is none
// (EdDSA) or it cannot be told.
int SignatureHash(X509* cert) {
  const int sig_nid = X509_get_signature_nid(cert);
  if (sig_nid == NID_rsassaPss) {
    const X509_ALGOR* alg = nullptr;
    X509_get0_signature(nullptr, &alg, cert);
    const ASN1_OBJECT* obj = nullptr;
    int ptype = 0;
    const void* pval = nullptr;
    X509_ALGOR_get0(&obj, &ptype, &pval, alg);
    if (ptype != V_ASN1_SEQUENCE) return NID_sha1;  // Default parameters.
    Ptr<RSA_PSS_PARAMS> pss(static_cast<RSA_PSS_PARAMS*>(
        ASN1_item_unpack(static_cast<const ASN1_STRING*>(pval),
                         ASN1_ITEM_rptr(RSA_PSS_PARAMS))));
    if (pss == nullptr) return NID_undef;
    if (pss->hashAlgorithm == nullptr) return NID_sha1;
    return OBJ_obj2nid(pss->hashAlgorithm->algorithm);
  }
  int md_nid = NID_undef;
  int pk_nid = NID_undef;
  if (OBJ_find_sigid_algs(sig_nid, &md_nid, &pk_nid) != 1) return NID_undef;
  return md_nid;
}

std::vector<std::string> DnsSans(X509* cert) {
  std::vector<std::string> out;
  Ptr<GENERAL_NAMES> names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type != GEN_DNS) continue;
    const ASN1_IA5STRING* s = name->d.dNSName;
    out.push_back(Printable(absl::string_view(
        reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
        static_cast<size_t>(ASN1_STRING_length(s)))));
  }
  return out;
}

absl::StatusOr<Ptr<X509_STORE>> LoadStore(const std::string& scep_ca_file) {
  Ptr<X509_STORE> store(X509_STORE_new());
  if (store == nullptr) return absl::InternalError("X509_STORE_new failed");
  if (scep_ca_file.empty()) {
    X509_STORE_set_default_paths(store.get());
    ERR_clear_error();
    return store;
  }
  if (X509_STORE_load_file(store.get(), scep_ca_file.c_str()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--scep-ca ", scep_ca_file,
                     ": cannot load PEM certificates: ", OpenSslError()));
  }
  return store;
}

struct Verification {
  bool ok = false;
  std::string error;
  Ptr<STACK_OF(X509)> chain;  // The chain built (also partial on failure).
};

// Verifies `leaf` with `untrusted` against `store` at `now`, for `host`
// unless it is "". Names in the subject CN never count (Apple's rule).
Verification Verify(X509* leaf, STACK_OF(X509) * untrusted, X509_STORE* store,
                    const std::string& host, absl::Time now) {
  Verification v;
  Ptr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
  if (ctx == nullptr ||
      X509_STORE_CTX_init(ctx.get(), store, leaf, untrusted) != 1) {
    v.error = OpenSslError();
    return v;
  }
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER);
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_time(param, absl::ToTimeT(now));
  if (!host.empty()) {
    if (IsIpLiteral(host)) {
      X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
    } else {
      X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
      X509_VERIFY_PARAM_set_hostflags(param,
                                      X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
    }
  }
  v.ok = X509_verify_cert(ctx.get()) == 1;
  if (!v.ok) {
    v.error =
        X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
  }
  v.chain.reset(X509_STORE_CTX_get1_chain(ctx.get()));
  ERR_clear_error();
  return v;
}

Check CheckSanDnsName(X509* leaf, const std::string& host) {
  const std::string id = "tls.san-dns-name";
  const std::vector<std::string> dns = DnsSans(leaf);
  const std::string listed =
      dns.empty() ? "no DNS names"
                  : absl::StrCat("DNS ", absl::StrJoin(dns, ", "));
  if (IsIpLiteral(host)) {
    if (X509_check_ip_asc(leaf, host.c_str(), 0) == 1) {
      return Pass(id, absl::StrCat(host,
                                   " is an IP address and is in the "
                                   "subjectAltName as one"));
    }
    return Fail(id,
                absl::StrCat("the URL's host ", host,
                             " is an IP address the subjectAltName does not "
                             "list (it has ",
                             listed, ")"),
                "use a DNS name in the SCEP URL and put it in the "
                "certificate's subjectAltName");
  }
  if (X509_check_host(leaf, host.c_str(), host.size(),
                      X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, nullptr) == 1) {
    return Pass(id,
                absl::StrCat(host, " is in the subjectAltName (", listed, ")"));
  }
  const std::string advice = absl::StrCat(
      "reissue the certificate with DNS:", host,
      " in the subjectAltName; Apple devices ignore DNS names in the CN");
  if (dns.empty() &&
      X509_check_host(leaf, host.c_str(), host.size(), 0, nullptr) == 1) {
    return Fail(id,
                absl::StrCat(host,
                             " is only in the subject CN: the certificate "
                             "has no DNS name in its subjectAltName"),
                advice);
  }
  return Fail(id,
              absl::StrCat("the certificate does not name ", host,
                           " in its subjectAltName (it has ", listed,
                           "; subject ", Name(leaf), ")"),
              advice);
}

Check CheckValidity(X509* leaf, bool public_root, absl::Time now) {
  const std::string id = "tls.validity";
  absl::optional<absl::Time> nb = AsnTime(X509_get0_notBefore(leaf));
  absl::optional<absl::Time> na = AsnTime(X509_get0_notAfter(leaf));
  if (!nb.has_value() || !na.has_value()) {
    return Fail(id, "the certificate's validity dates cannot be read",
                "reissue the certificate");
  }
  const int64_t seconds = absl::ToInt64Seconds(*na - *nb);
  const int64_t days = seconds / kSecondsPerDay;
  const std::string span =
      absl::StrCat(days, " days, ", Day(*nb), " to ", Day(*na));
  const std::string reissue =
      absl::StrCat("reissue it valid for at most ", kMaxDaysPublic,
                   " days (the limit for public CAs; ", kMaxDays,
                   " days is the limit for every CA)");
  if (now < *nb) {
    return Fail(id, absl::StrCat("not valid yet (", span, ")"),
                "check the server's and the CA's clocks, or reissue it");
  }
  if (now > *na) {
    return Fail(id, absl::StrCat("expired on ", Day(*na), " (", span, ")"),
                "renew the server certificate");
  }
  if (*nb >= kAppleRules2019 && seconds > kMaxDays * kSecondsPerDay) {
    return Fail(id,
                absl::StrCat("valid ", span, ": longer than the ", kMaxDays,
                             " days Apple devices accept"),
                reissue);
  }
  if (*nb >= kAppleRules2020 && seconds > kMaxDaysPublic * kSecondsPerDay) {
    if (public_root) {
      return Fail(id,
                  absl::StrCat("valid ", span,
                               ": it chains to a public root, and Apple "
                               "accepts at most ",
                               kMaxDaysPublic,
                               " days for those when issued since "
                               "2020-09-01"),
                  reissue);
    }
    return Warn(id,
                absl::StrCat("valid ", span, ": over ", kMaxDaysPublic,
                             " days, which Apple accepts only because the "
                             "root is not a public (preinstalled) one"),
                absl::StrCat("keep it at most ", kMaxDaysPublic,
                             " days so that it stays valid if the CA ever "
                             "chains to a public root"));
  }
  const int64_t left = absl::ToInt64Seconds(*na - now) / kSecondsPerDay;
  if (left < kExpiryWarningDays) {
    return Warn(id, absl::StrCat("expires in ", left, " days (", span, ")"),
                "renew the server certificate");
  }
  return Pass(id, absl::StrCat("valid ", span));
}

Check CheckKeySizes(const std::vector<X509*>& chain) {
  const std::string id = "tls.key-size";
  std::vector<std::string> found, weak;
  for (size_t i = 0; i < chain.size(); ++i) {
    int rsa_bits = 0;
    const std::string key = KeyText(chain[i], &rsa_bits);
    const std::string who = i == 0 ? "leaf" : Name(chain[i]);
    found.push_back(absl::StrCat(who, ": ", key));
    if (rsa_bits > 0 && rsa_bits < 2048) {
      weak.push_back(absl::StrCat(who, " (", key, ")"));
    }
  }
  if (!weak.empty()) {
    return Fail(
        id,
        absl::StrCat("RSA keys under 2048 bits: ", absl::StrJoin(weak, "; ")),
        "reissue these certificates with RSA keys of 2048 bits or "
        "more (or EC P-256)");
  }
  return Pass(id, absl::StrJoin(found, "; "));
}

Check CheckSignatures(const std::vector<X509*>& chain) {
  const std::string id = "tls.signature";
  std::vector<std::string> found, bad;
  for (size_t i = 0; i < chain.size(); ++i) {
    if (SelfSigned(chain[i])) continue;  // A root's own signature is moot.
    const std::string who = i == 0 ? "leaf" : Name(chain[i]);
    const int md = SignatureHash(chain[i]);
    const std::string alg =
        OBJ_nid2ln(X509_get_signature_nid(chain[i])) != nullptr
            ? OBJ_nid2ln(X509_get_signature_nid(chain[i]))
            : "unknown";
    found.push_back(absl::StrCat(who, ": ", alg));
    if (!IsSha2(md)) bad.push_back(absl::StrCat(who, " (", alg, ")"));
  }
  if (!bad.empty()) {
    return Fail(id,
                absl::StrCat("not signed with a SHA-2 hash: ",
                             absl::StrJoin(bad, "; ")),
                "reissue these certificates with a SHA-256 (or stronger) "
                "signature");
  }
  if (found.empty()) {
    return Pass(id, "self-signed: no issuer signature to check");
  }
  return Pass(id, absl::StrJoin(found, "; "));
}

Check CheckServerAuthEku(X509* leaf) {
  const std::string id = "tls.eku-server-auth";
  const bool has_eku = (X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE) != 0;
  absl::optional<absl::Time> nb = AsnTime(X509_get0_notBefore(leaf));
  const bool rule_applies = nb.has_value() && *nb >= kAppleRules2019;
  const std::string advice =
      "reissue the certificate with extendedKeyUsage = serverAuth";
  if (!has_eku) {
    if (!rule_applies) {
      return Warn(id,
                  "no extendedKeyUsage extension (tolerated by Apple only "
                  "for certificates issued before 2019-07-01)",
                  advice);
    }
    return Fail(id, "no extendedKeyUsage extension", advice);
  }
  if ((X509_get_extended_key_usage(leaf) & XKU_SSL_SERVER) == 0) {
    return Fail(id, "the extendedKeyUsage does not include serverAuth", advice);
  }
  return Pass(id, "extendedKeyUsage includes serverAuth");
}

std::string ParseStatusText(int status) {
  return absl::StrCat("HTTP ", status);
}

}  // namespace

absl::StatusOr<ScepUrl> ParseScepUrl(absl::string_view url) {
  ScepUrl out;
  absl::string_view rest = url;
  if (absl::ConsumePrefix(&rest, "https://")) {
    out.scheme = "https";
    out.port = 443;
  } else if (absl::ConsumePrefix(&rest, "http://")) {
    out.scheme = "http";
    out.port = 80;
  } else {
    return absl::InvalidArgumentError(
        "--scep-url must start with http:// or https://");
  }
  const size_t end = rest.find_first_of("/?#");
  absl::string_view authority = rest.substr(0, end);
  absl::string_view path =
      end == absl::string_view::npos ? "" : rest.substr(end);
  if (absl::StrContains(authority, '@')) {
    return absl::InvalidArgumentError(
        "--scep-url must not carry a user name or password");
  }
  absl::string_view port_text;
  if (absl::ConsumePrefix(&authority, "[")) {
    const size_t close = authority.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError("--scep-url: unterminated '['");
    }
    out.host = std::string(authority.substr(0, close));
    absl::string_view after = authority.substr(close + 1);
    if (!after.empty() && !absl::ConsumePrefix(&after, ":")) {
      return absl::InvalidArgumentError("--scep-url: bad host");
    }
    port_text = after;
  } else {
    const size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != absl::string_view::npos) {
      port_text = authority.substr(colon + 1);
    }
  }
  if (out.host.empty()) {
    return absl::InvalidArgumentError("--scep-url has no host");
  }
  if (!port_text.empty()) {
    int port = 0;
    if (!absl::SimpleAtoi(port_text, &port) || port <= 0 || port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("--scep-url: bad port '", port_text, "'"));
    }
    out.port = port;
  }
  const size_t fragment = path.find('#');
  if (fragment != absl::string_view::npos) path = path.substr(0, fragment);
  out.path = std::string(path);
  if (out.path.empty() || out.path[0] == '?') out.path.insert(0, "/");
  return out;
}

absl::StatusOr<std::string> ParseFingerprint(absl::string_view hex) {
  std::string digits;
  for (char c : hex) {
    if (c == ':' || c == ' ' || c == '-') continue;
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(
          "--ca-fingerprint must be hex (colons and spaces allowed)");
    }
    digits.push_back(c);
  }
  if (digits.size() != 64 && digits.size() != 40 && digits.size() != 32) {
    return absl::InvalidArgumentError(
        "--ca-fingerprint must be a SHA-256 (64 hex digits), SHA-1 (40) or "
        "MD5 (32) digest of the CA certificate");
  }
  std::string bytes;
  for (size_t i = 0; i < digits.size(); i += 2) {
    int v = 0;
    for (size_t j = i; j < i + 2; ++j) {
      const char c = absl::ascii_tolower(static_cast<unsigned char>(digits[j]));
      v = v * 16 + (c <= '9' ? c - '0' : c - 'a' + 10);
    }
    bytes.push_back(static_cast<char>(v));
  }
  return bytes;
}

std::vector<Check> CheckTlsChain(const std::vector<std::string>& chain_der,
                                 const std::string& host,
                                 const std::string& scep_ca_file,
                                 absl::Time now) {
  std::vector<Ptr<X509>> owned;
  for (const std::string& der : chain_der) {
    Ptr<X509> cert = ParseDer(der);
    if (cert != nullptr) owned.push_back(std::move(cert));
  }
  if (owned.empty()) {
    return {Fail("tls.trust", "the server sent no readable certificate",
                 "configure the server's TLS certificate")};
  }
  X509* leaf = owned[0].get();
  Ptr<STACK_OF(X509)> untrusted(sk_X509_new_null());
  for (size_t i = 1; i < owned.size(); ++i) {
    X509_up_ref(owned[i].get());
    sk_X509_push(untrusted.get(), owned[i].get());
  }

  // Trust: against --scep-ca or the system store, for the host.
  absl::StatusOr<Ptr<X509_STORE>> store = LoadStore(scep_ca_file);
  Verification trust;
  if (store.ok()) {
    trust = Verify(leaf, untrusted.get(), store->get(), host, now);
  } else {
    trust.error = std::string(store.status().message());
  }
  // Public: the chain (names aside) verifies against the system store.
  bool public_root = false;
  if (!scep_ca_file.empty() || !trust.ok) {
    absl::StatusOr<Ptr<X509_STORE>> system = LoadStore("");
    if (system.ok()) {
      public_root = Verify(leaf, untrusted.get(), system->get(), "", now).ok;
    }
  } else {
    public_root = true;
  }

  // The rules look at the chain as verified (with its root) when there is
  // one, else at what the server sent.
  std::vector<X509*> chain;
  if (trust.ok && trust.chain != nullptr) {
    for (int i = 0; i < sk_X509_num(trust.chain.get()); ++i) {
      chain.push_back(sk_X509_value(trust.chain.get(), i));
    }
  } else {
    for (const Ptr<X509>& c : owned) chain.push_back(c.get());
  }

  std::vector<Check> checks;
  checks.push_back(CheckSanDnsName(leaf, host));
  checks.push_back(CheckValidity(leaf, public_root, now));
  checks.push_back(CheckKeySizes(chain));
  checks.push_back(CheckSignatures(chain));
  checks.push_back(CheckServerAuthEku(leaf));
  const std::string anchors = scep_ca_file.empty()
                                  ? std::string("the system trust store")
                                  : absl::StrCat("--scep-ca ", scep_ca_file);
  if (trust.ok) {
    checks.push_back(
        Pass("tls.trust",
             absl::StrCat("the chain (", chain.size(),
                          chain.size() == 1 ? " certificate" : " certificates",
                          ") verifies for ", host, " against ", anchors)));
  } else {
    std::string advice =
        scep_ca_file.empty()
            ? "devices must trust the issuing root: use a public CA, or "
              "install the root on the devices (a certificate payload); to "
              "check against that root here, pass it with --scep-ca"
            : "check that --scep-ca holds the root the devices trust and "
              "that the server sends its intermediate certificates";
    if (owned.size() == 1 && !SelfSigned(leaf)) {
      absl::StrAppend(&advice,
                      " (the server sent only its own certificate: "
                      "configure it to send the intermediates too)");
    }
    checks.push_back(Fail("tls.trust",
                          absl::StrCat("the chain does not verify for ", host,
                                       " against ", anchors, ": ", trust.error),
                          advice));
  }
  return checks;
}

std::vector<Check> CheckCaCaps(int http_status, absl::string_view body) {
  std::vector<Check> checks;
  std::vector<std::string> caps;
  bool usable = http_status == 200;
  if (!usable) {
    checks.push_back(
        Fail("caps.list",
             absl::StrCat("GetCACaps answered ", ParseStatusText(http_status)),
             "check the SCEP URL (the path the server serves SCEP on) and "
             "the server's log"));
  } else if (absl::StrContains(body, '<')) {
    usable = false;
    checks.push_back(
        Fail("caps.list",
             absl::StrCat("GetCACaps is not a capability list: \"",
                          Printable(body, 60), "\""),
             "check the SCEP URL: it seems to reach a web page, not the "
             "SCEP server"));
  }
  // Without a capability list the single checks would only repeat it.
  if (!usable) return checks;
  {
    for (absl::string_view line : absl::StrSplit(body, absl::ByAnyChar("\r\n"),
                                                 absl::SkipWhitespace())) {
      caps.push_back(Printable(absl::StripAsciiWhitespace(line), 64));
    }
    if (caps.empty()) {
      checks.push_back(Warn("caps.list",
                            "GetCACaps is empty: devices assume SHA-1 only "
                            "and send requests with GET",
                            "enable and advertise the capabilities below"));
    } else {
      checks.push_back(
          Pass("caps.list", absl::StrCat(caps.size(), " capabilities: ",
                                         absl::StrJoin(caps, ", "))));
    }
  }
  auto has = [&](absl::string_view name) {
    return std::find(caps.begin(), caps.end(), name) != caps.end();
  };
  // Apple devices compare capabilities exactly; RFC 8894 says clients
  // should not care about case. Say so when only the case differs.
  auto case_note = [&](absl::string_view name) -> std::string {
    for (const std::string& c : caps) {
      if (c != name && absl::EqualsIgnoreCase(c, name)) {
        return absl::StrCat(" (advertised as '", c,
                            "': Apple devices compare capabilities exactly)");
      }
    }
    return "";
  };

  if (has("POSTPKIOperation")) {
    checks.push_back(Pass("caps.post-pki-operation",
                          "POSTPKIOperation: devices send requests with POST"));
  } else {
    checks.push_back(Fail(
        "caps.post-pki-operation",
        absl::StrCat("POSTPKIOperation is not advertised",
                     case_note("POSTPKIOperation"),
                     ": devices send each request base64-encoded in a GET "
                     "URL, which proxies and servers may truncate or refuse"),
        "accept POST for PKIOperation and advertise POSTPKIOperation"));
  }

  if (has("SHA-256")) {
    checks.push_back(Pass("caps.sha-256", "SHA-256 is advertised"));
  } else if (has("SHA-512")) {
    checks.push_back(Pass("caps.sha-256",
                          "SHA-512 is advertised (devices prefer it to "
                          "SHA-256)"));
  } else {
    const bool sha1 = has("SHA-1") || caps.empty();
    checks.push_back(Fail(
        "caps.sha-256",
        absl::StrCat("neither SHA-256 nor SHA-512 is advertised",
                     case_note("SHA-256"),
                     sha1 ? ": devices fall back to SHA-1"
                          : ": with no hash at all, Apple devices stop with "
                            "MCSCEPErrorDomain 22006 (insufficient CACaps)"),
        "enable SHA-256 on the SCEP server and advertise SHA-256"));
  }

  if (has("AES")) {
    checks.push_back(Pass("caps.aes", "AES is advertised"));
  } else {
    std::string note = case_note("AES");
    if (note.empty() && has("SCEPStandard")) {
      note =
          " (SCEPStandard implies AES under RFC 8894, but Apple devices "
          "look for the literal AES capability)";
    }
    checks.push_back(
        Fail("caps.aes",
             absl::StrCat("AES is not advertised", note,
                          ": devices encrypt requests with triple DES"),
             "enable AES on the SCEP server and advertise AES"));
  }

  if (has("Renewal")) {
    checks.push_back(Pass("caps.renewal", "Renewal is advertised"));
  } else {
    checks.push_back(
        Warn("caps.renewal",
             absl::StrCat("Renewal is not advertised", case_note("Renewal"),
                          ": devices cannot renew with their current "
                          "certificate and must enroll again with a new "
                          "challenge"),
             "advertise Renewal if the server accepts RenewalReq"));
  }

  checks.push_back(Pass(
      "caps.get-next-ca-cert",
      has("GetNextCACert")
          ? "GetNextCACert is advertised: the server can announce its next "
            "CA certificate"
          : "GetNextCACert is not advertised (informational: it only "
            "matters when the CA certificate is rolled over)"));
  return checks;
}

std::vector<Check> CheckGetCaCert(int http_status,
                                  absl::string_view content_type,
                                  absl::string_view body,
                                  absl::string_view fingerprint,
                                  absl::Time now) {
  std::vector<Check> checks;
  if (http_status != 200) {
    checks.push_back(
        Fail("ca.get-ca-cert",
             absl::StrCat("GetCACert answered ", ParseStatusText(http_status)),
             "check the SCEP URL and the server's log; devices report "
             "MCSCEPErrorDomain 22002-22004 for a bad GetCACert answer"));
    return checks;
  }
  std::string type = absl::AsciiStrToLower(absl::StripAsciiWhitespace(
      content_type.substr(0, content_type.find(';'))));
  const bool ca_only = type == "application/x-x509-ca-cert";
  const bool ca_ra = type == "application/x-x509-ca-ra-cert";

  // Parse what the body holds: one DER certificate or a PKCS#7 certs-only
  // message (tried both ways when the type is unexpected).
  std::vector<Ptr<X509>> certs;
  bool pkcs7 = false;
  if (!ca_ra) {
    const unsigned char* p =
        reinterpret_cast<const unsigned char*>(body.data());
    Ptr<X509> cert(d2i_X509(nullptr, &p, static_cast<long>(body.size())));
    if (cert != nullptr) certs.push_back(std::move(cert));
  }
  if (certs.empty() && !ca_only) {
    const unsigned char* p =
        reinterpret_cast<const unsigned char*>(body.data());
    Ptr<PKCS7> p7(d2i_PKCS7(nullptr, &p, static_cast<long>(body.size())));
    if (p7 != nullptr && PKCS7_type_is_signed(p7.get()) &&
        p7->d.sign != nullptr && p7->d.sign->cert != nullptr) {
      pkcs7 = true;
      for (int i = 0; i < sk_X509_num(p7->d.sign->cert); ++i) {
        X509* c = sk_X509_value(p7->d.sign->cert, i);
        X509_up_ref(c);
        certs.emplace_back(c);
      }
    }
  }
  ERR_clear_error();
  const std::string shown_type =
      type.empty() ? std::string("no Content-Type") : Printable(type, 80);
  if (certs.empty()) {
    std::string what;
    if (ca_only) {
      what = absl::StrCat(
          "application/x-x509-ca-cert, but the body is not one DER "
          "certificate",
          absl::StartsWith(body, "-----BEGIN") ? " (it is PEM)" : "",
          ": devices report MCSCEPErrorDomain 22002");
    } else if (ca_ra) {
      what =
          "application/x-x509-ca-ra-cert, but the body is not a PKCS#7 "
          "certs-only message: devices report MCSCEPErrorDomain 22003";
    } else {
      what = absl::StrCat(shown_type,
                          " with no certificate in it: devices report "
                          "MCSCEPErrorDomain 22004");
    }
    checks.push_back(Fail("ca.get-ca-cert", what,
                          "serve the CA certificate as DER "
                          "(application/x-x509-ca-cert), or the CA and RA "
                          "certificates as a PKCS#7 certs-only message "
                          "(application/x-x509-ca-ra-cert)"));
    return checks;
  }
  std::vector<std::string> names;
  for (const Ptr<X509>& c : certs) names.push_back(Name(c.get()));
  const std::string listing = absl::StrCat(
      certs.size(), certs.size() == 1 ? " certificate: " : " certificates: ",
      absl::StrJoin(names, "; "));
  if (ca_only || ca_ra) {
    checks.push_back(Pass("ca.get-ca-cert", absl::StrCat(type, ", ", listing)));
  } else {
    checks.push_back(
        Fail("ca.get-ca-cert",
             absl::StrCat(shown_type, " (", listing,
                          "): devices expect application/x-x509-ca-cert or "
                          "application/x-x509-ca-ra-cert and report "
                          "MCSCEPErrorDomain 22004"),
             "serve GetCACert with one of those two Content-Types"));
  }

  // Find the CA and the RA certificates as Apple devices do: every
  // certificate issued by another one in the answer is a candidate (a
  // "leaf"); the top of its chain is the CA; a candidate that may both sign
  // and encrypt is the RA, or else a signing-only and an encryption-only one.
  auto issuer_of = [&](X509* c) -> X509* {
    if (SelfSigned(c)) return nullptr;
    for (const Ptr<X509>& i : certs) {
      if (i.get() != c && X509_check_issued(i.get(), c) == X509_V_OK &&
          X509_verify(c, X509_get0_pubkey(i.get())) == 1) {
        return i.get();
      }
    }
    return nullptr;
  };
  X509* ca = nullptr;
  X509 *ra = nullptr, *ra_sign = nullptr, *ra_encrypt = nullptr;
  bool ambiguous_ca = false;
  const bool expect_ra = ca_ra || (!ca_only && (pkcs7 || certs.size() > 1));
  if (expect_ra) {
    for (const Ptr<X509>& c : certs) {
      X509* top = c.get();
      for (int depth = 0; depth < 8; ++depth) {
        X509* up = issuer_of(top);
        if (up == nullptr) break;
        top = up;
      }
      if (top == c.get()) continue;
      if (ca == nullptr) ca = top;
      if (top != ca) ambiguous_ca = true;
      const uint32_t ku = X509_get_key_usage(c.get());
      const bool sign = (ku & KU_DIGITAL_SIGNATURE) != 0;
      const bool encrypt = (ku & KU_KEY_ENCIPHERMENT) != 0;
      if (ku == UINT32_MAX) continue;  // No keyUsage: Apple finds no usage.
      if (sign && encrypt && ra == nullptr) ra = c.get();
      if (sign && !encrypt && ra_sign == nullptr) ra_sign = c.get();
      if (encrypt && !sign && ra_encrypt == nullptr) ra_encrypt = c.get();
    }
    ERR_clear_error();
  }
  if (ca == nullptr) {
    // No chain in the answer: the CA is the certificate that is a CA (or
    // the first one).
    for (const Ptr<X509>& c : certs) {
      if (X509_check_ca(c.get()) >= 1) {
        ca = c.get();
        break;
      }
    }
    if (ca == nullptr) ca = certs[0].get();
  }

  // ca.key-usage
  {
    const uint32_t ku = X509_get_key_usage(ca);
    const bool is_ca = X509_check_ca(ca) >= 1;
    const bool cert_sign = ku == UINT32_MAX || (ku & KU_KEY_CERT_SIGN) != 0;
    std::vector<std::string> usages;
    if (ku != UINT32_MAX) {
      if (ku & KU_DIGITAL_SIGNATURE) usages.push_back("digitalSignature");
      if (ku & KU_KEY_ENCIPHERMENT) usages.push_back("keyEncipherment");
      if (ku & KU_KEY_CERT_SIGN) usages.push_back("keyCertSign");
      if (ku & KU_CRL_SIGN) usages.push_back("cRLSign");
    }
    const std::string usage_text =
        ku == UINT32_MAX
            ? std::string("no keyUsage extension")
            : absl::StrCat("keyUsage ", usages.empty()
                                            ? std::string("(none)")
                                            : absl::StrJoin(usages, ", "));
    if (!is_ca || !cert_sign) {
      checks.push_back(Fail(
          "ca.key-usage",
          absl::StrCat("the CA certificate ", Name(ca), " ",
                       !is_ca ? "is not a CA (basicConstraints CA:TRUE is "
                                "missing)"
                              : "may not sign certificates",
                       "; ", usage_text),
          "serve the certificate of the CA that issues the device "
          "certificates (basicConstraints CA:TRUE, keyUsage keyCertSign)"));
    } else {
      checks.push_back(Pass(
          "ca.key-usage",
          absl::StrCat(Name(ca), ": CA:TRUE, ", usage_text,
                       ca_only ? " (no RA: the CA key also decrypts requests "
                                 "and signs replies)"
                               : "")));
    }
  }

  // ca.validity
  {
    std::vector<X509*> shown = {ca};
    for (X509* c : {ra, ra_sign, ra_encrypt}) {
      if (c != nullptr) shown.push_back(c);
    }
    std::vector<std::string> found, bad, soon;
    for (X509* c : shown) {
      const std::string who = c == ca ? "CA" : absl::StrCat("RA ", Name(c));
      absl::optional<absl::Time> nb = AsnTime(X509_get0_notBefore(c));
      absl::optional<absl::Time> na = AsnTime(X509_get0_notAfter(c));
      if (!nb.has_value() || !na.has_value()) {
        bad.push_back(absl::StrCat(who, ": unreadable dates"));
        continue;
      }
      if (now < *nb) {
        bad.push_back(absl::StrCat(who, ": not valid before ", Day(*nb)));
      } else if (now > *na) {
        bad.push_back(absl::StrCat(who, ": expired on ", Day(*na)));
      } else if (*na - now < absl::Hours(24 * kExpiryWarningDays)) {
        soon.push_back(absl::StrCat(who, ": expires on ", Day(*na)));
      }
      found.push_back(absl::StrCat(who, " valid ", Day(*nb), " to ", Day(*na)));
    }
    if (!bad.empty()) {
      checks.push_back(Fail("ca.validity", absl::StrJoin(bad, "; "),
                            "renew the CA/RA certificates (devices refuse "
                            "expired ones); check the server's clock"));
    } else if (!soon.empty()) {
      checks.push_back(Warn("ca.validity", absl::StrJoin(soon, "; "),
                            "renew them before they expire"));
    } else {
      checks.push_back(Pass("ca.validity", absl::StrJoin(found, "; ")));
    }
  }

  // ca.fingerprint
  {
    const std::string sha256 = Digest(EVP_sha256(), ca);
    const std::string shown =
        absl::StrCat("SHA-256 ",
                     Hex(reinterpret_cast<const unsigned char*>(sha256.data()),
                         sha256.size(), true),
                     " (", Name(ca), ")");
    if (fingerprint.empty()) {
      checks.push_back(
          Pass("ca.fingerprint",
               absl::StrCat(shown, "; not compared (no --ca-fingerprint)")));
    } else {
      const EVP_MD* md = fingerprint.size() == 32   ? EVP_sha256()
                         : fingerprint.size() == 20 ? EVP_sha1()
                                                    : EVP_md5();
      const char* md_name = fingerprint.size() == 32   ? "SHA-256"
                            : fingerprint.size() == 20 ? "SHA-1"
                                                       : "MD5";
      if (Digest(md, ca) == fingerprint) {
        checks.push_back(
            Pass("ca.fingerprint",
                 absl::StrCat(md_name, " matches --ca-fingerprint; ", shown)));
      } else {
        std::string other;
        for (const Ptr<X509>& c : certs) {
          if (c.get() != ca && Digest(md, c.get()) == fingerprint) {
            other = absl::StrCat(" (it is the fingerprint of ", Name(c.get()),
                                 ", not of the CA)");
          }
        }
        const std::string actual = Digest(md, ca);
        checks.push_back(Fail(
            "ca.fingerprint",
            absl::StrCat(
                "the CA certificate's ", md_name, " is ",
                Hex(reinterpret_cast<const unsigned char*>(actual.data()),
                    actual.size(), true),
                ", not the expected ",
                Hex(reinterpret_cast<const unsigned char*>(fingerprint.data()),
                    fingerprint.size(), true),
                other),
            "this endpoint serves a different CA: check the SCEP URL, or "
            "update the fingerprint (and any CAFingerprint in the devices' "
            "profiles, which Apple devices check)"));
      }
    }
  }

  // ca.ra-cert
  if (!expect_ra) {
    checks.push_back(Pass("ca.ra-cert",
                          "no RA certificate (application/x-x509-ca-cert): "
                          "devices encrypt requests to the CA certificate "
                          "and expect replies signed by it"));
  } else if (ra != nullptr || (ra_sign != nullptr && ra_encrypt != nullptr)) {
    const std::string what =
        ra != nullptr
            ? absl::StrCat("RA certificate ", Name(ra),
                           " (digitalSignature, keyEncipherment)")
            : absl::StrCat("RA signing certificate ", Name(ra_sign),
                           " and encryption certificate ", Name(ra_encrypt));
    if (ambiguous_ca) {
      checks.push_back(Warn(
          "ca.ra-cert",
          absl::StrCat(what, ", but the answer holds more than one CA chain"),
          "serve one CA and its RA certificates only"));
    } else {
      checks.push_back(
          Pass("ca.ra-cert", absl::StrCat(what, ", issued under ", Name(ca))));
    }
  } else {
    checks.push_back(Fail(
        "ca.ra-cert",
        absl::StrCat("no certificate in the answer is issued by the CA with "
                     "keyUsage digitalSignature and keyEncipherment (nor a "
                     "signing-only and an encryption-only pair): Apple "
                     "devices refuse it with MCSCEPErrorDomain 22003; "
                     "certificates: ",
                     absl::StrJoin(names, "; ")),
        "add the RA certificate with those key usages to GetCACert, or serve "
        "only the CA certificate as application/x-x509-ca-cert"));
  }
  return checks;
}

std::string JsonQuote(absl::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          absl::StrAppendFormat(&out, "\\u%04x", u);
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

namespace {

struct TlsProbe {
  bool connected = false;
  bool handshake_ok = false;
  std::string error;
  std::string version;
  int version_number = 0;
  std::string cipher;
  std::vector<std::string> chain_der;
};

// Connects to host:port within `timeout`; returns the socket (blocking, with
// read/write timeouts) or -1 with `error` set.
int ConnectTcp(const std::string& host, int port, absl::Duration timeout,
               std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string service = absl::StrCat(port);
  const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
  if (rc != 0) {
    *error = absl::StrCat("cannot resolve ", host, ": ", gai_strerror(rc));
    return -1;
  }
  const int timeout_ms = static_cast<int>(
      std::max<int64_t>(1, absl::ToInt64Milliseconds(timeout)));
  int fd = -1;
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                ai->ai_protocol);
    if (fd < 0) continue;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
    if (errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      const int n = poll(&p, 1, timeout_ms);
      int so_error = 0;
      socklen_t len = sizeof(so_error);
      if (n == 1 &&
          getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) == 0 &&
          so_error == 0) {
        break;
      }
      *error =
          n == 0 ? std::string("connection timed out")
                 : std::string(std::strerror(so_error != 0 ? so_error : errno));
    } else {
      *error = std::strerror(errno);
    }
    close(fd);
    fd = -1;
  }
  freeaddrinfo(found);
  if (fd < 0) {
    *error = absl::StrCat("cannot connect to ", host, ":", port, ": ",
                          error->empty() ? "no address" : *error);
    return -1;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  timeval tv = absl::ToTimeval(timeout);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  return fd;
}

// Completes a TLS handshake without verifying anything, to see the chain the
// server sends.
TlsProbe ProbeTls(const std::string& host, int port, absl::Duration timeout) {
  TlsProbe probe;
  const int fd = ConnectTcp(host, port, timeout, &probe.error);
  if (fd < 0) return probe;
  probe.connected = true;
  Ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_client_method()));
  Ptr<SSL> ssl(ctx != nullptr ? SSL_new(ctx.get()) : nullptr);
  if (ssl == nullptr) {
    probe.error = OpenSslError();
    close(fd);
    return probe;
  }
  // Weak keys and old signatures must not stop the handshake: they are what
  // the checks are about.
  SSL_set_security_level(ssl.get(), 0);
  SSL_set_verify(ssl.get(), SSL_VERIFY_NONE, nullptr);
  SSL_set_fd(ssl.get(), fd);
  if (!IsIpLiteral(host)) SSL_set_tlsext_host_name(ssl.get(), host.c_str());
  if (SSL_connect(ssl.get()) != 1) {
    const int saved_errno = errno;
    probe.error = OpenSslError();
    if (probe.error == "no detail from OpenSSL") {
      probe.error = saved_errno != 0
                        ? std::string(std::strerror(saved_errno))
                        : std::string("the server closed the connection");
    }
  } else {
    probe.handshake_ok = true;
    probe.version = SSL_get_version(ssl.get());
    probe.version_number = SSL_version(ssl.get());
    probe.cipher = SSL_get_cipher_name(ssl.get());
    STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl.get());
    for (int i = 0; chain != nullptr && i < sk_X509_num(chain); ++i) {
      probe.chain_der.push_back(Der(sk_X509_value(chain, i)));
    }
    SSL_shutdown(ssl.get());
  }
  ssl.reset();
  close(fd);
  ERR_clear_error();
  return probe;
}

struct HttpAnswer {
  bool ok = false;
  bool connect_failed = false;
  std::string error;
  int status = 0;
  std::string content_type;
  std::string body;
};

std::string HttpErrorText(httplib::Error error) {
  switch (error) {
    case httplib::Error::Connection:
      return "the connection failed";
    case httplib::Error::ConnectionTimeout:
      return "the connection timed out";
    case httplib::Error::Read:
      return "reading the answer failed or timed out";
    case httplib::Error::Write:
      return "sending the request failed";
    case httplib::Error::SSLConnection:
      return "the TLS handshake failed";
    case httplib::Error::Canceled:
      return "the request was canceled";
    default:
      return absl::StrCat("HTTP client error ", httplib::to_string(error));
  }
}

HttpAnswer HttpGet(const ScepUrl& url, absl::string_view operation,
                   absl::Duration timeout) {
  HttpAnswer answer;
  const std::string host = absl::StrContains(url.host, ':')
                               ? absl::StrCat("[", url.host, "]")
                               : url.host;
  httplib::Client client(absl::StrCat(url.scheme, "://", host, ":", url.port));
  const auto usec =
      std::chrono::microseconds(absl::ToInt64Microseconds(timeout));
  client.set_connection_timeout(usec);
  client.set_read_timeout(usec);
  client.set_write_timeout(usec);
  client.set_keep_alive(false);
  client.set_follow_location(false);
  if (url.scheme == "https") {
    // Trust is checked on its own (tls.trust): fetch the answers anyway.
    client.enable_server_certificate_verification(false);
    if (client.ssl_context() != nullptr) {
      SSL_CTX_set_security_level(client.ssl_context(), 0);
    }
  }
  const std::string path =
      absl::StrCat(url.path, absl::StrContains(url.path, '?') ? "&" : "?",
                   "operation=", operation);
  bool too_big = false;
  httplib::Result result = client.Get(path, [&](const char* data, size_t n) {
    if (answer.body.size() + n > kMaxBodyBytes) {
      too_big = true;
      return false;
    }
    answer.body.append(data, n);
    return true;
  });
  if (!result) {
    answer.error = too_big ? absl::StrCat("the answer is larger than ",
                                          kMaxBodyBytes, " bytes")
                           : HttpErrorText(result.error());
    answer.connect_failed = result.error() == httplib::Error::Connection ||
                            result.error() == httplib::Error::ConnectionTimeout;
    ERR_clear_error();
    return answer;
  }
  answer.ok = true;
  answer.status = result->status;
  answer.content_type = result->get_header_value("Content-Type");
  if (answer.body.empty()) answer.body = result->body;
  ERR_clear_error();
  return answer;
}

}  // namespace
}  // namespace doctor_internal

using doctor_internal::Fail;
using doctor_internal::Pass;
using doctor_internal::Warn;

absl::string_view CheckStatusName(CheckStatus status) {
  switch (status) {
    case CheckStatus::kPass:
      return "PASS";
    case CheckStatus::kWarn:
      return "WARN";
    case CheckStatus::kFail:
      return "FAIL";
  }
  return "FAIL";
}

absl::StatusOr<DoctorReport> RunDoctor(const DoctorOptions& options) {
  namespace di = doctor_internal;
  absl::StatusOr<di::ScepUrl> url = di::ParseScepUrl(options.scep_url);
  if (!url.ok()) return url.status();
  std::string fingerprint;
  if (!options.ca_fingerprint.empty()) {
    absl::StatusOr<std::string> parsed =
        di::ParseFingerprint(options.ca_fingerprint);
    if (!parsed.ok()) return parsed.status();
    fingerprint = *std::move(parsed);
  }
  if (!options.scep_ca_file.empty()) {
    absl::StatusOr<di::Ptr<X509_STORE>> store =
        di::LoadStore(options.scep_ca_file);
    if (!store.ok()) return store.status();
  }
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--timeout must be positive");
  }
  const absl::Time now = absl::Now();
  const std::string where = absl::StrCat(url->host, ":", url->port);
  DoctorReport report;
  auto unreachable = [&](const std::string& error) {
    report.unreachable = true;
    report.checks.push_back(
        Fail("endpoint.reachable", error,
             "check the host name and port of the SCEP URL, DNS, firewalls "
             "and that the server is running"));
  };

  if (url->scheme == "https") {
    di::TlsProbe probe = di::ProbeTls(url->host, url->port, options.timeout);
    if (!probe.connected) {
      unreachable(probe.error);
      return report;
    }
    report.checks.push_back(
        Pass("endpoint.reachable", absl::StrCat("connected to ", where)));
    if (!probe.handshake_ok) {
      report.checks.push_back(Fail(
          "tls.handshake",
          absl::StrCat("the TLS handshake failed: ", probe.error),
          "check that the port serves TLS (an http:// server on an https:// "
          "URL fails like this) and accepts TLS 1.2 or later"));
    } else {
      if (probe.version_number < TLS1_2_VERSION) {
        report.checks.push_back(Warn(
            "tls.handshake", absl::StrCat(probe.version, ", ", probe.cipher),
            "enable TLS 1.2 or later: Apple's App Transport Security "
            "requires it"));
      } else {
        report.checks.push_back(Pass(
            "tls.handshake", absl::StrCat(probe.version, ", ", probe.cipher)));
      }
      for (Check& c : di::CheckTlsChain(probe.chain_der, url->host,
                                        options.scep_ca_file, now)) {
        report.checks.push_back(std::move(c));
      }
    }
  }

  di::HttpAnswer caps = di::HttpGet(*url, "GetCACaps", options.timeout);
  if (url->scheme == "http") {
    if (!caps.ok && caps.connect_failed) {
      unreachable(absl::StrCat("cannot connect to ", where, ": ", caps.error));
      return report;
    }
    report.checks.push_back(
        Pass("endpoint.reachable", absl::StrCat("connected to ", where)));
  }
  if (!caps.ok) {
    report.checks.push_back(
        Fail("caps.list", absl::StrCat("GetCACaps failed: ", caps.error),
             "devices report MCSCEPErrorDomain 22005 (network error) for "
             "this: fix the transport first"));
  } else {
    for (Check& c : di::CheckCaCaps(caps.status, caps.body)) {
      report.checks.push_back(std::move(c));
    }
  }

  di::HttpAnswer ca = di::HttpGet(*url, "GetCACert", options.timeout);
  if (!ca.ok) {
    report.checks.push_back(
        Fail("ca.get-ca-cert", absl::StrCat("GetCACert failed: ", ca.error),
             "devices report MCSCEPErrorDomain 22005 (network error) for "
             "this: fix the transport first"));
  } else {
    for (Check& c : di::CheckGetCaCert(ca.status, ca.content_type, ca.body,
                                       fingerprint, now)) {
      report.checks.push_back(std::move(c));
    }
  }
  return report;
}

Check ChallengeCheckFromValidate(
    const absl::StatusOr<scep::challenge::v1::ValidateResponse>& response) {
  namespace v1 = ::scep::challenge::v1;
  const std::string id = "authority.challenge";
  if (!response.ok()) {
    return Fail(id,
                absl::StrCat("no verdict from the authority: ",
                             absl::StatusCodeToString(response.status().code()),
                             ": ", response.status().message()),
                "check --server and the TLS flags given before 'doctor'");
  }
  std::string reason(
      absl::StripPrefix(v1::Reason_Name(response->reason()), "REASON_"));
  absl::AsciiStrToLower(&reason);
  std::string who = absl::StrCat("device ", response->device_id());
  if (!response->user_id().empty()) {
    absl::StrAppend(&who, ", user ", response->user_id());
  }
  if (!response->challenge_id().empty()) {
    absl::StrAppend(&who, ", challenge id ", response->challenge_id());
  }
  if (response->has_expires_at()) {
    absl::StrAppend(
        &who, ", expires at ",
        google::protobuf::util::TimeUtil::ToString(response->expires_at()));
  }
  if (response->valid()) {
    return Pass(id, absl::StrCat("valid (dry run, not used up): ", who));
  }
  if (response->reason() == v1::REASON_CSR_REQUIRED) {
    return Pass(id, absl::StrCat("known and bound to an identity, so the "
                                 "device's CSR decides (",
                                 who, ")"));
  }
  std::string advice;
  switch (response->reason()) {
    case v1::REASON_NOT_FOUND:
      advice =
          "the authority never issued it, or has forgotten it (the memory "
          "store loses challenges on restart): issue a new challenge and "
          "check that the device has the latest profile";
      break;
    case v1::REASON_EXPIRED:
      advice =
          "issue a new challenge; if devices take long to enroll, issue "
          "with a longer --ttl";
      break;
    case v1::REASON_ALREADY_USED:
      advice =
          "a one-time challenge works once: issue a new one; 'challengectl "
          "get CHALLENGE_ID' shows when and by which transaction it was "
          "used";
      break;
    case v1::REASON_REVOKED:
      advice = "it was revoked: issue a new challenge";
      break;
    case v1::REASON_BAD_SIGNATURE:
      advice =
          "a signed challenge whose key the authority does not know or has "
          "disabled (--hmac-keys): issue a new one";
      break;
    case v1::REASON_MALFORMED:
      advice =
          "not a challenge of this authority: check the profile's Challenge "
          "for truncation or extra characters";
      break;
    default:
      advice = "see 'challengectl explain' and the authority's log";
  }
  return Fail(id,
              absl::StrCat(reason, ": ", response->message(), " (", who, ")"),
              advice);
}

Check CheckChallengeWithAuthority(ChallengeClient& client,
                                  const std::string& challenge) {
  scep::challenge::v1::ValidateRequest request;
  request.set_challenge(challenge);
  request.set_dry_run(true);
  return ChallengeCheckFromValidate(client.Validate(request));
}

std::string DoctorVerdict(const DoctorReport& report) {
  if (report.unreachable) return "UNREACHABLE";
  bool warn = false;
  for (const Check& c : report.checks) {
    if (c.status == CheckStatus::kFail) return "FAIL";
    warn = warn || c.status == CheckStatus::kWarn;
  }
  return warn ? "WARN" : "PASS";
}

std::string FormatDoctorText(const DoctorReport& report) {
  std::string out;
  int pass = 0, warn = 0, fail = 0;
  for (const Check& c : report.checks) {
    absl::StrAppend(&out, CheckStatusName(c.status), " ", c.id, " ", c.message);
    if (!c.advice.empty()) absl::StrAppend(&out, " \u2014 ", c.advice);
    out.push_back('\n');
    switch (c.status) {
      case CheckStatus::kPass:
        ++pass;
        break;
      case CheckStatus::kWarn:
        ++warn;
        break;
      case CheckStatus::kFail:
        ++fail;
        break;
    }
  }
  const std::string verdict = DoctorVerdict(report);
  if (report.unreachable) {
    absl::StrAppend(&out, "verdict: ", verdict,
                    " (the SCEP endpoint could not be reached)\n");
  } else {
    absl::StrAppend(&out, "verdict: ", verdict, " (", fail, " failed, ", warn,
                    warn == 1 ? " warning, " : " warnings, ", pass,
                    " passed)\n");
  }
  return out;
}

std::string FormatDoctorJson(const DoctorReport& report) {
  using doctor_internal::JsonQuote;
  std::string out = "{\"checks\":[";
  for (size_t i = 0; i < report.checks.size(); ++i) {
    const Check& c = report.checks[i];
    absl::StrAppend(&out, i == 0 ? "" : ",", "{\"id\":", JsonQuote(c.id),
                    ",\"status\":", JsonQuote(CheckStatusName(c.status)),
                    ",\"message\":", JsonQuote(c.message),
                    ",\"advice\":", JsonQuote(c.advice), "}");
  }
  absl::StrAppend(&out, "],\"verdict\":", JsonQuote(DoctorVerdict(report)),
                  "}\n");
  return out;
}

int DoctorExitCode(const DoctorReport& report) {
  if (report.unreachable) return 3;
  for (const Check& c : report.checks) {
    if (c.status == CheckStatus::kFail) return 1;
  }
  return 0;
}

}  // namespace scepca
