// quench/quant/export.cpp: see export.h.
#include "quant/export.h"

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"              // InvalidArgument, UnsupportedError
#include "io/safetensors.h"          // Checkpoint, write_file_atomic
#include "io/text_file.h"            // read_text_file
#include "quant/calibration.h"       // ActivationAmax
#include "quant/fp8.h"               // fp8_scale
#include "quant/memory.h"            // release_mapped_pages
#include "quant/modelopt_config.h"   // ModelOptExport, hf_quant_config_json, config_quantization_config
#include "quant/multimodal_names.h"  // vllm_multimodal_name, multimodal_ignore_entries
#include "quant/nvfp4.h"             // nvfp4_global_scale, kNvfp4BlockSize
#include "quant/shard_writer.h"      // ShardedSafetensorsWriter
#include "quant/staging_dir.h"       // copy_auxiliary_files
#include "quant/weight_quantizer.h"  // make_weight_quantizer

namespace fs = std::filesystem;

namespace quench {

namespace {

/// One step of the write plan: a passthrough tensor or a fused group of quantized Linears.
struct Step {
  std::string in_name, out_name;              // passthrough
  std::vector<LinearModule> group;            // quantized group (non-empty => group step)
  WeightFormat format = WeightFormat::kBF16;
};

void append_scalar(ShardedSafetensorsWriter& wr, const std::string& name, float v) { wr.append(name, &v, 4); }

/// Copies a tensor's bytes from the mapping in 64 MB pieces, releasing each from RSS after writing.
void append_passthrough(ShardedSafetensorsWriter& wr, const std::string& name, const TensorView& t) {
  constexpr std::size_t kPiece = std::size_t{64} << 20;
  if (t.nbytes == 0) wr.append(name, t.data, 0);
  for (std::size_t off = 0; off < t.nbytes; off += kPiece) {
    const std::size_t n = std::min(kPiece, t.nbytes - off);
    wr.append(name, t.data + off, n);
    release_mapped_pages(t.data + off, n);
  }
}

}  // namespace

ExportReport export_quantized(const fs::path& in_dir, const fs::path& out_dir, const ExportOptions& opt,
                              const ActivationAmax* calib) {
  const Checkpoint ckpt = Checkpoint::open(in_dir);
  nlohmann::ordered_json config = nlohmann::ordered_json::parse(read_text_file(in_dir / "config.json"));
  if (config.contains("quantization_config"))
    throw UnsupportedError(fmt::format("{}: config.json already has a quantization_config (quant_method {}); "
                                       "quench quantize needs a BF16/FP16/FP32 checkpoint",
                                       in_dir.string(), config["quantization_config"].value("quant_method", "?")));
  if (!calib && opt.scheme != QuantScheme::kNvfp4Mlp && opt.scheme != QuantScheme::kNvfp4)
    throw InvalidArgument(fmt::format("--scheme {}: FP8 layers need input_scale; run with calibration "
                                      "(--calib-samples > 0)", quant_scheme_name(opt.scheme)));

  // ---- classify every tensor and build the plan --------------------------------------------
  const std::vector<std::string> names = ckpt.names();
  std::map<std::string, std::vector<LinearModule>> groups;  // fused group -> quantized members
  std::map<std::string, WeightFormat> format_of;            // module -> format
  std::vector<LinearModule> linears;
  for (const auto& n : names) {
    auto lm = parse_linear_weight(n);
    if (!lm) continue;
    WeightFormat f = scheme_format(opt.scheme, *lm);
    for (const auto& pat : opt.exclude)
      if (glob_match(pat, lm->module)) f = WeightFormat::kBF16;
    const TensorView& t = ckpt.get(n);
    if (t.shape.size() != 2)
      throw FormatError(fmt::format("{}: tensor '{}' has shape {}, expected [out, in]", in_dir.string(), n, t.shape_str()));
    if (t.dtype != DType::kBF16 && t.dtype != DType::kF16 && t.dtype != DType::kF32)
      throw UnsupportedError(fmt::format("{}: tensor '{}' is {}, expected BF16, F16 or F32", in_dir.string(), n,
                                         dtype_name(t.dtype)));
    if (f == WeightFormat::kNVFP4 && t.shape[1] % kNvfp4BlockSize != 0)
      throw UnsupportedError(fmt::format("{}: tensor '{}' {}: NVFP4 needs in_features divisible by 16",
                                         in_dir.string(), n, t.shape_str()));
    format_of[lm->module] = f;
    linears.push_back(*lm);
    if (f != WeightFormat::kBF16) groups[lm->fused_group()].push_back(*lm);
  }
  // vLLM fuses q/k/v and gate/up: all members of a group must share one format (§6.3 rule 1).
  for (const auto& lm : linears) {
    const std::string g = lm.fused_group();
    for (const auto& other : linears)
      if (other.fused_group() == g && format_of[other.module] != format_of[lm.module])
        throw InvalidArgument(fmt::format("--exclude: '{}' is {} but '{}' is {}; vLLM fuses them into '{}' and "
                                          "needs one format (exclude the whole group)",
                                          lm.module, weight_format_name(format_of[lm.module]), other.module,
                                          weight_format_name(format_of[other.module]), g));
  }

  const bool with_input_scales = calib != nullptr;
  std::vector<Step> steps;
  std::vector<PlannedTensor> plan;
  std::set<std::string> planned_groups;
  ExportReport rep;
  for (const auto& n : names) {
    auto lm = parse_linear_weight(n);
    if (lm && format_of[lm->module] != WeightFormat::kBF16) {
      const std::string g = lm->fused_group();
      if (!planned_groups.insert(g).second) continue;
      Step s;
      s.group = groups[g];
      s.format = format_of[lm->module];
      for (const auto& m : s.group) {
        const TensorView& t = ckpt.get(m.module + ".weight");
        const int64_t rows = t.shape[0], cols = t.shape[1];
        if (s.format == WeightFormat::kNVFP4) {
          plan.push_back({m.module + ".weight", DType::kU8, {rows, cols / 2}});
          plan.push_back({m.module + ".weight_scale", DType::kF8E4M3, {rows, cols / kNvfp4BlockSize}});
          plan.push_back({m.module + ".weight_scale_2", DType::kF32, {}});
        } else {
          plan.push_back({m.module + ".weight", DType::kF8E4M3, {rows, cols}});
          plan.push_back({m.module + ".weight_scale", DType::kF32, {}});
        }
        if (with_input_scales) plan.push_back({m.module + ".input_scale", DType::kF32, {}});
      }
      steps.push_back(std::move(s));
      continue;
    }
    Step s;
    s.in_name = n;
    s.out_name = vllm_multimodal_name(n);
    if (s.out_name != n) rep.renamed.push_back(n + " -> " + s.out_name);
    const TensorView& t = ckpt.get(n);
    plan.push_back({s.out_name, t.dtype, t.shape});
    steps.push_back(std::move(s));
  }
  // FP8 KV-cache scales (§7.2): `<layer>.self_attn.k_proj.k_scale`, `<layer>.self_attn.v_proj.v_scale`.
  std::vector<std::pair<std::string, float>> kv_scales;
  if (opt.kv_cache_fp8 && calib) {
    for (const auto& lm : linears) {
      if (lm.kind != LinearKind::kK) continue;
      if (lm.layer >= static_cast<int>(calib->k_amax.size()))
        throw InvalidArgument(fmt::format("calibration has no K/V amax for layer {} ('{}')", lm.layer, lm.module));
      const std::string attn = lm.module.substr(0, lm.module.rfind('.'));
      kv_scales.emplace_back(attn + ".k_proj.k_scale", fp8_scale(calib->k_amax[lm.layer]));
      kv_scales.emplace_back(attn + ".v_proj.v_scale", fp8_scale(calib->v_amax[lm.layer]));
    }
    for (const auto& [name, v] : kv_scales) plan.push_back({name, DType::kF32, {}});
    rep.kv_scales_written = !kv_scales.empty();
  }

  // ---- stream ------------------------------------------------------------------------------
  const std::unique_ptr<WeightQuantizer> quantizer = make_weight_quantizer(opt.device);
  rep.device = quantizer->description();
  ShardedSafetensorsWriter wr(out_dir, plan, opt.max_shard_bytes);
  std::map<std::string, LinearReport> reports;
  for (const auto& s : steps) {
    if (s.group.empty()) {
      append_passthrough(wr, s.out_name, ckpt.get(s.in_name));
      continue;
    }
    std::vector<const TensorView*> members;
    for (const auto& m : s.group) members.push_back(&ckpt.get(m.module + ".weight"));
    const std::vector<float> member_amax = quantizer->load_group(members);
    float group_amax = 0.0f, group_in_amax = 0.0f;
    for (const auto& m : s.group) {
      if (calib) {
        auto it = calib->linear_input.find(m.module);
        if (it == calib->linear_input.end())
          throw InvalidArgument(fmt::format("calibration recorded no input for Linear '{}'", m.module));
        group_in_amax = std::max(group_in_amax, it->second);
      }
    }
    for (float a : member_amax) group_amax = std::max(group_amax, a);
    for (std::size_t i = 0; i < s.group.size(); ++i) {
      const auto& m = s.group[i];
      const TensorView& t = *members[i];
      const int64_t rows = t.shape[0], cols = t.shape[1];
      LinearReport lr;
      lr.module = m.module;
      lr.format = s.format;
      lr.out_features = rows;
      lr.in_features = cols;
      lr.weight_amax = member_amax[i];
      if (s.format == WeightFormat::kNVFP4) {
        const float g = nvfp4_global_scale(group_amax);
        const auto n = static_cast<std::size_t>(rows * cols);
        std::vector<uint8_t> packed(n / 2), scales(n / kNvfp4BlockSize);
        lr.rel_l2 = quantizer->quantize_nvfp4(i, g, packed, scales);
        wr.append(m.module + ".weight", packed.data(), packed.size());
        wr.append(m.module + ".weight_scale", scales.data(), scales.size());
        append_scalar(wr, m.module + ".weight_scale_2", g);
        lr.weight_global_scale = g;
        if (calib) lr.input_scale = nvfp4_global_scale(group_in_amax);
      } else {
        const float sc = fp8_scale(group_amax);
        std::vector<uint8_t> q(static_cast<std::size_t>(rows * cols));
        lr.rel_l2 = quantizer->quantize_fp8(i, sc, q);
        wr.append(m.module + ".weight", q.data(), q.size());
        append_scalar(wr, m.module + ".weight_scale", sc);
        lr.weight_global_scale = sc;
        if (calib) lr.input_scale = fp8_scale(group_in_amax);
      }
      if (lr.input_scale) append_scalar(wr, m.module + ".input_scale", *lr.input_scale);
      reports[m.module] = lr;
    }
  }
  for (const auto& [name, v] : kv_scales) append_scalar(wr, name, v);
  wr.finish();
  rep.tensor_bytes = wr.total_bytes();
  rep.num_shards = wr.num_shards();
  rep.num_tensors = plan.size();

  // ---- metadata ----------------------------------------------------------------------------
  ModelOptExport e;
  e.has_input_scales = with_input_scales;
  e.kv_cache_fp8 = opt.kv_cache_fp8;
  e.quant_algo = modelopt_quant_algo(opt.scheme, with_input_scales);
  for (const auto& lm : linears) {
    if (format_of[lm.module] == WeightFormat::kBF16) {
      e.unquantized_linears.push_back(lm.module);
      LinearReport lr;
      lr.module = lm.module;
      const TensorView& t = ckpt.get(lm.module + ".weight");
      lr.out_features = t.shape[0];
      lr.in_features = t.shape[1];
      rep.linears.push_back(lr);
    } else {
      e.quantized_layers[lm.module] = format_of[lm.module];
      rep.linears.push_back(reports.at(lm.module));
    }
  }
  e.extra_ignore.push_back("lm_head");
  std::vector<std::string> out_names;
  for (const auto& p : plan) out_names.push_back(p.name);
  for (auto& entry : multimodal_ignore_entries(out_names)) e.extra_ignore.push_back(entry);
  rep.quant_algo = e.quant_algo;

  config["quantization_config"] = config_quantization_config(e);
  write_file_atomic(out_dir / "config.json", config.dump(2) + "\n");
  write_file_atomic(out_dir / "hf_quant_config.json", hf_quant_config_json(e).dump(4) + "\n");
  rep.copied_files = copy_auxiliary_files(in_dir, out_dir);
  return rep;
}

}  // namespace quench
