// File: flag_set.h
// Command-line flags with dashed names (--default-ttl), shared by the server
// and the CLIs. abseil's flags cannot spell dashes, hence this small parser.
//
// Accepted forms: --name=value, --name value, --bool / --bool=true|false,
// repeated list flags, "--" to end flags, and --flagfile FILE whose lines are
// flags in the same forms ("#" starts a comment line).
//
// Example:
//   FlagSet flags("challenge-authority", "Runs the authority.");
//   std::string listen = "127.0.0.1:50051";
//   flags.String("listen", &listen, "HOST:PORT to serve gRPC on");
//   absl::StatusOr<std::vector<std::string>> rest = flags.Parse(args);
#ifndef SCEPCA_SERVICE_FLAGS_FLAG_SET_H_
#define SCEPCA_SERVICE_FLAGS_FLAG_SET_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace scepca {

// Not thread-safe; targets must outlive the FlagSet.
class FlagSet {
 public:
  FlagSet(std::string program, std::string usage);

  void String(const std::string& name, std::string* target,
              const std::string& help);
  void Duration(const std::string& name, absl::Duration* target,
                const std::string& help);
  void Int(const std::string& name, int* target, const std::string& help);
  void Bool(const std::string& name, bool* target, const std::string& help);
  // May be given several times; each adds one value.
  void StringList(const std::string& name, std::vector<std::string>* target,
                  const std::string& help);

  // Parses `args` (without the program name). With `stop_at_positional`, the
  // first non-flag argument and everything after it are returned untouched
  // (for subcommands); otherwise flags and positionals may mix. Returns
  // kInvalidArgument naming the flag for an unknown flag or a bad value.
  // "--help"/"-h" sets help_requested() and is not an error.
  absl::StatusOr<std::vector<std::string>> Parse(
      const std::vector<std::string>& args, bool stop_at_positional = false);

  bool help_requested() const { return help_requested_; }
  // Returns true if the flag was given on the command line or in a flagfile.
  bool WasSet(const std::string& name) const;
  // The usage text with every flag, its default and help.
  std::string Usage() const;

 private:
  struct Flag {
    std::string help;
    std::string default_text;
    bool is_bool = false;
    bool set = false;
    std::function<absl::Status(absl::string_view)> apply;
  };
  void Add(const std::string& name, Flag flag);
  absl::Status ParseFlagFile(const std::string& path, int depth);
  // Handles args[*i] (a flag); may consume args[*i + 1].
  absl::Status ParseOne(const std::vector<std::string>& args, size_t* i,
                        int depth);

  std::string program_;
  std::string usage_;
  std::map<std::string, Flag> flags_;
  bool help_requested_ = false;
};

// Parses "90s", "15m", "1h30m", "7d", "250ms" into a duration. Returns
// kInvalidArgument otherwise.
absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view text);

}  // namespace scepca

#endif  // SCEPCA_SERVICE_FLAGS_FLAG_SET_H_
