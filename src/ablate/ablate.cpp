// quench/ablate/ablate.cpp: see ablate.h. The steps follow the spec's §8 pipeline in order.
#include "ablate/ablate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <set>
#include <sstream>

#include "ablate/capture.h"
#include "ablate/metrics.h"
#include "ablate/output.h"
#include "backend/cpu/forward.h"
#include "core/error.h"
#include "core/log.h"
#include "model/model.h"
#include "tokenizer/generation_config.h"
#include "tokenizer/tokenizer.h"

namespace quench::ablate {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<int> parse_layer_list(const std::string& text, int num_layers, const std::string& flag) {
  std::vector<int> out;
  std::stringstream ss(text);
  std::string item;
  auto to_int = [&](const std::string& s) {
    std::size_t used = 0;
    int v = 0;
    try {
      v = std::stoi(s, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != s.size() || s.empty())
      throw InvalidArgument(flag + " '" + text + "': '" + s + "' is not a layer index");
    if (v < 0 || v >= num_layers)
      throw InvalidArgument(flag + " '" + text + "': layer " + s + " outside [0, " + std::to_string(num_layers) + ")");
    return v;
  };
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    const auto dash = item.find('-', 1);
    if (dash == std::string::npos) {
      out.push_back(to_int(item));
    } else {
      const int a = to_int(item.substr(0, dash)), b = to_int(item.substr(dash + 1));
      if (b < a) throw InvalidArgument(flag + " '" + text + "': range '" + item + "' is decreasing");
      for (int l = a; l <= b; ++l) out.push_back(l);
    }
  }
  std::set<int> seen;
  for (int l : out)
    if (!seen.insert(l).second) throw InvalidArgument(flag + " '" + text + "': layer " + std::to_string(l) + " listed twice");
  if (out.empty()) throw InvalidArgument(flag + " '" + text + "': no layers");
  return out;
}

namespace {

struct Split {
  std::vector<std::string> train, heldout;
};

Split split_set(const fs::path& train_file, const fs::path& heldout_file, double fraction, const char* flag) {
  Split s;
  s.train = read_prompts(train_file);
  if (!heldout_file.empty()) {
    s.heldout = read_prompts(heldout_file);
    return s;
  }
  if (!(fraction > 0.0 && fraction < 1.0))
    throw InvalidArgument("--heldout-fraction " + std::to_string(fraction) + ": expected a value in (0, 1)");
  const std::size_t n_held = static_cast<std::size_t>(std::floor(fraction * s.train.size()));
  if (n_held == 0 || n_held >= s.train.size())
    throw InvalidArgument(std::string(flag) + " '" + train_file.string() + "': " + std::to_string(s.train.size()) +
                          " prompts are too few to hold out a fraction of " + std::to_string(fraction) +
                          " (give a held-out file)");
  s.heldout.assign(s.train.end() - n_held, s.train.end());
  s.train.resize(s.train.size() - n_held);
  return s;
}

std::vector<std::vector<int32_t>> tokenize_all(const Tokenizer& tok, const std::vector<std::string>& prompts,
                                               const PromptFormat& fmt) {
  std::vector<std::vector<int32_t>> out;
  for (const auto& p : prompts) out.push_back(prompt_tokens(tok, p, fmt));
  return out;
}

// Per layer: ||Q_l^T (mean_A w_l - mean_B w_l)|| with w_l = h_l / s_l - h_{l-1}, the A-B mean
// difference that block l writes into its removed subspace (reported as write_gap).
std::vector<double> write_gaps(const Captures& a, const Captures& b, const std::vector<Vectors>& subspace,
                               const std::vector<float>& scalars) {
  const int L = a.num_layers, d = a.hidden;
  std::vector<double> scores(L, 0.0);
  for (int l = 0; l < L; ++l) {
    std::vector<double> diff(d, 0.0);
    const double inv = 1.0 / scalars[l];
    for (int p = 0; p < a.num_prompts; ++p)
      for (int j = 0; j < d; ++j) diff[j] += (a.h(p, l)[j] * inv - a.h_prev(p, l)[j]) / a.num_prompts;
    for (int p = 0; p < b.num_prompts; ++p)
      for (int j = 0; j < d; ++j) diff[j] -= (b.h(p, l)[j] * inv - b.h_prev(p, l)[j]) / b.num_prompts;
    double s2 = 0.0;
    for (const auto& q : subspace[l]) s2 += dot(q, diff) * dot(q, diff);
    scores[l] = std::sqrt(s2);
  }
  return scores;
}

// `--edit-layers auto`: every block but the first (FailSpy's default, spec §5). On the small
// model, editing the top half of the layers by write_gap left 41% of the declines while 1..L-1
// left 2% at a KL of 0.045 (ablate/small-model-report.md).
std::vector<int> auto_edit_layers(int num_layers) {
  std::vector<int> out;
  for (int l = num_layers > 1 ? 1 : 0; l < num_layers; ++l) out.push_back(l);
  return out;
}

struct BehaviourRate {
  double rate = 0.0;
  int n = 0;
  std::vector<std::string> samples;
};

BehaviourRate behaviour_rate(CpuForward& fwd, const Tokenizer& tok, const std::vector<std::vector<int32_t>>& prompts,
                             const std::vector<std::string>& markers, int max_new_tokens,
                             const std::vector<int32_t>& stop_ids) {
  BehaviourRate r;
  int hits = 0;
  for (const auto& p : prompts) {
    const auto ids = greedy_generate(fwd, p, max_new_tokens, stop_ids);
    const std::string text = tok.decode(ids, true);
    if (has_marker(text, markers)) ++hits;
    if (r.samples.size() < 5) r.samples.push_back(text);
  }
  r.n = static_cast<int>(prompts.size());
  r.rate = r.n ? static_cast<double>(hits) / r.n : 0.0;
  return r;
}

double mean_of(const std::vector<double>& v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / v.size();
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

AblateResult run_ablate(const AblateJob& job) {
  const auto t0 = std::chrono::steady_clock::now();
  if (job.position != "last")
    throw InvalidArgument("--position '" + job.position + "': only 'last' (the last prompt token) is implemented");
  if (!(job.edit.scale > 0.0) || !std::isfinite(job.edit.scale))
    throw InvalidArgument("--scale " + std::to_string(job.edit.scale) + ": expected a finite value > 0");
  if (!job.edit.targets.o_proj && !job.edit.targets.down_proj && !job.edit.targets.embed)
    throw InvalidArgument("--targets: nothing to edit");

  // 1. Model, tokenizer, stop ids; quantized inputs are refused before any work.
  auto model = Model::load(job.in_dir);
  const ModelConfig& cfg = model->config();
  if (!model->quant_config().quant_method.empty())
    throw UnsupportedError(job.in_dir.string() + " is quantized (quant_method '" + model->quant_config().quant_method +
                           "', quant_algo '" + model->quant_config().quant_algo +
                           "'): quench ablate edits BF16 weights only; ablate the BF16 checkpoint and quantize after "
                           "(quench quantize)");
  const Tokenizer tok = Tokenizer::load(job.in_dir / "tokenizer.json");
  const GenerationConfig gen = GenerationConfig::load(job.in_dir);
  std::vector<int32_t> stop_ids = gen.eos_token_ids;
  for (int id : cfg.eos_token_ids)
    if (std::find(stop_ids.begin(), stop_ids.end(), id) == stop_ids.end()) stop_ids.push_back(id);
  const int L = cfg.num_hidden_layers;
  std::vector<float> scalars;
  for (const auto& lw : model->weights().layers) scalars.push_back(lw.layer_scalar);

  // 2. Prompt sets and their train / held-out split.
  const Split a = split_set(job.a_prompts, job.heldout_a, job.heldout_fraction, "--a");
  const Split b = split_set(job.b_prompts, job.heldout_b, job.heldout_fraction, "--b");
  auto cap = [&](const std::vector<std::string>& v) {
    std::vector<std::string> out = v;
    if (job.max_eval_prompts > 0 && static_cast<int>(out.size()) > job.max_eval_prompts) out.resize(job.max_eval_prompts);
    return out;
  };
  const auto a_train = tokenize_all(tok, a.train, job.format), b_train = tokenize_all(tok, b.train, job.format);
  const auto a_held = tokenize_all(tok, cap(a.heldout), job.format), b_held = tokenize_all(tok, cap(b.heldout), job.format);

  // 3. Measurement: residual stream after every block at the last prompt token; fp64 means.
  CpuForward fwd(*model);
  const Captures ca = capture_last_position(fwd, model->weights(), a_train, false);
  const Captures cb = capture_last_position(fwd, model->weights(), b_train, false);
  const LayerMeans means = layer_means(ca, cb);
  const double t_measure = seconds_since(t0);

  // 4. Basis layers, per-layer subspaces, edit layers.
  std::vector<int> basis = job.basis_layers;
  for (int m : basis)
    if (m < 0 || m >= L) throw InvalidArgument("--basis-layers: layer " + std::to_string(m) + " outside [0, " + std::to_string(L) + ")");
  if (basis.empty()) basis = best_separated_layers(means, job.k);
  std::vector<Vectors> subspace(L);
  json dropped_json = json::object();
  for (int l = 0; l < L; ++l) {
    std::vector<int> dropped;
    subspace[l] = target_subspace(means, basis, l, job.subspace, &dropped);
    if (!dropped.empty()) {
      dropped_json[std::to_string(l)] = dropped;
      log().warn("ablate: layer {}: directions of basis layers {} are near-dependent on the others and were dropped", l,
                 json(dropped).dump());
    }
  }
  const std::vector<double> write_gap = write_gaps(ca, cb, subspace, scalars);
  std::vector<int> edit_layers;
  const std::vector<int> auto_layers = auto_edit_layers(L);
  if (job.edit_layers == "auto") edit_layers = auto_layers;
  else if (job.edit_layers == "all") {
    edit_layers.resize(L);
    std::iota(edit_layers.begin(), edit_layers.end(), 0);
  } else edit_layers = parse_layer_list(job.edit_layers, L, "--edit-layers");
  std::sort(edit_layers.begin(), edit_layers.end());
  Vectors embed_subspace;
  if (job.edit.targets.embed) {
    Vectors dirs;
    for (int m : basis) dirs.push_back(means.direction(m, job.subspace.projected));
    embed_subspace = orthonormalize(dirs, job.subspace.rank_tol).basis;
    if (model->weights().tied_lm_head)
      log().warn("ablate: --targets embed on a tied-embedding model also removes the subspace from the LM head read-out");
  }

  // 5. The edit (fp32 from the stored weights, one rounding back).
  const EditedModel edited = apply_edit(model->weights(), cfg, edit_layers, subspace, embed_subspace, job.edit);
  const double t_edit = seconds_since(t0);

  // 6. Checks on held-out prompts, original vs edited.
  CpuForward fwd_edit(cfg, edited.weights);
  const Captures ha0 = capture_last_position(fwd, model->weights(), a_held, false);
  const Captures hb0 = capture_last_position(fwd, model->weights(), b_held, true);
  const Captures ha1 = capture_last_position(fwd_edit, edited.weights, a_held, false);
  const Captures hb1 = capture_last_position(fwd_edit, edited.weights, b_held, true);
  const Projections pa0 = subspace_projections(ha0, subspace, scalars), pa1 = subspace_projections(ha1, subspace, scalars);
  const Projections pb0 = subspace_projections(hb0, subspace, scalars), pb1 = subspace_projections(hb1, subspace, scalars);
  const std::vector<double> kl = first_token_kl(hb0, hb1);
  const double kl_mean = mean_of(kl), kl_max = kl.empty() ? 0.0 : *std::max_element(kl.begin(), kl.end());
  std::optional<BehaviourRate> rate0, rate1;
  if (!job.markers.empty()) {
    rate0 = behaviour_rate(fwd, tok, a_held, job.markers, job.max_new_tokens, stop_ids);
    rate1 = behaviour_rate(fwd_edit, tok, a_held, job.markers, job.max_new_tokens, stop_ids);
  }
  const double t_check = seconds_since(t0);

  // 7. The record.
  AblateResult res;
  json& r = res.record;
  r["tool"] = "quench ablate";
  r["spec"] = "docs: ../shared/reference/directional-ablation.md; edit W' = W - alpha U U^T W with U = orthonormalize(g * Q)";
  r["input"] = job.in_dir.string();
  r["output"] = job.dry_run ? json(nullptr) : json(job.out_dir.string());
  r["parameters"] = {
      {"a_prompts", job.a_prompts.string()}, {"b_prompts", job.b_prompts.string()},
      {"heldout_a", job.heldout_a.empty() ? json(nullptr) : json(job.heldout_a.string())},
      {"heldout_b", job.heldout_b.empty() ? json(nullptr) : json(job.heldout_b.string())},
      {"heldout_fraction", job.heldout_fraction},
      {"basis_layers_requested", job.basis_layers}, {"k", job.k}, {"edit_layers_requested", job.edit_layers},
      {"targets", {{"o_proj", job.edit.targets.o_proj}, {"down_proj", job.edit.targets.down_proj}, {"embed", job.edit.targets.embed}}},
      {"scale", job.edit.scale}, {"projected", job.subspace.projected}, {"biprojected", job.subspace.biprojected},
      {"norm_preserving", job.edit.norm_preserving ? "column" : "none"},
      {"post_norm_correction", job.edit.post_norm_correction}, {"rank_tol", job.subspace.rank_tol},
      {"position", job.position}, {"chat_template", job.format.chat_template}, {"system", job.format.system},
      {"dry_run", job.dry_run}, {"max_kl", job.max_kl ? json(*job.max_kl) : json(nullptr)},
      {"markers", job.markers}, {"max_new_tokens", job.max_new_tokens}, {"max_eval_prompts", job.max_eval_prompts}};
  r["prompts"] = {{"a_train", a_train.size()}, {"b_train", b_train.size()}, {"a_heldout", a_held.size()},
                  {"b_heldout", b_held.size()}};
  r["basis_layers"] = basis;
  r["edit_layers"] = edit_layers;
  r["auto_edit_layers"] = auto_layers;
  r["dropped_directions"] = dropped_json;
  json dirs = json::array();
  for (std::size_t i = 0; i < basis.size(); ++i) {
    json cosines = json::array();
    const auto ri = means.direction(basis[i], job.subspace.projected);
    for (std::size_t j = 0; j < basis.size(); ++j) cosines.push_back(dot(ri, means.direction(basis[j], job.subspace.projected)));
    dirs.push_back({{"layer", basis[i]}, {"cos_with_basis", cosines}});
  }
  r["directions"] = dirs;
  json layers = json::array();
  const std::set<int> edited_set(edit_layers.begin(), edit_layers.end());
  for (int l = 0; l < L; ++l) {
    const LayerStats& s = means.stats[l];
    layers.push_back({{"layer", l}, {"edited", edited_set.count(l) > 0}, {"rank", subspace[l].size()},
                      {"norm_mu_a", s.norm_mu_a}, {"norm_mu_b", s.norm_mu_b}, {"norm_r", s.norm_r}, {"cos_ab", s.cos_ab},
                      {"separation", s.separation}, {"write_gap", write_gap[l]},
                      {"stream_a", {{"before", pa0.stream[l]}, {"after", pa1.stream[l]}}},
                      {"stream_b", {{"before", pb0.stream[l]}, {"after", pb1.stream[l]}}},
                      {"write_a", {{"before", pa0.write[l]}, {"after", pa1.write[l]}}},
                      {"write_b", {{"before", pb0.write[l]}, {"after", pb1.write[l]}}}});
  }
  r["layers"] = layers;
  json tensors = json::array();
  for (const auto& t : edited.tensors)
    tensors.push_back({{"name", t.name}, {"layer", t.layer}, {"rank", t.rank}, {"leftover_ratio", t.leftover_ratio},
                       {"max_col_norm_change", t.max_col_norm_change}});
  r["tensors"] = tensors;
  r["kl"] = {{"mean", kl_mean}, {"max", kl_max}, {"n", kl.size()}, {"set", "held-out B"}};
  if (rate0) {
    r["behaviour"] = {{"markers", job.markers}, {"n", rate0->n}, {"before", rate0->rate}, {"after", rate1->rate},
                      {"samples_before", rate0->samples}, {"samples_after", rate1->samples}};
  }
  r["seconds"] = {{"measure", t_measure}, {"edit", t_edit - t_measure}, {"checks", t_check - t_edit}};

  // 8. Gate, then write.
  if (job.max_kl && kl_mean > *job.max_kl) {
    res.gate_failed = true;
    char buf[256];
    std::snprintf(buf, sizeof buf, "first-token KL on held-out B %.4f exceeds --max-kl %.4f: nothing written", kl_mean, *job.max_kl);
    res.gate_message = buf;
  }
  r["gate"] = {{"passed", !res.gate_failed}, {"message", res.gate_message}};
  if (!job.dry_run && !res.gate_failed) {
    r["seconds"]["total"] = seconds_since(t0);
    write_ablated_checkpoint(job.in_dir, job.out_dir, edited.tensors, r.dump(2) + "\n");
    res.written = true;
  }
  r["seconds"]["total"] = seconds_since(t0);
  return res;
}

std::string format_ablate_summary(const AblateResult& res) {
  const json& r = res.record;
  std::ostringstream o;
  char buf[512];
  o << "basis layers " << r["basis_layers"].dump() << ", edit layers " << r["edit_layers"].dump() << "\n";
  o << "layer  edited rank  separation  write_gap  stream_A before->after  write_A before->after\n";
  for (const auto& l : r["layers"]) {
    std::snprintf(buf, sizeof buf, "%5d  %-6s %4d  %10.3f  %9.4f  %10.4f -> %-10.4f  %9.4f -> %-9.4f\n", l["layer"].get<int>(),
                  l["edited"].get<bool>() ? "yes" : "no", l["rank"].get<int>(), l["separation"].get<double>(),
                  l["write_gap"].get<double>(), l["stream_a"]["before"].get<double>(), l["stream_a"]["after"].get<double>(),
                  l["write_a"]["before"].get<double>(), l["write_a"]["after"].get<double>());
    o << buf;
  }
  double worst = 0.0;
  for (const auto& t : r["tensors"]) worst = std::max(worst, t["leftover_ratio"].get<double>());
  std::snprintf(buf, sizeof buf, "edited tensors %zu, worst weight-level leftover ratio %.2e\n", r["tensors"].size(), worst);
  o << buf;
  std::snprintf(buf, sizeof buf, "first-token KL on held-out B: mean %.5f, max %.5f (n=%d)\n", r["kl"]["mean"].get<double>(),
                r["kl"]["max"].get<double>(), r["kl"]["n"].get<int>());
  o << buf;
  if (r.contains("behaviour")) {
    std::snprintf(buf, sizeof buf, "behaviour rate on held-out A: %.1f%% -> %.1f%% (n=%d)\n",
                  100 * r["behaviour"]["before"].get<double>(), 100 * r["behaviour"]["after"].get<double>(),
                  r["behaviour"]["n"].get<int>());
    o << buf;
  }
  if (res.gate_failed) o << "GATE FAILED: " << res.gate_message << "\n";
  else if (res.written) o << "written: " << r["output"].get<std::string>() << " (record: ablation.json)\n";
  else o << "dry run: nothing written\n";
  return o.str();
}

}  // namespace quench::ablate
