// quench/cli/quantize.cpp: `quench quantize IN_DIR OUT_DIR --scheme ...`: a BF16 Gemma 4 checkpoint
// to NVFP4 MLP-only / NVFP4 / FP8 / NVFP4 MLP + FP8 attention in NVIDIA ModelOpt's Hugging Face
// layout (vLLM `--quantization modelopt`), with calibration and a quality report (src/quant/).
#include <cstdio>
#include <memory>

#include "cli/verb.h"
#include "core/error.h"
#include "eval/mmlu.h"
#include "quant/quantize.h"
#include "quant/skill_eval.h"

namespace {

struct QuantizeCliOptions {
  std::string in_dir, out_dir, scheme = "nvfp4-mlp", calib, heldout, report, kv_cache_dtype = "auto", skills,
      device = "auto";
  int skill_limit = 0, skill_max_new_tokens = 128;
  std::vector<std::string> exclude;
  int calib_samples = 16, calib_seq_len = 256, quality_samples = 6;
  double max_shard_gb = 5.0;
};

/// The small model's SKILLS.md sets under `dir`: arithmetic.jsonl (last integer of the reply) and
/// mmlu/ zero-shot (quench eval's MMLU prompt and answer extraction).
std::vector<std::pair<std::string, std::vector<quench::SkillItem>>> load_skill_sets(const std::string& dir, int limit) {
  using namespace quench;
  std::vector<std::pair<std::string, std::vector<SkillItem>>> sets;
  sets.emplace_back("arithmetic", load_arithmetic_items(dir + "/arithmetic.jsonl", limit));
  const eval::MmluData data = eval::load_mmlu(dir + "/mmlu");
  std::vector<SkillItem> mc;
  for (const auto& q : eval::sample_mmlu(data, 0, 0, limit)) {
    const char want = static_cast<char>('A' + q.answer);
    mc.push_back({eval::render_mmlu_prompt(q, {}),
                  [want](const std::string& reply) { return eval::extract_mmlu_answer(reply) == want; }});
  }
  sets.emplace_back("multiple_choice_0shot", std::move(mc));
  return sets;
}

int run(const QuantizeCliOptions& o) {
  using namespace quench;
  QuantizeJob job;
  job.in_dir = o.in_dir;
  job.out_dir = o.out_dir;
  job.export_options.scheme = parse_quant_scheme(o.scheme);
  job.export_options.exclude = o.exclude;
  job.export_options.device = parse_quant_device(o.device);
  if (o.kv_cache_dtype == "fp8" || o.kv_cache_dtype == "fp8_e4m3") job.export_options.kv_cache_fp8 = true;
  else if (o.kv_cache_dtype != "auto")
    throw InvalidArgument("--kv-cache-dtype '" + o.kv_cache_dtype + "': expected auto, fp8 or fp8_e4m3");
  if (o.max_shard_gb <= 0) throw InvalidArgument("--max-shard-size must be > 0 GB");
  job.export_options.max_shard_bytes = static_cast<std::size_t>(o.max_shard_gb * 1e9);
  job.calib_file = o.calib;
  job.calib.max_samples = o.calib_samples;
  job.calib.seq_len = o.calib_seq_len;
  job.quality_samples = o.quality_samples;
  job.heldout_file = o.heldout;
  job.report_file = o.report;
  if (!o.skills.empty()) job.skills = load_skill_sets(o.skills, o.skill_limit);
  job.skill_max_new_tokens = o.skill_max_new_tokens;
  QuantizeResult r = run_quantize(job);
  std::fputs(format_quantize_summary(job, r).c_str(), stdout);
  return 0;
}

const bool registered = quench::cli::register_verb(
    {"quantize", "BF16 checkpoint -> NVFP4 / FP8 / mixed in ModelOpt's layout (vLLM --quantization modelopt)",
     [](CLI::App& app) {
       auto o = std::make_shared<QuantizeCliOptions>();
       app.add_option("in_dir", o->in_dir, "BF16 checkpoint directory (config.json, safetensors, tokenizer.json)")
           ->required()
           ->check(CLI::ExistingDirectory);
       app.add_option("out_dir", o->out_dir, "Output directory (must not exist or be empty; written atomically)")
           ->required();
       app.add_option("--scheme", o->scheme, "nvfp4-mlp (default), nvfp4, fp8 or nvfp4-mlp+fp8-attn")
           ->check(CLI::IsMember({"nvfp4-mlp", "nvfp4", "fp8", "nvfp4-mlp+fp8-attn"}));
       app.add_option("--calib", o->calib, "Calibration text: plain text (samples split at blank lines) or JSONL "
                                           "with a \"text\" field (default: a small built-in sample)")
           ->check(CLI::ExistingFile);
       app.add_option("--calib-samples", o->calib_samples,
                      "Calibration samples (0 = none: NVFP4 is written as W4A16_NVFP4 without input_scale)")
           ->check(CLI::Range(0, 1 << 20));
       app.add_option("--calib-seq-len", o->calib_seq_len, "Tokens per calibration / held-out sample")
           ->check(CLI::Range(2, 1 << 20));
       app.add_option("--exclude", o->exclude, "Glob pattern(s) of module names kept BF16, e.g. '*layers.0.mlp*'");
       app.add_option("--kv-cache-dtype", o->kv_cache_dtype,
                      "auto (default) or fp8: FP8 KV cache with calibrated k_scale / v_scale");
       app.add_option("--quality-samples", o->quality_samples,
                      "Held-out texts for KL / top-1 / perplexity against the BF16 model (0 = skip)")
           ->check(CLI::Range(0, 1 << 20));
       app.add_option("--heldout", o->heldout, "Held-out text file (same formats as --calib; default built-in)")
           ->check(CLI::ExistingFile);
       app.add_option("--report", o->report, "Also write the JSON report here (always in OUT_DIR/quantization_report.json)");
       app.add_option("--skills", o->skills,
                      "Directory of skill sets (arithmetic.jsonl, mmlu/) scored on the BF16 and quantized model, "
                      "e.g. tests/data/small_model")
           ->check(CLI::ExistingDirectory);
       app.add_option("--skill-limit", o->skill_limit, "Items per skill set (0 = all)");
       app.add_option("--skill-max-new-tokens", o->skill_max_new_tokens,
                      "Greedy reply budget per skill item (default 128)")
           ->check(CLI::Range(1, 1 << 16));
       app.add_option("--device", o->device,
                      "Where weights are quantized: auto (default: cuda when this build has CUDA and a GPU is "
                      "present), cpu or cuda; both write the same bytes")
           ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
       app.add_option("--max-shard-size", o->max_shard_gb, "Max GB of tensor data per safetensors shard (default 5)");
       return [o] { return run(*o); };
     }});

}  // namespace
