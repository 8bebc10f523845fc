// quench/cli/main.cpp: the `quench` command: dispatches to the verbs registered in src/cli/*.cpp.
#include <algorithm>
#include <cstdio>
#include <memory>

#include "cli/verb.h"
#include "core/error.h"

namespace quench::cli {

static std::vector<Verb>& registry() {
  static std::vector<Verb> v;
  return v;
}

bool register_verb(Verb verb) {
  registry().push_back(std::move(verb));
  std::sort(registry().begin(), registry().end(),
            [](const Verb& a, const Verb& b) { return a.name < b.name; });
  return true;
}

const std::vector<Verb>& verbs() { return registry(); }

}  // namespace quench::cli

int main(int argc, char** argv) {
  using namespace quench::cli;
  CLI::App app{"quench: load, quantize, edit, serve, evaluate and benchmark Gemma 4 checkpoints"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "quench 0.1.0");
  std::vector<std::pair<CLI::App*, VerbAction>> actions;
  actions.reserve(verbs().size());
  for (const auto& v : verbs()) {
    CLI::App* sub = app.add_subcommand(v.name, v.help);
    actions.emplace_back(sub, v.setup(*sub));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  for (auto& [sub, action] : actions) {
    if (!sub->parsed()) continue;
    try {
      return action();
    } catch (const quench::Error& e) {
      std::fprintf(stderr, "quench %s: %s\n", sub->get_name().c_str(), e.what());
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "quench %s: internal error: %s\n", sub->get_name().c_str(), e.what());
      return 2;
    }
  }
  return 1;
}
