#include "tests/testing/csr_builder.h"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace scepca::testing {
namespace {

struct OpenSslFree {
  void operator()(X509_REQ* p) const { X509_REQ_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509_NAME* p) const { X509_NAME_free(p); }
  void operator()(X509_ATTRIBUTE* p) const { X509_ATTRIBUTE_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
  void operator()(GENERAL_NAME* p) const { GENERAL_NAME_free(p); }
  void operator()(STACK_OF(X509_EXTENSION) * p) const {
    sk_X509_EXTENSION_pop_free(p, X509_EXTENSION_free);
  }
  void operator()(ASN1_IA5STRING* p) const { ASN1_IA5STRING_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
  void operator()(unsigned char* p) const { OPENSSL_free(p); }
};
template <typename T>
using OpenSslPtr = std::unique_ptr<T, OpenSslFree>;

// Returns kInternal naming `what` and OpenSSL's reason; clears the queue.
absl::Status OpenSslError(absl::string_view what) {
  char reason[256] = "no OpenSSL error";
  const unsigned long code = ERR_peek_last_error();
  if (code != 0) ERR_error_string_n(code, reason, sizeof(reason));
  ERR_clear_error();
  return absl::InternalError(
      absl::StrCat("csr_builder: ", what, " failed: ", reason));
}

EVP_PKEY* GenerateKey(const KeySpec& spec) {
  switch (spec.type) {
    case KeyType::kRsa:
      return EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA",
                               static_cast<size_t>(spec.rsa_bits));
    case KeyType::kEcP256:
      return EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    case KeyType::kEcP384:
      return EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
    case KeyType::kEcP521:
      return EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-521");
    case KeyType::kEcSecp256k1:
      return EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "secp256k1");
    case KeyType::kEd25519:
      return EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  }
  return nullptr;
}

// A public-only RSA key with a random odd modulus of `bits` bits.
// Its exponent is 65537 if `exponent_bits` is 0, else random and odd.
absl::StatusOr<OpenSslPtr<EVP_PKEY>> FakeRsaPublicKey(int bits,
                                                      int exponent_bits) {
  OpenSslPtr<BIGNUM> n(BN_new());
  OpenSslPtr<BIGNUM> e(BN_new());
  if (n == nullptr || e == nullptr ||
      !BN_rand(n.get(), bits, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ODD) ||
      !(exponent_bits > 0 ? BN_rand(e.get(), exponent_bits, BN_RAND_TOP_ONE,
                                    BN_RAND_BOTTOM_ODD)
                          : BN_set_word(e.get(), RSA_F4))) {
    return OpenSslError("BN_rand");
  }
  OpenSslPtr<OSSL_PARAM_BLD> bld(OSSL_PARAM_BLD_new());
  if (bld == nullptr ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get())) {
    return OpenSslError("OSSL_PARAM_BLD");
  }
  OpenSslPtr<OSSL_PARAM> params(OSSL_PARAM_BLD_to_param(bld.get()));
  OpenSslPtr<EVP_PKEY_CTX> ctx(
      EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  EVP_PKEY* key = nullptr;
  if (params == nullptr || ctx == nullptr ||
      EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) !=
          1) {
    return OpenSslError("EVP_PKEY_fromdata");
  }
  return OpenSslPtr<EVP_PKEY>(key);
}

// Appends `text` (UTF-8) as UTF-16BE, with surrogate pairs above U+FFFF.
std::string Utf8ToUtf16Be(absl::string_view text) {
  std::string out;
  size_t i = 0;
  auto put = [&out](uint32_t unit) {
    out.push_back(static_cast<char>(unit >> 8));
    out.push_back(static_cast<char>(unit & 0xFF));
  };
  while (i < text.size()) {
    const unsigned char b = static_cast<unsigned char>(text[i]);
    uint32_t cp;
    size_t len;
    if (b < 0x80) {
      cp = b;
      len = 1;
    } else if (b < 0xE0) {
      cp = b & 0x1F;
      len = 2;
    } else if (b < 0xF0) {
      cp = b & 0x0F;
      len = 3;
    } else {
      cp = b & 0x07;
      len = 4;
    }
    for (size_t k = 1; k < len && i + k < text.size(); ++k) {
      cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
    }
    i += len;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      put(0xD800 | (cp >> 10));
      put(0xDC00 | (cp & 0x3FF));
    } else {
      put(cp);
    }
  }
  return out;
}

int ChallengeTag(ChallengeEncoding encoding) {
  switch (encoding) {
    case ChallengeEncoding::kPrintableString:
      return V_ASN1_PRINTABLESTRING;
    case ChallengeEncoding::kUtf8String:
      return V_ASN1_UTF8STRING;
    case ChallengeEncoding::kBmpString:
      return V_ASN1_BMPSTRING;
    case ChallengeEncoding::kIa5String:
      return V_ASN1_IA5STRING;
  }
  return V_ASN1_PRINTABLESTRING;
}

// DER of the OIDs of challengePassword (1.2.840.113549.1.9.7) and of
// unstructuredAddress (...9.8), which has the same length: a stand-in for a
// second challengePassword, which OpenSSL 3 refuses to add.
constexpr char kChallengePasswordOid[] =
    "\x06\x09\x2A\x86\x48\x86\xF7\x0D\x01\x09\x07";
constexpr char kUnstructuredAddressOid[] =
    "\x06\x09\x2A\x86\x48\x86\xF7\x0D\x01\x09\x08";

// Adds the challengePassword of `spec` to `req`; appends to `patches` what
// must be rewritten in the encoded request info.
absl::Status AddChallenge(
    const CsrSpec& spec, X509_REQ* req,
    std::vector<std::pair<std::string, std::string>>& patches) {
  if (spec.challenge_shape == ChallengeShape::kAbsent) return absl::OkStatus();
  int tag = ChallengeTag(spec.challenge_encoding);
  const std::string value =
      spec.challenge_encoding == ChallengeEncoding::kBmpString &&
              !spec.challenge_raw_bytes
          ? Utf8ToUtf16Be(spec.challenge)
          : spec.challenge;
  if (tag == V_ASN1_BMPSTRING && value.size() % 2 != 0) {
    // OpenSSL will not encode an odd-length BMPString: write a UTF8String
    // and retag it.
    if (value.size() > 127) {
      return absl::InvalidArgumentError("odd BMPString longer than 127 bytes");
    }
    tag = V_ASN1_UTF8STRING;
    const std::string length(1, static_cast<char>(value.size()));
    patches.emplace_back(absl::StrCat("\x0C", length, value),
                         absl::StrCat("\x1E", length, value));
  }
  const auto* bytes = reinterpret_cast<const unsigned char*>(value.data());
  const int len = static_cast<int>(value.size());
  const int nid = NID_pkcs9_challengePassword;
  switch (spec.challenge_shape) {
    case ChallengeShape::kAbsent:
      break;
    case ChallengeShape::kSingle:
      if (!X509_REQ_add1_attr_by_NID(req, nid, tag, bytes, len)) {
        return OpenSslError("X509_REQ_add1_attr_by_NID");
      }
      break;
    case ChallengeShape::kTwoAttributes:
      if (!X509_REQ_add1_attr_by_NID(req, nid, tag, bytes, len) ||
          !X509_REQ_add1_attr_by_NID(req, NID_pkcs9_unstructuredAddress, tag,
                                     bytes, len)) {
        return OpenSslError("X509_REQ_add1_attr_by_NID");
      }
      patches.emplace_back(kUnstructuredAddressOid, kChallengePasswordOid);
      break;
    case ChallengeShape::kMultiValued: {
      OpenSslPtr<X509_ATTRIBUTE> attr(
          X509_ATTRIBUTE_create_by_NID(nullptr, nid, tag, bytes, len));
      if (attr == nullptr ||
          !X509_ATTRIBUTE_set1_data(attr.get(), tag, bytes, len) ||
          !X509_REQ_add1_attr(req, attr.get())) {
        return OpenSslError("multi-valued attribute");
      }
      break;
    }
    case ChallengeShape::kEmptySet: {
      OpenSslPtr<X509_ATTRIBUTE> attr(X509_ATTRIBUTE_new());
      if (attr == nullptr ||
          !X509_ATTRIBUTE_set1_object(attr.get(), OBJ_nid2obj(nid)) ||
          !X509_REQ_add1_attr(req, attr.get())) {
        return OpenSslError("empty attribute");
      }
      break;
    }
  }
  return absl::OkStatus();
}

absl::Status AddGeneralName(GENERAL_NAMES* names, int type,
                            absl::string_view value) {
  OpenSslPtr<GENERAL_NAME> name(GENERAL_NAME_new());
  if (name == nullptr) return OpenSslError("GENERAL_NAME_new");
  if (type == GEN_IPADD) {
    ASN1_OCTET_STRING* ip = ASN1_OCTET_STRING_new();
    if (ip == nullptr ||
        !ASN1_OCTET_STRING_set(
            ip, reinterpret_cast<const unsigned char*>(value.data()),
            static_cast<int>(value.size()))) {
      ASN1_OCTET_STRING_free(ip);
      return OpenSslError("ASN1_OCTET_STRING_set");
    }
    GENERAL_NAME_set0_value(name.get(), type, ip);
  } else {
    ASN1_IA5STRING* text = ASN1_IA5STRING_new();
    if (text == nullptr ||
        !ASN1_STRING_set(text, value.data(), static_cast<int>(value.size()))) {
      ASN1_IA5STRING_free(text);
      return OpenSslError("ASN1_STRING_set");
    }
    GENERAL_NAME_set0_value(name.get(), type, text);
  }
  if (!sk_GENERAL_NAME_push(names, name.get())) {
    return OpenSslError("sk_GENERAL_NAME_push");
  }
  name.release();  // Owned by `names`.
  return absl::OkStatus();
}

absl::Status AddSans(const CsrSpec& spec, X509_REQ* req) {
  if (spec.dns_names.empty() && spec.email_addresses.empty() &&
      spec.uris.empty() && spec.ip_addresses.empty() &&
      spec.raw_ip_addresses.empty()) {
    return absl::OkStatus();
  }
  OpenSslPtr<GENERAL_NAMES> names(sk_GENERAL_NAME_new_null());
  if (names == nullptr) return OpenSslError("sk_GENERAL_NAME_new_null");
  for (const std::string& v : spec.dns_names) {
    absl::Status s = AddGeneralName(names.get(), GEN_DNS, v);
    if (!s.ok()) return s;
  }
  for (const std::string& v : spec.email_addresses) {
    absl::Status s = AddGeneralName(names.get(), GEN_EMAIL, v);
    if (!s.ok()) return s;
  }
  for (const std::string& v : spec.uris) {
    absl::Status s = AddGeneralName(names.get(), GEN_URI, v);
    if (!s.ok()) return s;
  }
  for (const std::string& v : spec.ip_addresses) {
    ASN1_OCTET_STRING* ip = a2i_IPADDRESS(v.c_str());
    if (ip == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("bad IP address ", v));
    }
    std::string raw(reinterpret_cast<const char*>(ASN1_STRING_get0_data(ip)),
                    static_cast<size_t>(ASN1_STRING_length(ip)));
    ASN1_OCTET_STRING_free(ip);
    absl::Status s = AddGeneralName(names.get(), GEN_IPADD, raw);
    if (!s.ok()) return s;
  }
  for (const std::string& v : spec.raw_ip_addresses) {
    absl::Status s = AddGeneralName(names.get(), GEN_IPADD, v);
    if (!s.ok()) return s;
  }
  OpenSslPtr<STACK_OF(X509_EXTENSION)> exts(sk_X509_EXTENSION_new_null());
  OpenSslPtr<X509_EXTENSION> ext(
      X509V3_EXT_i2d(NID_subject_alt_name, /*crit=*/0, names.get()));
  if (exts == nullptr || ext == nullptr ||
      !sk_X509_EXTENSION_push(exts.get(), ext.get())) {
    return OpenSslError("X509V3_EXT_i2d");
  }
  ext.release();  // Owned by `exts`.
  if (!X509_REQ_add_extensions(req, exts.get())) {
    return OpenSslError("X509_REQ_add_extensions");
  }
  return absl::OkStatus();
}

std::string DerLength(size_t n) {
  if (n < 0x80) return std::string(1, static_cast<char>(n));
  std::string bytes;
  for (; n > 0; n >>= 8) bytes.insert(bytes.begin(), static_cast<char>(n));
  return absl::StrCat(std::string(1, static_cast<char>(0x80 | bytes.size())),
                      bytes);
}

std::string Tlv(char tag, absl::string_view value) {
  return absl::StrCat(std::string(1, tag), DerLength(value.size()), value);
}

// Re-encodes the (already signed) `req` with `patches` applied to its
// request info, signed again with `signer` under the same algorithm.
absl::StatusOr<std::string> PatchAndSign(
    X509_REQ* req, EVP_PKEY* signer, const EVP_MD* md,
    const std::vector<std::pair<std::string, std::string>>& patches) {
  unsigned char* tbs_der = nullptr;
  const int tbs_len = i2d_re_X509_REQ_tbs(req, &tbs_der);
  OpenSslPtr<unsigned char> owned_tbs(tbs_der);
  if (tbs_len <= 0) return OpenSslError("i2d_re_X509_REQ_tbs");
  std::string tbs(reinterpret_cast<const char*>(tbs_der),
                  static_cast<size_t>(tbs_len));
  for (const auto& [from, to] : patches) {
    const size_t at = tbs.find(from);
    if (at == std::string::npos || from.size() != to.size()) {
      return absl::InvalidArgumentError(
          "csr_builder: a TBS patch does not apply (not found, or the "
          "replacement has another length)");
    }
    tbs.replace(at, from.size(), to);
  }

  const X509_ALGOR* alg = nullptr;
  X509_REQ_get0_signature(req, nullptr, &alg);
  unsigned char* alg_der = nullptr;
  const int alg_len = i2d_X509_ALGOR(alg, &alg_der);
  OpenSslPtr<unsigned char> owned_alg(alg_der);
  if (alg_len <= 0) return OpenSslError("i2d_X509_ALGOR");

  OpenSslPtr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  size_t sig_len = 0;
  const auto* tbs_bytes = reinterpret_cast<const unsigned char*>(tbs.data());
  if (ctx == nullptr ||
      EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, signer) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &sig_len, tbs_bytes, tbs.size()) !=
          1) {
    return OpenSslError("EVP_DigestSign");
  }
  std::string sig(sig_len + 1, '\0');  // Leading 0: no unused bits.
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(&sig[1]),
                     &sig_len, tbs_bytes, tbs.size()) != 1) {
    return OpenSslError("EVP_DigestSign");
  }
  sig.resize(sig_len + 1);
  return Tlv(0x30, absl::StrCat(
                       tbs,
                       absl::string_view(reinterpret_cast<const char*>(alg_der),
                                         static_cast<size_t>(alg_len)),
                       Tlv(0x03, sig)));
}

}  // namespace

EVP_PKEY* CachedKey(const KeySpec& spec) {
  static std::mutex* mu = new std::mutex;
  // Never destroyed, so no key outlives OpenSSL's own atexit clean-up.
  static auto* cache = new std::map<std::pair<int, int>, EVP_PKEY*>;
  const std::pair<int, int> id(static_cast<int>(spec.type),
                               spec.type == KeyType::kRsa ? spec.rsa_bits : 0);
  std::lock_guard<std::mutex> lock(*mu);
  auto it = cache->find(id);
  if (it != cache->end()) return it->second;
  EVP_PKEY* key = GenerateKey(spec);
  if (key == nullptr) {
    std::fprintf(stderr, "csr_builder: key generation failed\n");
    std::abort();
  }
  cache->emplace(id, key);
  return key;
}

std::string SubjectPublicKeyInfoDer(const KeySpec& spec) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(CachedKey(spec), &der);
  OpenSslPtr<unsigned char> owned(der);
  if (len <= 0) return "";
  return std::string(reinterpret_cast<const char*>(der),
                     static_cast<size_t>(len));
}

absl::StatusOr<std::string> BuildCsrDer(const CsrSpec& spec) {
  EVP_PKEY* key = CachedKey(spec.key);
  OpenSslPtr<EVP_PKEY> signer(EVP_PKEY_dup(key));
  if (signer == nullptr) return OpenSslError("EVP_PKEY_dup");
  OpenSslPtr<X509_REQ> req(X509_REQ_new());
  if (req == nullptr || !X509_REQ_set_version(req.get(), X509_REQ_VERSION_1)) {
    return OpenSslError("X509_REQ_new");
  }

  OpenSslPtr<X509_NAME> name(X509_NAME_new());
  if (name == nullptr) return OpenSslError("X509_NAME_new");
  for (const std::string& cn : spec.common_names) {
    if (!X509_NAME_add_entry_by_NID(
            name.get(), NID_commonName, MBSTRING_UTF8,
            reinterpret_cast<const unsigned char*>(cn.data()),
            static_cast<int>(cn.size()), -1, 0)) {
      return OpenSslError("X509_NAME_add_entry_by_NID");
    }
  }
  if (!X509_REQ_set_subject_name(req.get(), name.get())) {
    return OpenSslError("X509_REQ_set_subject_name");
  }

  if (spec.fake_rsa_public_bits > 0) {
    absl::StatusOr<OpenSslPtr<EVP_PKEY>> fake = FakeRsaPublicKey(
        spec.fake_rsa_public_bits, spec.fake_rsa_exponent_bits);
    if (!fake.ok()) return fake.status();
    if (!X509_REQ_set_pubkey(req.get(), fake->get())) {
      return OpenSslError("X509_REQ_set_pubkey");
    }
  } else {
    if (spec.ec_explicit_params &&
        !EVP_PKEY_set_utf8_string_param(signer.get(),
                                        OSSL_PKEY_PARAM_EC_ENCODING,
                                        OSSL_PKEY_EC_ENCODING_EXPLICIT)) {
      return OpenSslError("explicit EC parameters");
    }
    if (!X509_REQ_set_pubkey(req.get(), signer.get())) {
      return OpenSslError("X509_REQ_set_pubkey");
    }
  }

  std::vector<std::pair<std::string, std::string>> patches = spec.tbs_patches;
  absl::Status status = AddSans(spec, req.get());
  if (!status.ok()) return status;
  status = AddChallenge(spec, req.get(), patches);
  if (!status.ok()) return status;

  const EVP_MD* md =
      spec.key.type == KeyType::kEd25519 ? nullptr : EVP_sha256();
  if (X509_REQ_sign(req.get(), signer.get(), md) <= 0) {
    return OpenSslError("X509_REQ_sign");
  }
  std::string out;
  if (patches.empty()) {
    unsigned char* der = nullptr;
    const int len = i2d_X509_REQ(req.get(), &der);
    OpenSslPtr<unsigned char> owned(der);
    if (len <= 0) return OpenSslError("i2d_X509_REQ");
    out.assign(reinterpret_cast<const char*>(der), static_cast<size_t>(len));
  } else {
    absl::StatusOr<std::string> patched =
        PatchAndSign(req.get(), signer.get(), md, patches);
    if (!patched.ok()) return patched.status();
    out = *std::move(patched);
  }
  if (spec.corrupt_signature) out.back() = static_cast<char>(out.back() ^ 0x01);
  return out;
}

std::string DerToPem(absl::string_view der, absl::string_view label) {
  const std::string b64 = absl::Base64Escape(der);
  std::string out = absl::StrCat("-----BEGIN ", label, "-----\n");
  for (size_t i = 0; i < b64.size(); i += 64) {
    absl::StrAppend(&out, b64.substr(i, 64), "\n");
  }
  absl::StrAppend(&out, "-----END ", label, "-----\n");
  return out;
}

}  // namespace scepca::testing
