// File: explain.h
// `challengectl explain`: what the error codes and messages of SCEP
// enrollments mean, their likely causes, what to check, and which reasons of
// this authority they correspond to.
//
// The catalogue covers Apple's MCSCEPErrorDomain codes 22000-22013, the SCEP
// failInfo values of RFC 8894, NDES event 29 and "The password cache is
// full.", and "SCEP BAD CHALLENGE". Each entry names its source.
//
// Example:
//   std::vector<const ExplainEntry*> found = FindExplainEntries("22013");
//   if (!found.empty()) std::cout << FormatExplainEntry(*found[0]);
#ifndef SCEPCA_CLIENT_EXPLAIN_H_
#define SCEPCA_CLIENT_EXPLAIN_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace scepca {

// The --help text of `challengectl explain` (after its usage line).
inline constexpr char kExplainHelp[] =
    "Explains an error code or message of a SCEP enrollment: what it means,\n"
    "its likely causes, what to check, and the reasons this authority gives\n"
    "for the same situation (challengectl validate, get).\n"
    "\n"
    "Without CODE, lists every code it knows. CODE may be written as the\n"
    "device or server shows it:\n"
    "  22013, MCSCEPErrorDomain 22013     Apple devices (22000-22013)\n"
    "  badRequest, failInfo 2, 2          SCEP failInfo (RFC 8894)\n"
    "  29, event 29                       NDES event 29\n"
    "  \"The password cache is full\"       NDES admin page\n"
    "  \"SCEP BAD CHALLENGE\"               Apple Profile Manager\n"
    "A number that several sources use shows every match.\n"
    "Exit codes: 0 explained; 1 unknown code.";

// One explained code.
struct ExplainEntry {
  std::string key;     // Stable id, e.g. "MCSCEPErrorDomain/22013".
  std::string domain;  // "MCSCEPErrorDomain", "SCEP failInfo", "NDES", ...
  int code = -1;       // The number, or -1 for a message.
  std::string title;   // As the source names it.
  std::string source;  // Where the name and meaning come from.
  std::string meaning;
  std::vector<std::string> causes;
  std::vector<std::string> checks;
  // This authority's reasons (validate/get) for the same situation.
  std::vector<std::string> reasons;
  // Other spellings accepted by FindExplainEntries (compared normalized).
  std::vector<std::string> aliases;
};

// Every entry, in listing order.
const std::vector<ExplainEntry>& ExplainCatalogue();

// Returns the entries `query` names (several when a number is ambiguous);
// empty if none. Case, spaces and punctuation do not matter.
std::vector<const ExplainEntry*> FindExplainEntries(absl::string_view query);

// The full text of one entry.
std::string FormatExplainEntry(const ExplainEntry& entry);

// One line per entry: code, domain and title.
std::string FormatExplainList();

}  // namespace scepca

#endif  // SCEPCA_CLIENT_EXPLAIN_H_
