// quench/cli/verb.h: how a verb (serve, generate, quantize ...) plugs into the `quench` command.
//
// Each verb lives in its own file src/cli/<verb>.cpp and registers itself at static-init time:
//
//   static const bool registered = quench::cli::register_verb({"inspect", "Describe a checkpoint",
//       [](CLI::App& app) { auto opts = ...; app.add_option(...); return [opts] { ...; return 0; }; }});
//
// `setup` adds the verb's options to its CLI11 subcommand and returns the action to run once the
// command line has been parsed. The action returns the process exit code. quench::Error thrown by
// an action is printed as one line "quench <verb>: <message>" and the process exits with 1.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace quench::cli {

using VerbAction = std::function<int()>;

struct Verb {
  std::string name;
  std::string help;
  std::function<VerbAction(CLI::App&)> setup;
};

/// Adds a verb to the registry; returns true so it can initialise a static.
bool register_verb(Verb verb);
/// All registered verbs, in name order.
const std::vector<Verb>& verbs();

}  // namespace quench::cli
