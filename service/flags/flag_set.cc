#include "service/flags/flag_set.h"

#include <fstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/types/optional.h"

namespace scepca {
namespace {

constexpr int kMaxFlagFileDepth = 4;

}  // namespace

absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view text) {
  absl::Duration d;
  std::string s(absl::StripAsciiWhitespace(text));
  if (absl::EndsWith(s, "d")) {
    int64_t days = 0;
    if (absl::SimpleAtoi(absl::string_view(s).substr(0, s.size() - 1), &days)) {
      return absl::Hours(24 * days);
    }
  }
  if (!absl::ParseDuration(s, &d) || d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", text, "' is not a duration (use e.g. 90s, 15m, 1h30m, 7d)"));
  }
  return d;
}

FlagSet::FlagSet(std::string program, std::string usage)
    : program_(std::move(program)), usage_(std::move(usage)) {}

void FlagSet::Add(const std::string& name, Flag flag) {
  flags_[name] = std::move(flag);
}

void FlagSet::String(const std::string& name, std::string* target,
                     const std::string& help) {
  Add(name, {help, *target, false, false, [target](absl::string_view v) {
               *target = std::string(v);
               return absl::OkStatus();
             }});
}

void FlagSet::Duration(const std::string& name, absl::Duration* target,
                       const std::string& help) {
  Add(name, {help, absl::FormatDuration(*target), false, false,
             [target](absl::string_view v) -> absl::Status {
               absl::StatusOr<absl::Duration> d = ParseDurationFlag(v);
               if (!d.ok()) return d.status();
               *target = *d;
               return absl::OkStatus();
             }});
}

void FlagSet::Int(const std::string& name, int* target,
                  const std::string& help) {
  Add(name, {help, absl::StrCat(*target), false, false,
             [target](absl::string_view v) -> absl::Status {
               if (!absl::SimpleAtoi(v, target)) {
                 return absl::InvalidArgumentError(
                     absl::StrCat("'", v, "' is not an integer"));
               }
               return absl::OkStatus();
             }});
}

void FlagSet::Bool(const std::string& name, bool* target,
                   const std::string& help) {
  Add(name, {help, *target ? "true" : "false", true, false,
             [target](absl::string_view v) -> absl::Status {
               if (!absl::SimpleAtob(v, target)) {
                 return absl::InvalidArgumentError(
                     absl::StrCat("'", v, "' is not true or false"));
               }
               return absl::OkStatus();
             }});
}

void FlagSet::StringList(const std::string& name,
                         std::vector<std::string>* target,
                         const std::string& help) {
  Add(name, {help, "", false, false, [target](absl::string_view v) {
               target->emplace_back(v);
               return absl::OkStatus();
             }});
}

bool FlagSet::WasSet(const std::string& name) const {
  auto it = flags_.find(name);
  return it != flags_.end() && it->second.set;
}

absl::Status FlagSet::ParseOne(const std::vector<std::string>& args, size_t* i,
                               int depth) {
  absl::string_view arg = args[*i];
  absl::string_view body = arg;
  if (!absl::ConsumePrefix(&body, "--")) absl::ConsumePrefix(&body, "-");
  std::string name(body);
  absl::optional<std::string> value;
  if (size_t eq = name.find('='); eq != std::string::npos) {
    value = name.substr(eq + 1);
    name = name.substr(0, eq);
  }
  if (name == "help" || name == "h") {
    help_requested_ = true;
    return absl::OkStatus();
  }
  if (name == "flagfile") {
    if (!value.has_value()) {
      if (*i + 1 >= args.size()) {
        return absl::InvalidArgumentError("--flagfile needs a file name");
      }
      value = args[++*i];
    }
    return ParseFlagFile(*value, depth + 1);
  }
  auto it = flags_.find(name);
  if (it == flags_.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown flag --", name, " (see --help)"));
  }
  Flag& flag = it->second;
  if (!value.has_value()) {
    if (flag.is_bool) {
      value = "true";
    } else if (*i + 1 < args.size()) {
      value = args[++*i];
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, " needs a value"));
    }
  }
  absl::Status applied = flag.apply(*value);
  if (!applied.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, ": ", applied.message()));
  }
  flag.set = true;
  return absl::OkStatus();
}

absl::Status FlagSet::ParseFlagFile(const std::string& path, int depth) {
  if (depth > kMaxFlagFileDepth) {
    return absl::InvalidArgumentError("--flagfile nested too deeply");
  }
  std::ifstream in(path);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("--flagfile: cannot read ", path));
  }
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view s = absl::StripAsciiWhitespace(line);
    if (s.empty() || s[0] == '#') continue;
    lines.push_back(absl::StartsWith(s, "-") ? std::string(s)
                                             : absl::StrCat("--", s));
  }
  for (size_t i = 0; i < lines.size(); ++i) {
    absl::Status st = ParseOne(lines, &i, depth);
    if (!st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", st.message()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> FlagSet::Parse(
    const std::vector<std::string>& args, bool stop_at_positional) {
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      positional.insert(positional.end(), args.begin() + i + 1, args.end());
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      if (stop_at_positional) {
        positional.insert(positional.end(), args.begin() + i, args.end());
        break;
      }
      positional.push_back(arg);
      continue;
    }
    absl::Status st = ParseOne(args, &i, 0);
    if (!st.ok()) return st;
  }
  return positional;
}

std::string FlagSet::Usage() const {
  std::string out = absl::StrCat("Usage: ", program_, "\n", usage_, "\n");
  if (!flags_.empty()) absl::StrAppend(&out, "\nFlags:\n");
  for (const auto& [name, flag] : flags_) {
    absl::StrAppend(&out, "  --", name, flag.is_bool ? "" : " VALUE",
                    "\n      ", flag.help);
    if (!flag.default_text.empty()) {
      absl::StrAppend(&out, " (default: ", flag.default_text, ")");
    }
    absl::StrAppend(&out, "\n");
  }
  absl::StrAppend(&out,
                  "  --flagfile FILE\n      Reads more flags from FILE, "
                  "one per line.\n  --help\n      Shows this text.\n");
  return out;
}

}  // namespace scepca
