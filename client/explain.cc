#include "client/explain.h"

#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace scepca {
namespace {

constexpr char kAppleSource[] =
    "Apple, Configuration Profile Reference, \"Error Codes\" "
    "(MCSCEPErrorDomain); the causes below are our reading of the payload "
    "and the protocol";
constexpr char kRfcSource[] = "RFC 8894 (SCEP), section 3.2.1.4, failInfo";

// Every refusal reason of Validate.
const std::vector<std::string>& RefusalReasons() {
  static const auto* const kReasons =
      new std::vector<std::string>{"not_found",         "expired",
                                   "already_used",      "revoked",
                                   "identity_mismatch", "bad_signature",
                                   "malformed",         "challenge_mismatch",
                                   "csr_invalid",       "csr_required"};
  return *kReasons;
}

std::vector<ExplainEntry> BuildCatalogue() {
  std::vector<ExplainEntry> c;
  auto apple = [&](int code, std::string title, std::string meaning,
                   std::vector<std::string> causes,
                   std::vector<std::string> checks,
                   std::vector<std::string> reasons = {},
                   std::vector<std::string> aliases = {}) {
    ExplainEntry e;
    e.key = absl::StrCat("MCSCEPErrorDomain/", code);
    e.domain = "MCSCEPErrorDomain";
    e.code = code;
    e.title = std::move(title);
    e.source = kAppleSource;
    e.meaning = std::move(meaning);
    e.causes = std::move(causes);
    e.checks = std::move(checks);
    e.reasons = std::move(reasons);
    e.aliases = std::move(aliases);
    e.aliases.push_back(absl::StrCat(code));
    e.aliases.push_back(absl::StrCat("MCSCEPErrorDomain ", code));
    e.aliases.push_back(absl::StrCat("MCSCEPErrorDomain code ", code));
    c.push_back(std::move(e));
  };
  const std::string doctor = "challengectl doctor --scep-url URL";

  apple(22000, "Invalid key usage",
        "The SCEP payload's Key Usage has a value the device does not "
        "accept. Apple documents 1 (signing) and 4 (encryption), 5 for both. "
        "The payload itself is refused: no request reaches the SCEP server.",
        {"Key Usage set to another bit mask (for example 2 or 8, X.509 "
         "keyUsage bits copied into the payload)"},
        {"the Key Usage of the profile's SCEP payload (challengectl "
         "mobileconfig writes 5)",
         "some CAs (Apple names the Windows CA) issue for signing or "
         "encryption but not both: use 1 or 4 for them"});
  apple(22001, "Cannot generate key pair",
        "The device could not generate the key pair the SCEP payload asks "
        "for. No request reaches the SCEP server.",
        {"a Keysize Apple does not document (it lists 1024, 2048 and 4096)",
         "a Key Type other than RSA (Apple documents only RSA)"},
        {"Keysize and Key Type in the profile's SCEP payload"});
  apple(
      22002, "Invalid CAResponse",
      "The GetCACert answer said it was one CA certificate "
      "(application/x-x509-ca-cert), but the device could not read it as "
      "one.",
      {"the certificate is PEM instead of DER",
       "an error or login page served with that Content-Type", "an empty body"},
      {absl::StrCat(doctor, " (check ca.get-ca-cert)")});
  apple(22003, "Invalid RAResponse",
        "The GetCACert answer was a CA and RA bundle "
        "(application/x-x509-ca-ra-cert) the device could not use.",
        {"the body is not a PKCS#7 certs-only message",
         "no RA certificate issued by the CA with keyUsage digitalSignature "
         "and keyEncipherment (nor a signing-only and an encryption-only "
         "pair)",
         "the profile's CAFingerprint does not match the CA certificate"},
        {absl::StrCat(doctor,
                      " --ca-fingerprint HEX (check ca.ra-cert and "
                      "ca.fingerprint)"),
         "the CAFingerprint in the profile: a hash of the CA certificate, "
         "not of the RA or TLS certificate"});
  apple(22004, "Unsupported certificate configuration",
        "The device found no CA (or CA and RA) certificate configuration it "
        "supports in the GetCACert answer.",
        {"a Content-Type other than application/x-x509-ca-cert and "
         "application/x-x509-ca-ra-cert (text/html, "
         "application/octet-stream, ...)",
         "an answer without a usable certificate",
         "a server hosting several CAs that needs the profile's Name (sent "
         "as message=) to pick one"},
        {absl::StrCat(doctor, " (check ca.get-ca-cert)"),
         "the Name in the profile's SCEP payload"});
  apple(22005, "Network error",
        "An HTTP request to the SCEP URL failed: the device got no answer "
        "it could use.",
        {"DNS, routing or a firewall between the device and the SCEP server",
         "a TLS certificate the device does not trust: the DNS name only in "
         "the CN and not in the subjectAltName, a validity over 825 days "
         "(398 days for public CAs since 2020-09-01), an RSA key under 2048 "
         "bits, a SHA-1 signature, no serverAuth EKU, an unknown root or "
         "missing intermediates",
         "a proxy or server closing the connection (for example on a long "
         "GET request when POSTPKIOperation is not advertised)"},
        {absl::StrCat(doctor,
                      " [--scep-ca ROOT.pem] (check endpoint.reachable and "
                      "tls.*)"),
         "that the device's network reaches the URL"});
  apple(22006, "Insufficient CACaps",
        "The capabilities the SCEP server advertised (GetCACaps) leave no "
        "hash algorithm the device can use.",
        {"GetCACaps lists capabilities but none of SHA-512, SHA-256 or SHA-1",
         "GetCACaps answers with something that is not a capability list "
         "(a web page)"},
        {absl::StrCat(doctor, " (check caps.list and caps.sha-256)")});
  apple(22007, "Invalid signed certificate",
        "The SCEP server's reply to the enrollment did not carry a "
        "certificate the device could use.",
        {"a SUCCESS reply without the issued certificate",
         "a certificate the device cannot read in the reply"},
        {"the SCEP server's and the CA's logs for that transaction: did the "
         "CA issue, and what did the server send back?"});
  apple(22008, "Cannot create identity",
        "The device could not pair the certificate it received with the "
        "private key it generated for the request.",
        {"the server answered with a certificate for another key (one "
         "issued for an earlier request, or a CA certificate)"},
        {"the SCEP server's log: the issued certificate's public key must be "
         "the CSR's",
         "how the server handles retried transactions (the same "
         "transactionID)"});
  apple(22009, "Cannot create temporary identity",
        "The device could not create the temporary self-signed identity it "
        "signs the enrollment request with. This happens on the device.",
        {"a problem on the device (key generation or keychain)"},
        {"the device's console log (process profiled) for the underlying "
         "error; retry, or restart the device"});
  apple(22010, "Cannot store temporary identity",
        "The device could not store its temporary identity in the keychain. "
        "This happens on the device.",
        {"a keychain problem on the device"},
        {"the device's console log (process profiled) for the underlying "
         "error; retry, or restart the device"});
  apple(22011, "Cannot generate CSR",
        "The device could not build the certificate request from the SCEP "
        "payload.",
        {"a Subject that is not an array of arrays of [OID or short name, "
         "value] pairs, or an OID the device cannot encode",
         "SubjectAltName values of the wrong type (each a string or an "
         "array of strings)",
         "a Challenge that is not a string"},
        {"Subject, SubjectAltName and Challenge in the profile (compare "
         "with what challengectl mobileconfig writes)"});
  apple(22012, "Cannot store CACertificate",
        "The device could not store the CA certificate from GetCACert in its "
        "keychain.",
        {"a keychain problem on the device",
         "a GetCACert certificate the keychain does not accept"},
        {"the device's console log (process profiled) for the underlying "
         "error",
         absl::StrCat(doctor, " (check ca.get-ca-cert)")});
  apple(22013, "Invalid PKIOperation response",
        "The reply to the enrollment request (PKIOperation) was not a "
        "success the device could verify. Devices show \"The SCEP server "
        "returned an invalid response.\" It is also what a device shows when "
        "the server refuses the challenge: SCEP has no failInfo for a bad "
        "challenge, so servers answer FAILURE with badRequest.",
        {"the challenge was refused: never issued (or forgotten), expired, "
         "already used (also by an earlier attempt of the same profile), "
         "revoked, or the CSR does not ask for the identity the challenge "
         "is bound to",
         "the reply is signed by another certificate than the CA or RA "
         "certificate from GetCACert (a rollover between the requests, or "
         "servers behind one name with different RA certificates)",
         "an HTTP error page or a proxy's answer instead of a SCEP reply"},
        {"challengectl validate --challenge C --dry-run (or doctor "
         "--challenge C): would the authority accept it, and if not why?",
         "challengectl get CHALLENGE_ID: its history (when it was used, by "
         "which transaction)",
         "the SCEP server's log for the failInfo it sent",
         absl::StrCat(doctor, " (check ca.*)")},
        RefusalReasons(),
        {"The SCEP server returned an invalid response",
         "SCEP server returned an invalid response"});

  auto fail_info = [&](int code, std::string name, std::string meaning,
                       std::vector<std::string> causes,
                       std::vector<std::string> checks,
                       std::vector<std::string> reasons = {}) {
    ExplainEntry e;
    e.key = absl::StrCat("failInfo/", name);
    e.domain = "SCEP failInfo";
    e.code = code;
    e.title = name;
    e.source = kRfcSource;
    e.meaning = std::move(meaning);
    e.causes = std::move(causes);
    e.checks = std::move(checks);
    e.reasons = std::move(reasons);
    e.aliases = {name, absl::StrCat(code), absl::StrCat("failInfo ", code),
                 absl::StrCat("failInfo ", name),
                 absl::StrCat(name, " (", code, ")")};
    c.push_back(std::move(e));
  };
  fail_info(0, "badAlg",
            "Unrecognized or unsupported algorithm: the server cannot handle "
            "an algorithm the request uses.",
            {"the client used a hash or cipher the server does not support "
             "(it ignored GetCACaps, or GetCACaps advertises more than the "
             "server can do)"},
            {absl::StrCat(doctor, " (caps.*)"),
             "the algorithms the SCEP server is configured for"});
  fail_info(1, "badMessageCheck",
            "Integrity check failed: the signature on the request's CMS "
            "message does not verify.",
            {"the request was altered on the way (a proxy re-encoding the "
             "GET message)",
             "the client signed with a key that does not match the "
             "certificate in the message"},
            {"proxies between device and server; whether POSTPKIOperation "
             "is advertised (GET puts the request in the URL)"});
  fail_info(2, "badRequest",
            "Transaction not permitted or supported: the general refusal. "
            "SCEP servers (micromdm/scep, step-ca, ...) send it when the "
            "challenge is refused, since SCEP has no failInfo for a bad "
            "challenge; Apple devices then report MCSCEPErrorDomain 22013.",
            {"the challenge was refused (see the reasons below)",
             "the CA's policy refused the request (subject, key size, "
             "template)",
             "a renewal the server does not allow (yet)"},
            {"challengectl validate --challenge C --dry-run",
             "challengectl get CHALLENGE_ID",
             "the SCEP server's log (step-ca also sends a failInfoText)"},
            RefusalReasons());
  fail_info(3, "badTime",
            "Message time not close to the system time: the signingTime in "
            "the request was not close enough to the server's time.",
            {"the device's or the server's clock is wrong"},
            {"time synchronisation (NTP) on the device and the server"});
  fail_info(4, "badCertId",
            "No certificate could be identified matching the provided "
            "criteria.",
            {"GetCert, GetCRL or CertPoll naming an issuer and serial or a "
             "transaction the server does not know",
             "a renewal signed with a certificate the server does not know"},
            {"the SCEP server's log for the issuer, serial or transactionID "
             "it looked up"});

  {
    ExplainEntry e;
    e.key = "NDES/event-29";
    e.domain = "NDES event";
    e.code = 29;
    e.title = "The password in the certificate request cannot be verified";
    e.source =
        "Microsoft NDES (Network Device Enrollment Service), as reported by "
        "NDES administrators (certnanny/sscep#46, #156)";
    e.meaning =
        "NDES logs event 29 when it cannot verify the challenge password of "
        "a request; the client is told that the password \"cannot be "
        "verified. It may have been used already.\"";
    e.causes = {
        "the password was used already (NDES passwords are single-use by "
        "default)",
        "it expired (60 minutes by default, PasswordValidity)",
        "NDES restarted or IIS recycled: its password cache is in memory",
        "it was fetched from one NDES server and used on another (each has "
        "its own cache)",
        "it was encoded in a way NDES does not match (BMPString and UTF-8 "
        "confusion)"};
    e.checks = {
        "fetch a fresh password (mscep_admin), or issue one with "
        "challengectl issue",
        "the NDES server's application event log",
        "if this authority issued it: challengectl validate --challenge C "
        "--dry-run"};
    e.reasons = {"already_used", "expired", "not_found"};
    e.aliases = {"29",
                 "event 29",
                 "event id 29",
                 "NDES event 29",
                 "NDES 29",
                 "password cannot be verified",
                 "may have been used already"};
    c.push_back(std::move(e));
  }
  {
    ExplainEntry e;
    e.key = "NDES/password-cache-full";
    e.domain = "NDES";
    e.title = "The password cache is full.";
    e.source =
        "Microsoft NDES admin page (mscep_admin); registry values under "
        "HKLM\\SOFTWARE\\Microsoft\\Cryptography\\MSCEP";
    e.meaning =
        "The NDES admin page shows this instead of a new password when too "
        "many unused passwords are outstanding (PasswordMax, 5 by default, "
        "each valid for PasswordValidity, 60 minutes by default). This "
        "authority's NDES-compatible page shows the same text when an "
        "account reaches its quota.";
    e.causes = {
        "more passwords fetched than PasswordMax within their validity (a "
        "broker fetching one per device)",
        "this authority: the account's --quota of outstanding challenges is "
        "reached"};
    e.checks = {
        "NDES: wait for passwords to expire, restart IIS to clear the "
        "cache, or raise PasswordMax",
        "this authority: challengectl list --device ndes:ACCOUNT, revoke "
        "the unused ones, or raise the quota (challengectl http-user add "
        "--name ACCOUNT --quota N --replace)"};
    e.aliases = {"The password cache is full", "password cache is full",
                 "password cache full", "cache full", "cache is full"};
    c.push_back(std::move(e));
  }
  {
    ExplainEntry e;
    e.key = "ProfileManager/scep-bad-challenge";
    e.domain = "Apple Profile Manager";
    e.title = "SCEP BAD CHALLENGE";
    e.source =
        "reported from the logs of Apple's Profile Manager (macOS Server); "
        "the string is not in Apple's documentation, so its meaning here is "
        "as reported by administrators";
    e.meaning =
        "The SCEP server refused the challenge password of an enrollment "
        "request; the device shows MCSCEPErrorDomain 22013.";
    e.causes = {"a challenge the server did not issue, or no longer knows",
                "a challenge already used, or expired",
                "a profile edited or reinstalled with an old challenge"};
    e.checks = {"challengectl validate --challenge C --dry-run",
                "challengectl get CHALLENGE_ID",
                "deliver a fresh profile (challengectl mobileconfig)"};
    e.reasons = {"not_found", "expired",           "already_used",
                 "revoked",   "identity_mismatch", "challenge_mismatch"};
    e.aliases = {"SCEP BAD CHALLENGE", "bad challenge"};
    c.push_back(std::move(e));
  }
  return c;
}

// Lower case; every run of non-alphanumerics becomes one space.
std::string Normalize(absl::string_view text) {
  std::string out;
  bool space = false;
  for (char ch : text) {
    const unsigned char u = static_cast<unsigned char>(ch);
    if (absl::ascii_isalnum(u)) {
      if (space && !out.empty()) out.push_back(' ');
      space = false;
      out.push_back(absl::ascii_tolower(u));
    } else {
      space = true;
    }
  }
  return out;
}

std::vector<std::string> Names(const ExplainEntry& e) {
  std::vector<std::string> names = {Normalize(e.key), Normalize(e.title)};
  if (e.code >= 0) {
    names.push_back(Normalize(absl::StrCat(e.domain, " ", e.code)));
  }
  for (const std::string& a : e.aliases) names.push_back(Normalize(a));
  return names;
}

}  // namespace

const std::vector<ExplainEntry>& ExplainCatalogue() {
  static const auto* const kCatalogue =
      new std::vector<ExplainEntry>(BuildCatalogue());
  return *kCatalogue;
}

std::vector<const ExplainEntry*> FindExplainEntries(absl::string_view query) {
  std::vector<const ExplainEntry*> found;
  const std::string q = Normalize(query);
  if (q.empty()) return found;
  const std::vector<ExplainEntry>& all = ExplainCatalogue();
  // 1. A name or alias, exactly.
  for (const ExplainEntry& e : all) {
    for (const std::string& name : Names(e)) {
      if (name == q) {
        found.push_back(&e);
        break;
      }
    }
  }
  if (!found.empty()) return found;
  // 2. One number and words: every entry with that number whose names
  // mention the words ("mcscep 22013", "[22013][MCSCEPErrorDomain]").
  std::vector<std::string> words;
  int number = -1;
  int numbers = 0;
  for (absl::string_view w : absl::StrSplit(q, ' ')) {
    int n = 0;
    if (absl::SimpleAtoi(w, &n)) {
      number = n;
      ++numbers;
    } else {
      words.emplace_back(w);
    }
  }
  if (numbers == 1) {
    for (const ExplainEntry& e : all) {
      if (e.code != number) continue;
      bool all_words = true;
      for (const std::string& w : words) {
        bool seen = false;
        for (const std::string& name : Names(e)) {
          seen = seen || absl::StrContains(name, w);
        }
        all_words = all_words && seen;
      }
      if (all_words) found.push_back(&e);
    }
    return found;
  }
  // 3. Part of a title or alias ("invalid response", "cache").
  if (q.size() >= 4) {
    for (const ExplainEntry& e : all) {
      for (const std::string& name : Names(e)) {
        if (absl::StrContains(name, q)) {
          found.push_back(&e);
          break;
        }
      }
    }
  }
  return found;
}

std::string FormatExplainEntry(const ExplainEntry& e) {
  std::string out =
      e.code >= 0 ? absl::StrCat(e.domain, " ", e.code, ": ", e.title, "\n")
                  : absl::StrCat(e.domain, ": ", e.title, "\n");
  absl::StrAppend(&out, "  Source:  ", e.source, "\n");
  absl::StrAppend(&out, "  Meaning: ", e.meaning, "\n");
  absl::StrAppend(&out, "  Likely causes:\n");
  for (const std::string& s : e.causes)
    absl::StrAppend(&out, "    - ", s, "\n");
  absl::StrAppend(&out, "  What to check:\n");
  for (const std::string& s : e.checks)
    absl::StrAppend(&out, "    - ", s, "\n");
  if (e.reasons.empty()) {
    absl::StrAppend(&out,
                    "  This authority's reasons: none (this happens before "
                    "or apart from the challenge check)\n");
  } else {
    absl::StrAppend(&out, "  This authority's reasons: ",
                    absl::StrJoin(e.reasons, ", "), "\n");
  }
  return out;
}

std::string FormatExplainList() {
  std::string out =
      absl::StrFormat("%-22s  %-5s  %s\n", "SOURCE", "CODE", "MEANING");
  for (const ExplainEntry& e : ExplainCatalogue()) {
    const std::string code = e.code >= 0 ? absl::StrCat(e.code) : "-";
    // failInfo names are terse: add the first phrase of the meaning.
    const std::string title =
        e.domain == "SCEP failInfo"
            ? absl::StrCat(e.title, ": ",
                           e.meaning.substr(0, e.meaning.find_first_of(":.")))
            : e.title;
    absl::StrAppendFormat(&out, "%-22s  %-5s  %s\n", e.domain, code, title);
  }
  absl::StrAppend(&out,
                  "Run 'challengectl explain CODE' for the causes and what to "
                  "check.\n");
  return out;
}

}  // namespace scepca
