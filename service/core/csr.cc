#include "service/core/csr.h"

#include <arpa/inet.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <climits>
#include <cstdint>
#include <cstring>
#include <memory>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "service/core/hashing.h"

namespace scepca {
namespace {

// RFC 2985: pkcs-9-ub-challengePassword.
constexpr size_t kMaxChallengeChars = 255;
// RSA_MAX_PUBEXP_BITS of OpenSSL.
constexpr int kMaxRsaExponentBits = 64;
// Room for base64 expansion (4/3), line breaks and the BEGIN/END lines.
constexpr size_t kPemSlackBytes = 1024;

constexpr absl::string_view kPemLabel = "CERTIFICATE REQUEST";
constexpr absl::string_view kPemLabelOld = "NEW CERTIFICATE REQUEST";

struct OpenSslFree {
  void operator()(X509_REQ* p) const { X509_REQ_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
  void operator()(BIO* p) const { BIO_free_all(p); }
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
  void operator()(STACK_OF(X509_EXTENSION) * p) const {
    sk_X509_EXTENSION_pop_free(p, X509_EXTENSION_free);
  }
  void operator()(unsigned char* p) const { OPENSSL_free(p); }
  void operator()(char* p) const { OPENSSL_free(p); }
};
template <typename T>
using OpenSslPtr = std::unique_ptr<T, OpenSslFree>;

// Removes whatever OpenSSL pushed on this thread's error queue while parsing,
// leaving the caller's entries in place.
class ErrorQueueMark {
 public:
  ErrorQueueMark() { ERR_set_mark(); }
  ErrorQueueMark(const ErrorQueueMark&) = delete;
  ErrorQueueMark& operator=(const ErrorQueueMark&) = delete;
  ~ErrorQueueMark() { ERR_pop_to_mark(); }
};

absl::Status Refuse(absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat("CSR refused: ", rule));
}

const unsigned char* Bytes(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

absl::string_view View(const ASN1_STRING* s) {
  return absl::string_view(
      reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
      static_cast<size_t>(ASN1_STRING_length(s)));
}

bool IsAsciiSpace(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' ||
         c == '\v';
}

bool IsAllSpace(absl::string_view s) {
  for (char c : s) {
    if (!IsAsciiSpace(c)) return false;
  }
  return true;
}

absl::string_view StripLeadingSpace(absl::string_view s) {
  while (!s.empty() && IsAsciiSpace(s.front())) s.remove_prefix(1);
  return s;
}

// Appends the UTF-8 encoding of `cp` (a Unicode scalar value) to `out`.
void AppendUtf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Returns the number of code points of `s` if it is well-formed UTF-8
// (shortest form, no surrogates, at most U+10FFFF) and has no code point
// below U+0020 or U+007F; otherwise -1.
long Utf8TextLength(absl::string_view s) {
  long count = 0;
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char b = static_cast<unsigned char>(s[i]);
    uint32_t cp;
    size_t extra;
    if (b < 0x80) {
      cp = b;
      extra = 0;
    } else if (b >= 0xC2 && b <= 0xDF) {
      cp = b & 0x1F;
      extra = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
      cp = b & 0x0F;
      extra = 2;
    } else if (b >= 0xF0 && b <= 0xF4) {
      cp = b & 0x07;
      extra = 3;
    } else {
      return -1;  // Continuation byte, overlong lead (C0, C1) or F5..FF.
    }
    if (s.size() - i - 1 < extra) return -1;
    for (size_t k = 1; k <= extra; ++k) {
      const unsigned char c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return -1;
      cp = (cp << 6) | (c & 0x3F);
    }
    if ((extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return -1;  // Overlong, out of range or a surrogate.
    }
    if (cp < 0x20 || cp == 0x7F) return -1;
    i += extra + 1;
    ++count;
  }
  return count;
}

// X.680 PrintableString: A-Z a-z 0-9 space ' ( ) + , - . / : = ?
bool IsPrintableStringChar(char c) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
      (c >= '0' && c <= '9')) {
    return true;
  }
  return std::strchr(" '()+,-./:=?", c) != nullptr && c != '\0';
}

// Names an ASN.1 type for an error message.
std::string AsnTypeName(int type) {
  switch (type) {
    case V_ASN1_BOOLEAN:
      return "BOOLEAN";
    case V_ASN1_INTEGER:
      return "INTEGER";
    case V_ASN1_BIT_STRING:
      return "BIT STRING";
    case V_ASN1_OCTET_STRING:
      return "OCTET STRING";
    case V_ASN1_NULL:
      return "NULL";
    case V_ASN1_OBJECT:
      return "OBJECT IDENTIFIER";
    case V_ASN1_ENUMERATED:
      return "ENUMERATED";
    case V_ASN1_UTF8STRING:
      return "UTF8String";
    case V_ASN1_SEQUENCE:
      return "SEQUENCE";
    case V_ASN1_SET:
      return "SET";
    case V_ASN1_NUMERICSTRING:
      return "NumericString";
    case V_ASN1_PRINTABLESTRING:
      return "PrintableString";
    case V_ASN1_T61STRING:
      return "TeletexString";
    case V_ASN1_VIDEOTEXSTRING:
      return "VideotexString";
    case V_ASN1_IA5STRING:
      return "IA5String";
    case V_ASN1_UTCTIME:
      return "UTCTime";
    case V_ASN1_GENERALIZEDTIME:
      return "GeneralizedTime";
    case V_ASN1_GRAPHICSTRING:
      return "GraphicString";
    case V_ASN1_VISIBLESTRING:
      return "VisibleString";
    case V_ASN1_GENERALSTRING:
      return "GeneralString";
    case V_ASN1_UNIVERSALSTRING:
      return "UniversalString";
    case V_ASN1_BMPSTRING:
      return "BMPString";
    case V_ASN1_OTHER:
      return "a non-universal tag";
    default:
      return absl::StrCat("universal tag ", type);
  }
}

// Checks the outer SEQUENCE header of `der`: a definite, minimally encoded
// length that covers exactly the input. This names truncation and trailing
// bytes precisely; d2i_X509_REQ then checks the rest.
absl::Status CheckOuterDer(absl::string_view der) {
  const unsigned char* p = Bytes(der);
  const size_t n = der.size();
  if (p[0] != 0x30) return Refuse("not DER: does not start with a SEQUENCE");
  if (n < 2) return Refuse("truncated DER: no length");
  size_t header = 2;
  size_t length = p[1];
  if (p[1] == 0x80) return Refuse("not DER: indefinite length");
  if (p[1] > 0x80) {
    const size_t octets = p[1] & 0x7F;
    if (octets > 4) return Refuse("not DER: length field longer than 4 bytes");
    if (n < 2 + octets) return Refuse("truncated DER: incomplete length");
    if (p[2] == 0) return Refuse("not DER: length not minimally encoded");
    length = 0;
    for (size_t i = 0; i < octets; ++i) length = (length << 8) | p[2 + i];
    if (length < 0x80) return Refuse("not DER: length not minimally encoded");
    header = 2 + octets;
  }
  if (length > n - header) {
    return Refuse(absl::StrCat("truncated DER: the SEQUENCE declares ", length,
                               " bytes, ", n - header, " are present"));
  }
  if (length < n - header) {
    return Refuse(
        absl::StrCat("trailing bytes after the DER: ", n - header - length,
                     " bytes (all bytes must be consumed)"));
  }
  return absl::OkStatus();
}

// Decodes one PEM block labelled CERTIFICATE REQUEST or NEW CERTIFICATE
// REQUEST, with only whitespace around it, into DER.
absl::StatusOr<std::string> PemToDer(absl::string_view text) {
  text = StripLeadingSpace(text);
  if (!absl::StartsWith(text, "-----BEGIN ")) {
    return Refuse("neither DER nor PEM");
  }
  OpenSslPtr<BIO> bio(
      BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  if (bio == nullptr) return absl::ResourceExhaustedError("BIO_new_mem_buf");
  char* name = nullptr;
  char* header = nullptr;
  unsigned char* data = nullptr;
  long len = 0;
  const int ok = PEM_read_bio(bio.get(), &name, &header, &data, &len);
  OpenSslPtr<char> owned_name(name);
  OpenSslPtr<char> owned_header(header);
  OpenSslPtr<unsigned char> owned_data(data);
  if (ok != 1 || name == nullptr || data == nullptr) {
    return Refuse("not PEM: no complete, well-formed PEM block");
  }
  if (name != kPemLabel && name != kPemLabelOld) {
    return Refuse(
        "PEM label is not CERTIFICATE REQUEST or NEW CERTIFICATE REQUEST");
  }
  if (header != nullptr && header[0] != '\0') {
    return Refuse("PEM headers (e.g. encryption) are not allowed");
  }
  char* rest = nullptr;
  const long rest_len = BIO_get_mem_data(bio.get(), &rest);
  if (rest_len > 0 &&
      !IsAllSpace(absl::string_view(rest, static_cast<size_t>(rest_len)))) {
    return Refuse("text after the PEM block");
  }
  if (len <= 0) return Refuse("PEM block is empty");
  return std::string(reinterpret_cast<const char*>(data),
                     static_cast<size_t>(len));
}

// Fills `out.subject` and `out.common_name`.
absl::Status ReadSubject(const X509_REQ* req, ParsedCsr& out) {
  const X509_NAME* name = X509_REQ_get_subject_name(req);
  if (name == nullptr) return Refuse("no subject");
  OpenSslPtr<BIO> mem(BIO_new(BIO_s_mem()));
  if (mem == nullptr) return absl::ResourceExhaustedError("BIO_new");
  // RFC 2253, with UTF-8 kept as is rather than escaped as \XX.
  constexpr unsigned long kFlags = XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB;
  if (X509_NAME_print_ex(mem.get(), name, 0, kFlags) < 0) {
    return Refuse("subject cannot be printed as RFC 2253 text");
  }
  char* text = nullptr;
  const long text_len = BIO_get_mem_data(mem.get(), &text);
  out.subject.assign(text != nullptr ? text : "",
                     text_len > 0 ? static_cast<size_t>(text_len) : 0);
  if (Utf8TextLength(out.subject) < 0) {
    return Refuse("subject is not valid UTF-8 text");
  }

  const int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) return absl::OkStatus();
  if (X509_NAME_get_index_by_NID(name, NID_commonName, idx) >= 0) {
    return Refuse("subject has more than one CN");
  }
  const ASN1_STRING* cn =
      X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char* utf8 = nullptr;
  const int utf8_len = ASN1_STRING_to_UTF8(&utf8, cn);
  OpenSslPtr<unsigned char> owned_utf8(utf8);
  if (utf8_len < 0 || utf8 == nullptr) {
    return Refuse("CN is not a decodable string");
  }
  out.common_name.assign(reinterpret_cast<const char*>(utf8),
                         static_cast<size_t>(utf8_len));
  if (Utf8TextLength(out.common_name) < 0) {
    return Refuse("CN is not valid text (bad UTF-8, NUL or control character)");
  }
  return absl::OkStatus();
}

// Appends an IA5String SAN (dNSName, rfc822Name or URI) to `out`.
absl::Status ReadIa5Name(const ASN1_IA5STRING* s, absl::string_view what,
                         std::vector<std::string>& out) {
  const absl::string_view v = View(s);
  if (v.empty()) return Refuse(absl::StrCat(what, " SAN is empty"));
  for (char c : v) {
    if (c <= 0x20 || c >= 0x7F) {
      return Refuse(absl::StrCat(
          what, " SAN contains a byte outside printable ASCII (or a space)"));
    }
  }
  out.emplace_back(v);
  return absl::OkStatus();
}

absl::Status ReadIpAddress(const ASN1_OCTET_STRING* s,
                           std::vector<std::string>& out) {
  const absl::string_view v = View(s);
  char text[INET6_ADDRSTRLEN] = {};
  if (v.size() == 4) {
    inet_ntop(AF_INET, v.data(), text, sizeof(text));
  } else if (v.size() == 16) {
    inet_ntop(AF_INET6, v.data(), text, sizeof(text));
  } else {
    return Refuse(absl::StrCat("iPAddress SAN has ", v.size(),
                               " bytes; 4 or 16 are allowed"));
  }
  out.emplace_back(text);
  return absl::OkStatus();
}

// Reads one subjectAltName extension value into `out`.
absl::Status ReadSubjectAltName(X509_EXTENSION* ext, const CsrPolicy& policy,
                                ParsedCsr& out) {
  const ASN1_OCTET_STRING* value = X509_EXTENSION_get_data(ext);
  if (value == nullptr) return Refuse("malformed subjectAltName");
  const unsigned char* p = ASN1_STRING_get0_data(value);
  const unsigned char* end = p + ASN1_STRING_length(value);
  OpenSslPtr<GENERAL_NAMES> names(
      d2i_GENERAL_NAMES(nullptr, &p, ASN1_STRING_length(value)));
  if (names == nullptr) return Refuse("malformed subjectAltName");
  if (p != end) return Refuse("trailing bytes in the subjectAltName");
  const int count = sk_GENERAL_NAME_num(names.get());
  if (count > policy.max_sans) {
    return Refuse(
        absl::StrCat("more than ", policy.max_sans, " SANs (", count, ")"));
  }
  for (int i = 0; i < count; ++i) {
    const GENERAL_NAME* gen = sk_GENERAL_NAME_value(names.get(), i);
    absl::Status status;
    switch (gen->type) {
      case GEN_DNS:
        status = ReadIa5Name(gen->d.dNSName, "dNSName", out.dns_names);
        break;
      case GEN_EMAIL:
        status =
            ReadIa5Name(gen->d.rfc822Name, "rfc822Name", out.email_addresses);
        break;
      case GEN_URI:
        status = ReadIa5Name(gen->d.uniformResourceIdentifier,
                             "uniformResourceIdentifier", out.uris);
        break;
      case GEN_IPADD:
        status = ReadIpAddress(gen->d.iPAddress, out.ip_addresses);
        break;
      default:
        break;  // otherName, directoryName, ...: counted, not reported.
    }
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

// Reads the SANs of the extensionRequest (PKCS#9; or Microsoft's OID).
absl::Status ReadExtensions(X509_REQ* req, const CsrPolicy& policy,
                            ParsedCsr& out) {
  int attributes = 0;
  int found = -1;
  for (int nid : {NID_ext_req, NID_ms_ext_req}) {
    for (int idx = X509_REQ_get_attr_by_NID(req, nid, -1); idx >= 0;
         idx = X509_REQ_get_attr_by_NID(req, nid, idx)) {
      ++attributes;
      found = idx;
    }
  }
  if (attributes == 0) return absl::OkStatus();
  if (attributes > 1) return Refuse("more than one extensionRequest attribute");
  X509_ATTRIBUTE* attr = X509_REQ_get_attr(req, found);
  if (X509_ATTRIBUTE_count(attr) != 1) {
    return Refuse("extensionRequest attribute must hold exactly one value");
  }
  const ASN1_TYPE* value = X509_ATTRIBUTE_get0_type(attr, 0);
  if (value == nullptr || ASN1_TYPE_get(value) != V_ASN1_SEQUENCE) {
    return Refuse("extensionRequest value is not a SEQUENCE");
  }
  OpenSslPtr<STACK_OF(X509_EXTENSION)> exts(X509_REQ_get_extensions(req));
  if (exts == nullptr) return Refuse("malformed extensionRequest");

  std::set<std::string> seen;
  for (int i = 0; i < sk_X509_EXTENSION_num(exts.get()); ++i) {
    X509_EXTENSION* ext = sk_X509_EXTENSION_value(exts.get(), i);
    const ASN1_OBJECT* oid = X509_EXTENSION_get_object(ext);
    if (oid == nullptr) return Refuse("malformed extensionRequest");
    const std::string oid_der(reinterpret_cast<const char*>(OBJ_get0_data(oid)),
                              OBJ_length(oid));
    if (!seen.insert(oid_der).second) {
      char oid_text[64] = {};
      OBJ_obj2txt(oid_text, sizeof(oid_text), oid, /*no_name=*/1);
      return Refuse(
          absl::StrCat("extension ", oid_text, " appears more than once"));
    }
    if (OBJ_obj2nid(oid) == NID_subject_alt_name) {
      absl::Status status = ReadSubjectAltName(ext, policy, out);
      if (!status.ok()) return status;
    }
  }
  return absl::OkStatus();
}

// Decodes a challengePassword value of ASN.1 type `type` to UTF-8 in `out`;
// returns its length in characters, or an error naming the rule.
absl::StatusOr<size_t> DecodeChallenge(int type, absl::string_view raw,
                                       std::string& out) {
  switch (type) {
    case V_ASN1_PRINTABLESTRING:
      for (char c : raw) {
        if (!IsPrintableStringChar(c)) {
          return Refuse(
              "challengePassword has a character not allowed in a "
              "PrintableString");
        }
      }
      out.assign(raw.data(), raw.size());
      return raw.size();
    case V_ASN1_UTF8STRING: {
      const long chars = Utf8TextLength(raw);
      if (chars < 0) {
        return Refuse(
            "challengePassword is not valid UTF-8 text (bad encoding, NUL or "
            "control character)");
      }
      out.assign(raw.data(), raw.size());
      return static_cast<size_t>(chars);
    }
    case V_ASN1_BMPSTRING: {
      if (raw.size() % 2 != 0) {
        return Refuse("challengePassword is an odd-length BMPString");
      }
      std::string utf8;
      utf8.reserve(raw.size() * 3 / 2);
      for (size_t i = 0; i < raw.size(); i += 2) {
        const uint32_t unit =
            (static_cast<uint32_t>(static_cast<unsigned char>(raw[i])) << 8) |
            static_cast<unsigned char>(raw[i + 1]);
        if (unit >= 0xD800 && unit <= 0xDFFF) {
          return Refuse("challengePassword BMPString contains a surrogate");
        }
        if (unit < 0x20 || unit == 0x7F) {
          return Refuse(
              "challengePassword BMPString contains NUL or a control "
              "character");
        }
        AppendUtf8(unit, utf8);
      }
      out = std::move(utf8);
      return raw.size() / 2;
    }
    default:
      return absl::InternalError("unexpected challengePassword type");
  }
}

// Fills the challenge fields of `out`. Never puts the value in a message.
absl::Status ReadChallenge(const X509_REQ* req, ParsedCsr& out) {
  const int idx =
      X509_REQ_get_attr_by_NID(req, NID_pkcs9_challengePassword, -1);
  if (idx < 0) return absl::OkStatus();
  if (X509_REQ_get_attr_by_NID(req, NID_pkcs9_challengePassword, idx) >= 0) {
    return Refuse(
        "more than one challengePassword attribute (RFC 2985: SINGLE VALUE)");
  }
  X509_ATTRIBUTE* attr = X509_REQ_get_attr(req, idx);
  const int count = X509_ATTRIBUTE_count(attr);
  if (count != 1) {
    return Refuse(absl::StrCat(
        "challengePassword attribute is multi-valued: its SET has ", count,
        " values, exactly 1 is required (RFC 2985: SINGLE VALUE)"));
  }
  const ASN1_TYPE* value = X509_ATTRIBUTE_get0_type(attr, 0);
  if (value == nullptr) return Refuse("malformed challengePassword");
  const int type = ASN1_TYPE_get(value);
  ChallengeStringType string_type;
  switch (type) {
    case V_ASN1_PRINTABLESTRING:
      string_type = ChallengeStringType::kPrintableString;
      break;
    case V_ASN1_UTF8STRING:
      string_type = ChallengeStringType::kUtf8String;
      break;
    case V_ASN1_BMPSTRING:
      string_type = ChallengeStringType::kBmpString;
      break;
    default:
      return Refuse(absl::StrCat(
          "challengePassword is ", AsnTypeName(type),
          "; only PrintableString, UTF8String and BMPString are accepted"));
  }
  const absl::string_view raw = View(value->value.asn1_string);
  if (raw.empty()) return Refuse("challengePassword is empty");
  std::string decoded;
  absl::StatusOr<size_t> chars = DecodeChallenge(type, raw, decoded);
  if (!chars.ok()) return chars.status();
  if (*chars > kMaxChallengeChars) {
    return Refuse(absl::StrCat("challengePassword is longer than ",
                               kMaxChallengeChars, " characters"));
  }
  out.has_challenge = true;
  out.challenge_type = string_type;
  out.challenge = std::move(decoded);
  return absl::OkStatus();
}

// Checks the key against `policy` (cheap: no signature operation) and fills
// the key fields of `out`.
absl::Status CheckKeyPolicy(EVP_PKEY* pkey, const CsrPolicy& policy,
                            ParsedCsr& out) {
  const int id = EVP_PKEY_get_base_id(pkey);
  if (id == EVP_PKEY_RSA) {
    const int bits = EVP_PKEY_get_bits(pkey);
    if (bits < policy.min_rsa_bits || bits > policy.max_rsa_bits) {
      return Refuse(absl::StrCat("RSA key of ", bits,
                                 " bits; allowed: ", policy.min_rsa_bits,
                                 " to ", policy.max_rsa_bits));
    }
    // OpenSSL itself refuses exponents over 64 bits only for moduli over
    // 3072 bits; below that, a modulus-sized exponent makes one verify cost
    // as much as a private-key operation.
    BIGNUM* e = nullptr;
    if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e) != 1) {
      return Refuse("RSA key without a public exponent");
    }
    OpenSslPtr<BIGNUM> owned_e(e);
    if (!BN_is_odd(e) || BN_is_one(e) || BN_num_bits(e) > kMaxRsaExponentBits) {
      return Refuse(
          absl::StrCat("RSA public exponent must be odd, greater "
                       "than 1 and at most ",
                       kMaxRsaExponentBits, " bits"));
    }
    out.key_type = "RSA";
    out.key_bits = bits;
    return absl::OkStatus();
  }
  if (id == EVP_PKEY_EC) {
    char encoding[32] = {};
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_ENCODING,
                                       encoding, sizeof(encoding), nullptr) &&
        std::strcmp(encoding, OSSL_PKEY_EC_ENCODING_GROUP) != 0) {
      return Refuse(
          "EC key with explicit curve parameters; a named curve is "
          "required");
    }
    char group[80] = {};
    if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), nullptr) != 1) {
      return Refuse("EC key without a named curve");
    }
    int nid = OBJ_sn2nid(group);
    if (nid == NID_undef) nid = EC_curve_nist2nid(group);
    if (nid == NID_X9_62_prime256v1 && policy.allow_ec_p256) {
      out.key_curve = "P-256";
    } else if (nid == NID_secp384r1 && policy.allow_ec_p384) {
      out.key_curve = "P-384";
    } else {
      return Refuse(absl::StrCat("EC curve ", group, " is not allowed"));
    }
    out.key_type = "EC";
    out.key_bits = EVP_PKEY_get_bits(pkey);
    return absl::OkStatus();
  }
  const char* name = OBJ_nid2sn(id);
  return Refuse(absl::StrCat("key type ", name != nullptr ? name : "unknown",
                             " is not allowed; only RSA and EC"));
}

absl::StatusOr<ParsedCsr> ParseDer(absl::string_view der,
                                   const CsrPolicy& policy) {
  if (der.size() > policy.max_der_bytes) {
    return Refuse(absl::StrCat("DER is ", der.size(), " bytes; the limit is ",
                               policy.max_der_bytes));
  }
  if (der.size() > static_cast<size_t>(LONG_MAX)) return Refuse("too large");
  absl::Status status = CheckOuterDer(der);
  if (!status.ok()) return status;

  const unsigned char* p = Bytes(der);
  OpenSslPtr<X509_REQ> req(
      d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())));
  if (req == nullptr) return Refuse("malformed PKCS#10 DER");
  if (p != Bytes(der) + der.size()) {
    return Refuse("trailing bytes after the DER (all bytes must be consumed)");
  }
  if (X509_REQ_get_version(req.get()) != X509_REQ_VERSION_1) {
    return Refuse("version is not v1 (0)");
  }

  ParsedCsr out;
  status = ReadSubject(req.get(), out);
  if (!status.ok()) return status;
  status = ReadExtensions(req.get(), policy, out);
  if (!status.ok()) return status;
  status = ReadChallenge(req.get(), out);
  if (!status.ok()) return status;

  OpenSslPtr<EVP_PKEY> pkey(X509_REQ_get_pubkey(req.get()));
  if (pkey == nullptr) {
    return Refuse("public key is malformed or of an unknown algorithm");
  }
  // The key policy comes before the signature: verifying with an oversized
  // key is the expensive step.
  status = CheckKeyPolicy(pkey.get(), policy, out);
  if (!status.ok()) return status;
  if (X509_REQ_verify(req.get(), pkey.get()) != 1) {
    return Refuse("signature does not verify with the request's public key");
  }

  // The request's own SubjectPublicKeyInfo, re-serialised from its parsed
  // ASN.1 (i2d_PUBKEY on the EVP_PKEY would go through OpenSSL 3's encoder
  // framework: about a quarter of the whole parse).
  unsigned char* spki = nullptr;
  const int spki_len =
      i2d_X509_PUBKEY(X509_REQ_get_X509_PUBKEY(req.get()), &spki);
  OpenSslPtr<unsigned char> owned_spki(spki);
  if (spki_len <= 0 || spki == nullptr) {
    return Refuse("public key cannot be encoded as SubjectPublicKeyInfo");
  }
  out.public_key_sha256 = Sha256(absl::string_view(
      reinterpret_cast<const char*>(spki), static_cast<size_t>(spki_len)));
  out.der.assign(der.data(), der.size());
  return out;
}

}  // namespace

absl::StatusOr<ParsedCsr> ParseCsr(absl::string_view der_or_pem,
                                   const CsrPolicy& policy) {
  ErrorQueueMark mark;
  if (der_or_pem.empty()) return Refuse("empty input");
  if (static_cast<unsigned char>(der_or_pem[0]) == 0x30) {
    return ParseDer(der_or_pem, policy);
  }
  // PEM: base64 grows the DER by 4/3, plus line breaks and the armour.
  const size_t max_der = policy.max_der_bytes;
  const size_t max_pem = max_der > (SIZE_MAX - kPemSlackBytes) / 2
                             ? SIZE_MAX
                             : 2 * max_der + kPemSlackBytes;
  if (der_or_pem.size() > max_pem ||
      der_or_pem.size() > static_cast<size_t>(INT_MAX)) {
    return Refuse(absl::StrCat("input is ", der_or_pem.size(),
                               " bytes; the PEM limit is ", max_pem));
  }
  absl::StatusOr<std::string> der = PemToDer(der_or_pem);
  if (!der.ok()) return der.status();
  if (der->empty() || static_cast<unsigned char>((*der)[0]) != 0x30) {
    return Refuse("PEM payload is not DER");
  }
  return ParseDer(*der, policy);
}

absl::string_view ChallengeStringTypeName(ChallengeStringType t) {
  switch (t) {
    case ChallengeStringType::kNone:
      return "None";
    case ChallengeStringType::kPrintableString:
      return "PrintableString";
    case ChallengeStringType::kUtf8String:
      return "UTF8String";
    case ChallengeStringType::kBmpString:
      return "BMPString";
  }
  return "None";
}

}  // namespace scepca
