// quench/cli/inspect.cpp: `quench inspect MODEL_DIR [--json]`: what a checkpoint holds (config
// summary, per-layer geometry, tensors and dtypes, quantization, size). The report itself is
// built by io/inspect.h so it can be tested without the binary.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/verb.h"
#include "io/inspect.h"

namespace {

struct InspectOptions {
  std::string model_dir;
  bool json = false;
};

int run(const InspectOptions& o) {
  const quench::InspectReport r = quench::inspect_checkpoint(o.model_dir);
  const std::string out = o.json ? quench::inspect_to_json(r).dump(2) + "\n" : quench::format_inspect_text(r);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

const bool registered = quench::cli::register_verb(
    {"inspect", "Describe a checkpoint: config, layers, tensors, dtypes, quantization, size",
     [](CLI::App& app) {
       auto o = std::make_shared<InspectOptions>();
       app.add_option("model_dir", o->model_dir, "Checkpoint directory (config.json + safetensors)")->required();
       app.add_flag("--json", o->json, "Print the report as JSON");
       return [o] { return run(*o); };
     }});

}  // namespace
