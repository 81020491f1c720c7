// Tests of `challengectl mobileconfig`: the plist it writes (read back with
// Python's plistlib), and, against a real authority, that the profile's
// challenge validates for the identity it is bound to.
#include "client/mobileconfig.h"

#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/authority_process.h"
#include "tests/testing/cert_builder.h"
#include "tests/testing/csr_builder.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"

namespace scepca {
namespace {

using ::scepca::testing::CommandResult;
using ::scepca::testing::IsOk;
using ::scepca::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

constexpr char kPython[] = "/usr/bin/python3";

// Prints one line per checked fact of the profile at argv[1], read with
// plistlib; exits non-zero if it is not a plist.
constexpr char kReadProfile[] = R"py(
import json, plistlib, sys
with open(sys.argv[1], "rb") as f:
    p = plistlib.load(f)
s = p["PayloadContent"][0]
c = s["PayloadContent"]
print(json.dumps({
    "top_keys": sorted(p.keys()),
    "payload_keys": sorted(s.keys()),
    "content_keys": sorted(c.keys()),
    "type": p["PayloadType"], "version": p["PayloadVersion"],
    "display": p["PayloadDisplayName"], "uuid": p["PayloadUUID"],
    "identifier": p["PayloadIdentifier"],
    "scep_type": s["PayloadType"], "scep_version": s["PayloadVersion"],
    "scep_uuid": s["PayloadUUID"], "scep_identifier": s["PayloadIdentifier"],
    "url": c["URL"], "name": c.get("Name"), "subject": c["Subject"],
    "challenge": c["Challenge"], "keysize": c["Keysize"],
    "key_type": c["Key Type"], "key_usage": c["Key Usage"],
    "san": c.get("SubjectAltName"), "retries": c["Retries"],
    "retry_delay": c["RetryDelay"],
}, sort_keys=True))
)py";

// Reads the profile at `path` with plistlib; returns its JSON summary.
std::string ReadWithPlistlib(const std::string& path) {
  absl::StatusOr<testing::CommandResult> r =
      testing::RunCommand({kPython, "-c", kReadProfile, path});
  EXPECT_THAT(r, IsOk());
  if (!r.ok()) return "";
  EXPECT_EQ(r->exit_code, 0) << r->err;
  return r->out;
}

// Extracts a JSON string field (no escapes in our values) from `json`.
std::string Field(const std::string& json, const std::string& name) {
  const std::string key = absl::StrCat("\"", name, "\": \"");
  const size_t at = json.find(key);
  if (at == std::string::npos) return "";
  const size_t start = at + key.size();
  return json.substr(start, json.find('"', start) - start);
}

ScepProfile SampleProfile() {
  ScepProfile p;
  p.url = "https://scep.example.com/scep?a=1&b=2";
  p.ca_name = "Example <CA> & \"Co\"";
  p.common_name = "d\xc3\xa9vice-1 <x>";
  p.dns_names = {"a.example.com", "b&c.example.com"};
  p.challenge = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  p.key_size = 4096;
  p.display_name = "It's <mine>";
  p.description = "desc & more";
  p.profile_uuid = "11111111-1111-4111-8111-111111111111";
  p.payload_uuid = "22222222-2222-4222-8222-222222222222";
  return p;
}

TEST(MobileconfigBuildTest, WritesAPlistThatPlistlibReadsBack) {
  const std::string dir = testing::MakeTempDir();
  const std::string path = dir + "/p.mobileconfig";
  testing::WriteFileWithMode(path, BuildMobileconfig(SampleProfile()));
  const std::string json = ReadWithPlistlib(path);
  EXPECT_THAT(
      json,
      AllOf(
          HasSubstr("\"type\": \"Configuration\""), HasSubstr("\"version\": 1"),
          HasSubstr("\"scep_type\": \"com.apple.security.scep\""),
          HasSubstr("\"scep_version\": 1"),
          HasSubstr("\"url\": \"https://scep.example.com/scep?a=1&b=2\""),
          HasSubstr("\"name\": \"Example <CA> & \\\"Co\\\"\""),
          HasSubstr("\"subject\": [[[\"CN\", \"d\\u00e9vice-1 <x>\"]]]"),
          HasSubstr("\"keysize\": 4096"), HasSubstr("\"key_type\": \"RSA\""),
          HasSubstr("\"key_usage\": 5"),
          HasSubstr("\"san\": {\"dNSName\": [\"a.example.com\", "
                    "\"b&c.example.com\"]}"),
          HasSubstr("\"retries\": 3"), HasSubstr("\"retry_delay\": 10"),
          HasSubstr("\"display\": \"It's <mine>\""),
          HasSubstr("\"uuid\": \"11111111-1111-4111-8111-111111111111\""),
          HasSubstr("\"scep_uuid\": \"22222222-2222-4222-8222-222222222222\""),
          HasSubstr("\"identifier\": \"scepca.mobileconfig."
                    "11111111-1111-4111-8111-111111111111\"")));
  EXPECT_THAT(json,
              HasSubstr("\"content_keys\": [\"Challenge\", \"Key Type\", \"Key "
                        "Usage\", \"Keysize\", \"Name\", \"Retries\", "
                        "\"RetryDelay\", \"Subject\", \"SubjectAltName\", "
                        "\"URL\"]"));
  EXPECT_THAT(json, HasSubstr("\"top_keys\": [\"PayloadContent\", "
                              "\"PayloadDescription\", \"PayloadDisplayName\", "
                              "\"PayloadIdentifier\", \"PayloadType\", "
                              "\"PayloadUUID\", \"PayloadVersion\"]"));
}

TEST(MobileconfigBuildTest, EscapesEveryString) {
  EXPECT_EQ(XmlEscape("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&apos;f");
  const std::string xml = BuildMobileconfig(SampleProfile());
  EXPECT_THAT(xml, AllOf(HasSubstr("Example &lt;CA&gt; &amp; &quot;Co&quot;"),
                         HasSubstr("scep?a=1&amp;b=2"), Not(HasSubstr("<x>")),
                         Not(HasSubstr("b&c"))));
  ScepProfile p = SampleProfile();
  p.dns_names.clear();
  EXPECT_THAT(BuildMobileconfig(p), Not(HasSubstr("SubjectAltName")));
}

TEST(MobileconfigBuildTest, MakesRandomVersion4Uuids) {
  absl::StatusOr<std::string> a = NewUuid();
  absl::StatusOr<std::string> b = NewUuid();
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_THAT(*a, MatchesRegex("[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB]"
                               "[0-9A-F]{3}-[0-9A-F]{12}"));
  EXPECT_NE(*a, *b);
}

TEST(MobileconfigOptionsTest, RefusesUnusableOptions) {
  MobileconfigOptions ok;
  ok.scep_url = "https://scep.example.com/scep";
  ok.device_id = "dev";
  ok.out_path = "/tmp/x.mobileconfig";
  EXPECT_THAT(CheckMobileconfigOptions(ok), IsOk());
  auto refused = [&](auto change, const std::string& flag) {
    MobileconfigOptions o = ok;
    change(o);
    EXPECT_THAT(CheckMobileconfigOptions(o),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(flag)))
        << flag;
  };
  refused([](MobileconfigOptions& o) { o.scep_url = ""; }, "--scep-url");
  refused([](MobileconfigOptions& o) { o.scep_url = "ldap://x"; },
          "--scep-url");
  refused([](MobileconfigOptions& o) { o.device_id = ""; }, "--device");
  refused([](MobileconfigOptions& o) { o.out_path = ""; }, "--out");
  refused([](MobileconfigOptions& o) { o.kind = "forever"; }, "--kind");
  refused([](MobileconfigOptions& o) { o.key_size = 1024; }, "--key-size");
  refused([](MobileconfigOptions& o) { o.ttl = "soon"; }, "--ttl");
  refused([](MobileconfigOptions& o) { o.common_name = "a\x01"; }, "--cn");
  refused([](MobileconfigOptions& o) { o.display_name = "\xff"; }, "--name");
  refused([](MobileconfigOptions& o) { o.dns_names = {""}; }, "--dns");
}

// Against the real authority and the real challengectl binary.
class MobileconfigE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (authority_ == nullptr) {
      auto* a = new testing::AuthorityProcess();
      ASSERT_THAT(a->Start(), IsOk());
      authority_ = a;
    }
    dir_ = testing::MakeTempDir();
  }
  static void TearDownTestSuite() {
    delete authority_;
    authority_ = nullptr;
  }

  CommandResult Ctl(const std::vector<std::string>& args) {
    return testing::RunChallengectl(authority_->address(), args);
  }

  // Validates `challenge` in a CSR for `cn` and `dns`.
  CommandResult ValidateCsr(const std::string& challenge, const std::string& cn,
                            const std::vector<std::string>& dns) {
    testing::CsrSpec spec;
    spec.key = {testing::KeyType::kRsa, 2048};
    spec.common_names = {cn};
    spec.dns_names = dns;
    spec.challenge_shape = testing::ChallengeShape::kSingle;
    spec.challenge = challenge;
    absl::StatusOr<std::string> der = testing::BuildCsrDer(spec);
    EXPECT_THAT(der, IsOk());
    const std::string path = absl::StrCat(dir_, "/req", ++csrs_, ".der");
    testing::WriteFileWithMode(path, der.ok() ? *der : "");
    return Ctl({"validate", "--csr", path});
  }

  static testing::AuthorityProcess* authority_;
  std::string dir_;
  int csrs_ = 0;
};

testing::AuthorityProcess* MobileconfigE2eTest::authority_ = nullptr;

TEST_F(MobileconfigE2eTest, WritesAPrivateProfileWhoseChallengeValidates) {
  const std::string out = dir_ + "/iphone.mobileconfig";
  CommandResult r =
      Ctl({"mobileconfig", "--scep-url", "https://scep.example.com/scep",
           "--device", "mc-iphone-1", "--user", "alice", "--cn",
           "mc-iphone-1.example.com", "--dns", "mc-iphone-1.example.com",
           "--dns", "alt.example.com", "--ttl", "1h", "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, AllOf(HasSubstr("wrote " + out + " (mode 0600)"),
                           HasSubstr("CN=mc-iphone-1.example.com"),
                           HasSubstr("challenge id ")));
  struct stat st;
  ASSERT_EQ(stat(out.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  const std::string json = ReadWithPlistlib(out);
  const std::string challenge = Field(json, "challenge");
  EXPECT_THAT(challenge, MatchesRegex("[A-Z2-7]{26}"));
  EXPECT_THAT(r.out + r.err, Not(HasSubstr(challenge)));
  EXPECT_THAT(json,
              AllOf(HasSubstr("\"url\": \"https://scep.example.com/scep\""),
                    HasSubstr("\"name\": \"scep.example.com\""),
                    HasSubstr("\"subject\": [[[\"CN\", "
                              "\"mc-iphone-1.example.com\"]]]"),
                    HasSubstr("\"san\": {\"dNSName\": "
                              "[\"mc-iphone-1.example.com\", "
                              "\"alt.example.com\"]}"),
                    HasSubstr("\"keysize\": 2048"),
                    HasSubstr("\"display\": \"SCEP enrollment for "
                              "mc-iphone-1\"")));
  EXPECT_NE(Field(json, "uuid"), Field(json, "scep_uuid"));

  // The challenge is bound: a CSR for another CN burns it, the right one
  // passes once.
  CommandResult good =
      ValidateCsr(challenge, "mc-iphone-1.example.com",
                  {"mc-iphone-1.example.com", "alt.example.com"});
  EXPECT_EQ(good.exit_code, 0) << good.out << good.err;
  EXPECT_THAT(good.out, HasSubstr("valid: device mc-iphone-1, user alice"));
  CommandResult again =
      ValidateCsr(challenge, "mc-iphone-1.example.com",
                  {"mc-iphone-1.example.com", "alt.example.com"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.out, HasSubstr("already_used"));
}

TEST_F(MobileconfigE2eTest, BindsTheDeviceIdAsCnByDefault) {
  const std::string out = dir_ + "/p.mobileconfig";
  CommandResult r =
      Ctl({"mobileconfig", "--scep-url", "http://scep.test/scep", "--device",
           "mc-dev-2", "--kind", "one-time", "--key-size", "4096", "--name",
           "Wi-Fi cert", "--ca-name", "CA-1", "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string json = ReadWithPlistlib(out);
  EXPECT_THAT(
      json,
      AllOf(HasSubstr("[[[\"CN\", \"mc-dev-2\"]]]"), HasSubstr("\"san\": null"),
            HasSubstr("\"keysize\": 4096"), HasSubstr("\"name\": \"CA-1\""),
            HasSubstr("\"display\": \"Wi-Fi cert\"")));
  CommandResult wrong = ValidateCsr(Field(json, "challenge"), "intruder", {});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_THAT(wrong.out, HasSubstr("identity_mismatch"));
}

TEST_F(MobileconfigE2eTest, IssuesNothingWhenTheProfileCannotBeWritten) {
  CommandResult r =
      Ctl({"mobileconfig", "--scep-url", "https://scep.example.com/scep",
           "--device", "mc-dev-3", "--out", dir_ + "/missing/p.mobileconfig"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--out"));
  CommandResult list = Ctl({"list", "--device", "mc-dev-3"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, Not(HasSubstr("pending")));
  // No temporary file is left behind either.
  EXPECT_EQ(rmdir(dir_.c_str()), 0);
}

TEST_F(MobileconfigE2eTest, RefusesBadFlagsAsUsageErrors) {
  CommandResult r =
      Ctl({"mobileconfig", "--scep-url", "https://x/scep", "--device", "d",
           "--key-size", "1024", "--out", dir_ + "/p"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--key-size"));
  EXPECT_EQ(
      Ctl({"mobileconfig", "--device", "d", "--out", dir_ + "/p"}).exit_code,
      2);
  CommandResult help = Ctl({"mobileconfig", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out,
              AllOf(HasSubstr("com.apple.security.scep"), HasSubstr("0600"),
                    HasSubstr("--scep-url"), HasSubstr("--dns"),
                    HasSubstr("--key-size"), HasSubstr("--ca-name")));
}

}  // namespace
}  // namespace scepca
