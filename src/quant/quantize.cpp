// quench/quant/quantize.cpp: see quantize.h.
#include "quant/quantize.h"

#include <chrono>
#include <map>

#include <fmt/format.h>

#include "core/error.h"              // InvalidArgument
#include "io/quant_config.h"         // weight_format_name
#include "io/safetensors.h"          // write_file_atomic
#include "model/model.h"             // Model
#include "quant/calibration_text.h"  // load_calibration_texts, builtin_*
#include "quant/memory.h"            // peak_rss_bytes
#include "quant/staging_dir.h"       // StagingDir
#include "tokenizer/generation_config.h"  // GenerationConfig
#include "tokenizer/tokenizer.h"     // Tokenizer

namespace fs = std::filesystem;

namespace quench {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// "mlp.down_proj", "self_attn.q_proj" ... of a module name.
std::string projection_of(const std::string& module) {
  auto last = module.rfind('.');
  auto prev = module.rfind('.', last - 1);
  return module.substr(prev + 1);
}

nlohmann::ordered_json report_json(const QuantizeJob& job, const QuantizeResult& r) {
  const auto& e = r.export_report;
  nlohmann::ordered_json j;
  j["input"] = job.in_dir.string();
  j["output"] = job.out_dir.string();
  j["scheme"] = std::string(quant_scheme_name(job.export_options.scheme));
  j["quant_algo"] = e.quant_algo;
  j["kv_cache_dtype"] = job.export_options.kv_cache_fp8 ? "fp8" : "auto";
  j["kv_scales_written"] = e.kv_scales_written;
  j["device"] = e.device;
  j["tensor_bytes"] = e.tensor_bytes;
  j["num_tensors"] = e.num_tensors;
  j["num_shards"] = e.num_shards;
  j["renamed_tensors"] = e.renamed;
  j["copied_files"] = e.copied_files;
  j["seconds"] = {{"total", r.seconds_total}, {"calibration", r.seconds_calibration},
                  {"export", r.seconds_export}, {"quality", r.seconds_quality}, {"skills", r.seconds_skills}};
  j["peak_rss_bytes"] = r.peak_rss_bytes;
  if (r.calibration)
    j["calibration"] = {{"source", job.calib_file.empty() ? "built-in" : job.calib_file.string()},
                        {"samples", r.calibration->samples},
                        {"tokens", r.calibration->tokens},
                        {"seq_len", job.calib.seq_len}};
  else
    j["calibration"] = nullptr;
  // Weight error per projection kind (mean and max relative L2) and per layer.
  std::map<std::string, std::pair<double, double>> by_proj;  // sum, max
  std::map<std::string, int> count;
  nlohmann::ordered_json layers = nlohmann::ordered_json::array();
  for (const auto& l : e.linears) {
    nlohmann::ordered_json x = {{"module", l.module}, {"format", std::string(weight_format_name(l.format))},
                                {"shape", {l.out_features, l.in_features}}, {"rel_l2", l.rel_l2}};
    if (l.format != WeightFormat::kBF16) {
      x["weight_amax"] = l.weight_amax;
      x[l.format == WeightFormat::kNVFP4 ? "weight_scale_2" : "weight_scale"] = l.weight_global_scale;
      x["input_scale"] = l.input_scale ? nlohmann::ordered_json(*l.input_scale) : nlohmann::ordered_json(nullptr);
      auto& bp = by_proj[projection_of(l.module)];
      bp.first += l.rel_l2;
      bp.second = std::max(bp.second, l.rel_l2);
      ++count[projection_of(l.module)];
    }
    layers.push_back(x);
  }
  nlohmann::ordered_json summary = nlohmann::ordered_json::object();
  for (const auto& [p, v] : by_proj)
    summary[p] = {{"mean_rel_l2", v.first / count[p]}, {"max_rel_l2", v.second}, {"count", count[p]}};
  j["weight_error_by_projection"] = summary;
  if (r.quality) {
    const auto& q = *r.quality;
    j["quality"] = {{"heldout", job.heldout_file.empty() ? "built-in" : job.heldout_file.string()},
                    {"samples", q.samples}, {"positions", q.positions}, {"kl_mean", q.kl_mean},
                    {"kl_max", q.kl_max}, {"top1_agreement", q.top1_agreement},
                    {"perplexity_bf16", q.ppl_ref}, {"perplexity_quantized", q.ppl_quant}};
  } else {
    j["quality"] = nullptr;
  }
  nlohmann::ordered_json skills = nlohmann::ordered_json::object();
  for (const auto& c : r.skills)
    skills[c.bf16.name] = {{"items", c.bf16.total}, {"bf16", c.bf16.accuracy()}, {"quantized", c.quantized.accuracy()},
                           {"delta_points", 100.0 * (c.quantized.accuracy() - c.bf16.accuracy())}};
  j["skills"] = skills;
  j["layers"] = layers;
  return j;
}

}  // namespace

QuantizeResult run_quantize(const QuantizeJob& job) {
  const auto t0 = std::chrono::steady_clock::now();
  QuantizeResult r;
  const fs::path tok_path = job.in_dir / "tokenizer.json";
  const bool need_tokenizer = job.calib.max_samples > 0 || job.quality_samples > 0 || !job.skills.empty();
  if (need_tokenizer && !fs::exists(tok_path))
    throw InvalidArgument(fmt::format("{}: no tokenizer.json; calibration and the quality report need it "
                                      "(pass --calib-samples 0 --quality-samples 0 for a weight-only NVFP4 export)",
                                      job.in_dir.string()));
  if (job.calib.seq_len < 2) throw InvalidArgument(fmt::format("--calib-seq-len {}: expected >= 2", job.calib.seq_len));
  StagingDir staging(job.out_dir);

  std::unique_ptr<Model> ref;
  std::optional<Tokenizer> tok;
  if (need_tokenizer) {
    tok.emplace(Tokenizer::load(tok_path));
    ref = Model::load(job.in_dir);
  }
  const int32_t bos = ref ? ref->config().bos_token_id : 2;

  // 1. calibration
  if (job.calib.max_samples > 0) {
    const auto t = std::chrono::steady_clock::now();
    const auto texts = job.calib_file.empty() ? builtin_calibration_texts()
                                              : load_calibration_texts(job.calib_file, job.calib.max_samples);
    r.calibration = calibrate(*ref, tokenize_samples(*tok, texts, bos, job.calib.seq_len, job.calib.max_samples));
    r.seconds_calibration = seconds_since(t);
  }
  // 2. export
  {
    const auto t = std::chrono::steady_clock::now();
    r.export_report = export_quantized(job.in_dir, staging.path(), job.export_options,
                                       r.calibration ? &*r.calibration : nullptr);
    r.seconds_export = seconds_since(t);
  }
  // 3. quality on held-out text
  if (job.quality_samples > 0) {
    const auto t = std::chrono::steady_clock::now();
    const auto texts = job.heldout_file.empty() ? builtin_heldout_texts()
                                                : load_calibration_texts(job.heldout_file, job.quality_samples);
    auto quant = Model::load(staging.path());
    r.quality = compare_logits(*ref, *quant,
                               tokenize_samples(*tok, texts, bos, job.calib.seq_len, job.quality_samples));
    r.seconds_quality = seconds_since(t);
  }
  // 4. skills (greedy chat replies) before and after
  if (!job.skills.empty()) {
    const auto t = std::chrono::steady_clock::now();
    if (!tok) tok.emplace(Tokenizer::load(tok_path));
    if (!ref) ref = Model::load(job.in_dir);
    auto quant = Model::load(staging.path());
    const std::vector<int32_t> stops = GenerationConfig::load(job.in_dir).eos_token_ids;
    for (const auto& [name, items] : job.skills)
      r.skills.push_back({score_skill(name, *ref, *tok, items, stops, job.skill_max_new_tokens),
                          score_skill(name, *quant, *tok, items, stops, job.skill_max_new_tokens)});
    r.seconds_skills = seconds_since(t);
  }
  r.seconds_total = seconds_since(t0);
  r.peak_rss_bytes = peak_rss_bytes();
  r.report = report_json(job, r);
  const std::string text = r.report.dump(2) + "\n";
  write_file_atomic(staging.path() / "quantization_report.json", text);
  staging.commit();
  if (!job.report_file.empty()) write_file_atomic(job.report_file, text);
  return r;
}

std::string format_quantize_summary(const QuantizeJob& job, const QuantizeResult& r) {
  const auto& e = r.export_report;
  std::string s = fmt::format("quantized {} -> {} ({}, quant_algo {})\n", job.in_dir.string(), job.out_dir.string(),
                              quant_scheme_name(job.export_options.scheme), e.quant_algo);
  s += fmt::format("  weights quantized on {}\n", e.device);
  s += fmt::format("  {} tensors, {:.3f} GB in {} shard(s); {} file(s) copied; {} tensor(s) renamed\n",
                   e.num_tensors, e.tensor_bytes / 1e9, e.num_shards, e.copied_files.size(), e.renamed.size());
  s += fmt::format("  time {:.1f} s (calibration {:.1f}, export {:.1f}, quality {:.1f}); peak RSS {:.2f} GB\n",
                   r.seconds_total, r.seconds_calibration, r.seconds_export, r.seconds_quality,
                   r.peak_rss_bytes / 1e9);
  if (r.calibration)
    s += fmt::format("  calibration: {} samples, {} tokens\n", r.calibration->samples, r.calibration->tokens);
  const auto& w = r.report["weight_error_by_projection"];
  for (auto it = w.begin(); it != w.end(); ++it)
    s += fmt::format("  weight rel. L2 {:<16} mean {:.4f} max {:.4f} ({} layers)\n", it.key(),
                     it.value()["mean_rel_l2"].get<double>(), it.value()["max_rel_l2"].get<double>(),
                     it.value()["count"].get<int>());
  if (r.quality)
    s += fmt::format("  held-out: KL {:.5f} nats/token (max {:.4f}), top-1 agreement {:.2f}%, perplexity "
                     "BF16 {:.3f} -> quantized {:.3f} ({} positions)\n",
                     r.quality->kl_mean, r.quality->kl_max, 100.0 * r.quality->top1_agreement, r.quality->ppl_ref,
                     r.quality->ppl_quant, r.quality->positions);
  for (const auto& c : r.skills)
    s += fmt::format("  skill {:<24} BF16 {:.1f}% -> quantized {:.1f}% ({:+.1f} points, {} items)\n", c.bf16.name,
                     100.0 * c.bf16.accuracy(), 100.0 * c.quantized.accuracy(),
                     100.0 * (c.quantized.accuracy() - c.bf16.accuracy()), c.bf16.total);
  s += fmt::format("  report: {}\n", (job.out_dir / "quantization_report.json").string());
  return s;
}

}  // namespace quench
