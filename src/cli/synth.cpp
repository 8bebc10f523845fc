// quench/cli/synth.cpp: `quench synth CONFIG OUT_DIR`: a random-weight checkpoint of any Gemma 4
// config (e.g. the 12B), BF16 or, through the quantizer, NVFP4 MLP-only or FP8, for full-size
// benchmarks. FP8 needs activation scales: they come from a calibration pass of the random model
// over random token ids (--calib-tokens), the same code path as `quench quantize` on real text.
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/verb.h"
#include "core/error.h"
#include "io/text_file.h"
#include "model/model.h"
#include "quant/calibration.h"
#include "quant/export.h"
#include "quant/memory.h"
#include "quant/staging_dir.h"
#include "quant/synth.h"

namespace {

struct SynthCliOptions {
  std::string config, out_dir, dtype = "bf16";
  uint64_t seed = 0;
  float std = 0.02f;
  double max_shard_gb = 5.0;
  bool no_multimodal = false;
  int calib_tokens = 32;
};

int run(const SynthCliOptions& o) {
  using namespace quench;
  namespace fs = std::filesystem;
  const auto t0 = std::chrono::steady_clock::now();
  const std::string text = read_text_file(o.config);
  nlohmann::ordered_json config;
  try {
    config = nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(fmt::format("{}: bad JSON: {}", o.config, e.what()));
  }
  if (o.dtype != "bf16" && o.dtype != "nvfp4-mlp" && o.dtype != "fp8")
    throw InvalidArgument("--dtype '" + o.dtype + "': expected bf16, nvfp4-mlp or fp8");
  if (o.calib_tokens < 2) throw InvalidArgument(fmt::format("--calib-tokens {}: expected >= 2", o.calib_tokens));
  SynthOptions so;
  so.seed = o.seed;
  so.weight_std = o.std;
  so.max_shard_bytes = static_cast<std::size_t>(o.max_shard_gb * 1e9);
  so.multimodal = !o.no_multimodal;
  StagingDir out(o.out_dir);
  SynthReport rep;
  std::size_t bytes = 0, shards = 0;
  if (o.dtype == "bf16") {
    rep = synth_checkpoint(config, out.path(), so);
    bytes = rep.tensor_bytes;
    shards = rep.num_shards;
  } else {
    // BF16 into a sibling staging dir, then through the quantizer (weight-only: no tokenizer).
    fs::path out_path(o.out_dir);
    if (out_path.filename().empty()) out_path = out_path.parent_path();  // "dir/" -> "dir"
    StagingDir bf16(out_path.string() + ".bf16");
    rep = synth_checkpoint(config, bf16.path(), so);
    ExportOptions eo;
    eo.scheme = o.dtype == "fp8" ? QuantScheme::kFp8 : QuantScheme::kNvfp4Mlp;
    eo.max_shard_bytes = so.max_shard_bytes;
    std::optional<ActivationAmax> calib;
    if (eo.scheme == QuantScheme::kFp8) {
      // One sample of random ids (a random model has no tokenizer): <bos> then uniform ids.
      auto model = Model::load(bf16.path());
      std::mt19937 rng(static_cast<uint32_t>(o.seed) + 1);
      std::uniform_int_distribution<int32_t> id(3, model->config().vocab_size - 1);
      std::vector<int32_t> ids(static_cast<size_t>(o.calib_tokens));
      for (auto& t : ids) t = id(rng);
      ids[0] = model->config().bos_token_id;
      calib = calibrate(*model, {ids});
    }
    ExportReport er = export_quantized(bf16.path(), out.path(), eo, calib ? &*calib : nullptr);
    bytes = er.tensor_bytes;
    shards = er.num_shards;
  }
  out.commit();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s", fmt::format("synthesized {} ({}): {} tensors, {} parameters, {:.3f} GB in {} shard(s), "
                                "{:.1f} s, peak RSS {:.2f} GB\n",
                                o.out_dir, o.dtype, rep.num_tensors, rep.num_params, bytes / 1e9, shards, secs,
                                peak_rss_bytes() / 1e9)
                        .c_str());
  return 0;
}

const bool registered = quench::cli::register_verb(
    {"synth", "Random-weight checkpoint for a config.json (BF16, NVFP4 MLP-only or FP8), for benchmarks",
     [](CLI::App& app) {
       auto o = std::make_shared<SynthCliOptions>();
       app.add_option("config", o->config, "config.json to instantiate (e.g. tests/data/io/gemma4-12b-config.json)")
           ->required()
           ->check(CLI::ExistingFile);
       app.add_option("out_dir", o->out_dir, "Output directory (must not exist or be empty)")->required();
       app.add_option("--dtype", o->dtype, "bf16 (default), nvfp4-mlp or fp8 (through the quantizer)")
           ->check(CLI::IsMember({"bf16", "nvfp4-mlp", "fp8"}));
       app.add_option("--calib-tokens", o->calib_tokens, "random token ids of the fp8 calibration pass (default 32)");
       app.add_option("--seed", o->seed, "Random seed (default 0)");
       app.add_option("--std", o->std, "Std of Linear and embedding weights (default 0.02)");
       app.add_option("--max-shard-size", o->max_shard_gb, "Max GB of tensor data per shard (default 5)");
       app.add_flag("--no-multimodal", o->no_multimodal, "Skip vision/audio tensors");
       return [o] { return run(*o); };
     }});

}  // namespace
