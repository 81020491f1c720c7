// Tests of `challengectl explain`: every listed code resolves, in the forms
// devices and servers print it, and unknown codes are refused.
#include "client/explain.h"

#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/challengectl.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace scepca {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

struct Ran {
  int rc;
  std::string out;
  std::string err;
};

Ran Ctl(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  const int rc = RunChallengectl(args, out, err);
  return {rc, out.str(), err.str()};
}

std::vector<std::string> Keys(const std::vector<const ExplainEntry*>& found) {
  std::vector<std::string> keys;
  for (const ExplainEntry* e : found) keys.push_back(e->key);
  return keys;
}

TEST(ExplainCatalogueTest, CoversEveryCodeOfTheIssue) {
  std::set<std::string> keys;
  for (const ExplainEntry& e : ExplainCatalogue()) {
    EXPECT_TRUE(keys.insert(e.key).second) << "duplicate " << e.key;
    EXPECT_FALSE(e.title.empty()) << e.key;
    EXPECT_FALSE(e.source.empty()) << e.key;
    EXPECT_FALSE(e.meaning.empty()) << e.key;
    EXPECT_THAT(e.causes, Not(IsEmpty())) << e.key;
    EXPECT_THAT(e.checks, Not(IsEmpty())) << e.key;
  }
  for (int code = 22000; code <= 22013; ++code) {
    EXPECT_EQ(keys.count(absl::StrCat("MCSCEPErrorDomain/", code)), 1u) << code;
  }
  for (const char* name :
       {"badAlg", "badMessageCheck", "badRequest", "badTime", "badCertId"}) {
    EXPECT_EQ(keys.count(absl::StrCat("failInfo/", name)), 1u) << name;
  }
  EXPECT_EQ(keys.count("NDES/event-29"), 1u);
  EXPECT_EQ(keys.count("NDES/password-cache-full"), 1u);
  EXPECT_EQ(keys.count("ProfileManager/scep-bad-challenge"), 1u);
}

TEST(ExplainCatalogueTest, UsesApplesNamesForTheMcscepCodes) {
  // Apple, Configuration Profile Reference, "Error Codes".
  const std::vector<std::pair<int, std::string>> apple = {
      {22000, "Invalid key usage"},
      {22001, "Cannot generate key pair"},
      {22002, "Invalid CAResponse"},
      {22003, "Invalid RAResponse"},
      {22004, "Unsupported certificate configuration"},
      {22005, "Network error"},
      {22006, "Insufficient CACaps"},
      {22007, "Invalid signed certificate"},
      {22008, "Cannot create identity"},
      {22009, "Cannot create temporary identity"},
      {22010, "Cannot store temporary identity"},
      {22011, "Cannot generate CSR"},
      {22012, "Cannot store CACertificate"},
      {22013, "Invalid PKIOperation response"}};
  for (const auto& [code, title] : apple) {
    std::vector<const ExplainEntry*> found =
        FindExplainEntries(absl::StrCat(code));
    ASSERT_THAT(found, SizeIs(1)) << code;
    EXPECT_EQ(found[0]->title, title);
  }
}

TEST(ExplainCatalogueTest, MapsChallengeRefusalsToOurReasons) {
  std::vector<const ExplainEntry*> found = FindExplainEntries("22013");
  ASSERT_THAT(found, SizeIs(1));
  EXPECT_THAT(found[0]->reasons,
              ::testing::IsSupersetOf({"not_found", "expired", "already_used",
                                       "revoked", "identity_mismatch"}));
  found = FindExplainEntries("event 29");
  ASSERT_THAT(found, SizeIs(1));
  EXPECT_THAT(found[0]->reasons, ::testing::UnorderedElementsAre(
                                     "already_used", "expired", "not_found"));
}

TEST(ExplainLookupTest, AcceptsTheFormsDevicesAndServersPrint) {
  const std::vector<std::pair<std::string, std::string>> forms = {
      {"22013", "MCSCEPErrorDomain/22013"},
      {"MCSCEPErrorDomain 22013", "MCSCEPErrorDomain/22013"},
      {"mcsceperrordomain:22013", "MCSCEPErrorDomain/22013"},
      {"[22013][MCSCEPErrorDomain]", "MCSCEPErrorDomain/22013"},
      {"MCSCEP 22005", "MCSCEPErrorDomain/22005"},
      {"The SCEP server returned an invalid response.",
       "MCSCEPErrorDomain/22013"},
      {"badRequest", "failInfo/badRequest"},
      {"BADREQUEST", "failInfo/badRequest"},
      {"failInfo 2", "failInfo/badRequest"},
      {"badRequest (2)", "failInfo/badRequest"},
      {"2", "failInfo/badRequest"},
      {"0", "failInfo/badAlg"},
      {"badCertId", "failInfo/badCertId"},
      {"29", "NDES/event-29"},
      {"NDES event 29", "NDES/event-29"},
      {"Event ID 29", "NDES/event-29"},
      {"The password cache is full.", "NDES/password-cache-full"},
      {"password cache", "NDES/password-cache-full"},
      {"SCEP BAD CHALLENGE", "ProfileManager/scep-bad-challenge"},
  };
  for (const auto& [query, key] : forms) {
    EXPECT_THAT(Keys(FindExplainEntries(query)), ElementsAre(key)) << query;
  }
}

TEST(ExplainLookupTest, ShowsEveryMatchOfAnAmbiguousQuery) {
  // "cannot" is in several titles.
  EXPECT_THAT(FindExplainEntries("cannot store"), SizeIs(2));
  EXPECT_THAT(
      Keys(FindExplainEntries("cannot store")),
      ElementsAre("MCSCEPErrorDomain/22010", "MCSCEPErrorDomain/22012"));
}

TEST(ExplainLookupTest, FindsNothingForUnknownCodes) {
  for (const char* q : {"", "  ", "22014", "21999", "badSomething", "5",
                        "MCSCEPErrorDomain 29", "xyz"}) {
    EXPECT_THAT(FindExplainEntries(q), IsEmpty()) << q;
  }
}

TEST(ExplainCommandTest, ListsEveryEntryWithoutACode) {
  Ran r = Ctl({"explain"});
  EXPECT_EQ(r.rc, 0) << r.err;
  const std::vector<std::string> lines =
      absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  // A header, one line per entry, and a hint.
  EXPECT_THAT(lines, SizeIs(ExplainCatalogue().size() + 2));
  for (const ExplainEntry& e : ExplainCatalogue()) {
    EXPECT_THAT(r.out, HasSubstr(e.title)) << e.key;
  }
  EXPECT_THAT(r.out, AllOf(HasSubstr("MCSCEPErrorDomain       22013"),
                           HasSubstr("badRequest")));
}

TEST(ExplainCommandTest, ExplainsEveryListedCode) {
  for (const ExplainEntry& e : ExplainCatalogue()) {
    const std::string query =
        e.code >= 0 ? absl::StrCat(e.domain, " ", e.code) : e.title;
    Ran r = Ctl({"explain", query});
    EXPECT_EQ(r.rc, 0) << query << ": " << r.err;
    EXPECT_THAT(r.out, AllOf(HasSubstr(e.title), HasSubstr("Likely causes:"),
                             HasSubstr("What to check:"),
                             HasSubstr("This authority's reasons:")))
        << query;
  }
  Ran words = Ctl({"explain", "MCSCEPErrorDomain", "22013"});
  EXPECT_EQ(words.rc, 0);
  EXPECT_THAT(words.out,
              AllOf(HasSubstr("Invalid PKIOperation response"),
                    HasSubstr("The SCEP server returned an invalid response"),
                    HasSubstr("not_found, expired, already_used")));
}

TEST(ExplainCommandTest, RefusesAnUnknownCodeWithAHint) {
  Ran r = Ctl({"explain", "22099"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, AllOf(HasSubstr("unknown code '22099'"),
                           HasSubstr("run 'challengectl explain'")));
}

TEST(ExplainCommandTest, HelpDescribesTheForms) {
  Ran r = Ctl({"explain", "--help"});
  EXPECT_EQ(r.rc, 0);
  EXPECT_THAT(r.out, AllOf(HasSubstr("Usage: challengectl explain [CODE]"),
                           HasSubstr("MCSCEPErrorDomain 22013"),
                           HasSubstr("badRequest"), HasSubstr("event 29")));
}

}  // namespace
}  // namespace scepca
