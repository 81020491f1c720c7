#include "tests/testing/cert_builder.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace scepca::testing {
namespace {

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};
template <typename T>
using Ptr = std::unique_ptr<T, Free>;

Ptr<EVP_PKEY> NewKey(int rsa_bits) {
  if (rsa_bits > 0) {
    return Ptr<EVP_PKEY>(EVP_RSA_gen(static_cast<unsigned int>(rsa_bits)));
  }
  return Ptr<EVP_PKEY>(EVP_EC_gen("P-256"));
}

std::string KeyPem(EVP_PKEY* key) {
  Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr,
                           nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string CertPem(X509* cert) {
  Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

bool AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  Ptr<X509_EXTENSION> ext(
      X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  return ext != nullptr && X509_add_ext(cert, ext.get(), -1) == 1;
}

absl::StatusOr<CertAndKey> Make(const CertSpec& spec, X509* issuer_cert,
                                EVP_PKEY* issuer_key) {
  Ptr<EVP_PKEY> key = NewKey(spec.rsa_bits);
  if (key == nullptr) return absl::InternalError("key generation failed");
  Ptr<X509> cert(X509_new());
  X509_set_version(cert.get(), 2);
  static long serial = 1000;
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), ++serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()),
                  absl::ToInt64Seconds(spec.not_before));
  X509_gmtime_adj(X509_getm_notAfter(cert.get()),
                  absl::ToInt64Seconds(spec.not_after));
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (!spec.common_name.empty()) {
    X509_NAME_add_entry_by_txt(
        name, "CN", MBSTRING_UTF8,
        reinterpret_cast<const unsigned char*>(spec.common_name.c_str()), -1,
        -1, 0);
  }
  X509* issuer = issuer_cert != nullptr ? issuer_cert : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer));
  bool ok = true;
  if (spec.is_ca) {
    ok = ok &&
         AddExt(cert.get(), issuer, NID_basic_constraints, "critical,CA:TRUE");
    ok = ok && AddExt(cert.get(), issuer, NID_key_usage,
                      "critical,keyCertSign,cRLSign");
  } else {
    ok = ok && AddExt(cert.get(), issuer, NID_basic_constraints, "CA:FALSE");
    ok = ok &&
         AddExt(cert.get(), issuer, NID_key_usage,
                spec.rsa_bits > 0 ? "critical,digitalSignature,keyEncipherment"
                                  : "critical,digitalSignature");
    std::vector<std::string> eku;
    if (spec.server_auth) eku.push_back("serverAuth");
    if (spec.client_auth) eku.push_back("clientAuth");
    if (!eku.empty()) {
      ok = ok && AddExt(cert.get(), issuer, NID_ext_key_usage,
                        absl::StrJoin(eku, ","));
    }
  }
  std::vector<std::string> sans;
  for (const auto& d : spec.dns_names) sans.push_back(absl::StrCat("DNS:", d));
  for (const auto& u : spec.uris) sans.push_back(absl::StrCat("URI:", u));
  for (const auto& i : spec.ip_addresses)
    sans.push_back(absl::StrCat("IP:", i));
  if (!sans.empty()) {
    ok = ok && AddExt(cert.get(), issuer, NID_subject_alt_name,
                      absl::StrJoin(sans, ","));
  }
  ok = ok && AddExt(cert.get(), issuer, NID_subject_key_identifier, "hash");
  if (!ok) return absl::InternalError("adding an extension failed");
  EVP_PKEY* signer = issuer_key != nullptr ? issuer_key : key.get();
  if (X509_sign(cert.get(), signer, EVP_sha256()) == 0) {
    return absl::InternalError("signing failed");
  }
  return CertAndKey{CertPem(cert.get()), KeyPem(key.get())};
}

}  // namespace

absl::StatusOr<CertAndKey> MakeSelfSigned(const CertSpec& spec) {
  return Make(spec, nullptr, nullptr);
}

absl::StatusOr<CertAndKey> MakeSigned(const CertSpec& spec,
                                      const CertAndKey& issuer) {
  Ptr<BIO> cert_bio(BIO_new_mem_buf(issuer.cert_pem.data(),
                                    static_cast<int>(issuer.cert_pem.size())));
  Ptr<X509> cert(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  Ptr<BIO> key_bio(BIO_new_mem_buf(issuer.key_pem.data(),
                                   static_cast<int>(issuer.key_pem.size())));
  Ptr<EVP_PKEY> key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (cert == nullptr || key == nullptr) {
    return absl::InvalidArgumentError("bad issuer");
  }
  return Make(spec, cert.get(), key.get());
}

std::string WriteFileWithMode(const std::string& path, const std::string& data,
                              int mode) {
  FILE* f = fopen(path.c_str(), "wb");
  if (f != nullptr) {
    fwrite(data.data(), 1, data.size(), f);
    fclose(f);
  }
  chmod(path.c_str(), static_cast<mode_t>(mode));
  return path;
}

}  // namespace scepca::testing
