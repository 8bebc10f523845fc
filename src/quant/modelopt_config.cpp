// quench/quant/modelopt_config.cpp: see modelopt_config.h.
#include "quant/modelopt_config.h"

#include <algorithm>
#include <set>

namespace quench {

namespace {

nlohmann::ordered_json producer() {
  return {{"name", "modelopt"}, {"version", kModelOptFormatVersion}, {"writer", "quench 0.1.0"}};
}

nlohmann::ordered_json float_args(int bits, bool with_group) {
  nlohmann::ordered_json a = {{"dynamic", false}, {"num_bits", bits}, {"type", "float"}};
  if (with_group) a["group_size"] = 16;
  return a;
}

/// One config group: weights (+ input activations when static input scales exist).
nlohmann::ordered_json config_group(WeightFormat f, bool has_input_scales, nlohmann::json targets) {
  const bool nv = f == WeightFormat::kNVFP4;
  nlohmann::ordered_json g;
  if (has_input_scales) g["input_activations"] = float_args(nv ? 4 : 8, nv);
  g["weights"] = float_args(nv ? 4 : 8, nv);
  g["targets"] = std::move(targets);
  return g;
}

std::string algo_of(WeightFormat f, bool has_input_scales) {
  if (f == WeightFormat::kFP8) return "FP8";
  return has_input_scales ? "NVFP4" : "W4A16_NVFP4";
}

}  // namespace

std::vector<std::string> modelopt_exclude_modules(const ModelOptExport& e) {
  std::set<std::string> out(e.extra_ignore.begin(), e.extra_ignore.end());
  for (const auto& m : e.unquantized_linears) {
    const std::string parent = m.substr(0, m.rfind('.'));
    const bool parent_has_quantized = std::any_of(
        e.quantized_layers.begin(), e.quantized_layers.end(),
        [&](const auto& kv) { return kv.first.starts_with(parent + "."); });
    if (parent_has_quantized || parent == m) {
      out.insert(m);
    } else {
      out.insert(parent);
      out.insert(parent + ".*");
    }
  }
  return {out.begin(), out.end()};
}

nlohmann::ordered_json hf_quant_config_json(const ModelOptExport& e) {
  nlohmann::ordered_json q;
  q["quant_algo"] = e.quant_algo;
  q["kv_cache_quant_algo"] = e.kv_cache_fp8 ? nlohmann::ordered_json("FP8") : nlohmann::ordered_json(nullptr);
  if (e.quant_algo == "MIXED_PRECISION") {
    nlohmann::ordered_json layers = nlohmann::ordered_json::object();
    for (const auto& [name, f] : e.quantized_layers) {
      nlohmann::ordered_json l = {{"quant_algo", algo_of(f, e.has_input_scales)}};
      if (f == WeightFormat::kNVFP4) l["group_size"] = 16;
      layers[name] = l;
    }
    q["quantized_layers"] = layers;
  } else {
    if (e.quant_algo != "FP8") q["group_size"] = 16;
    q["exclude_modules"] = modelopt_exclude_modules(e);
  }
  return {{"producer", producer()}, {"quantization", q}};
}

nlohmann::ordered_json config_quantization_config(const ModelOptExport& e) {
  nlohmann::ordered_json c;
  nlohmann::ordered_json groups = nlohmann::ordered_json::object();
  if (e.quant_algo == "MIXED_PRECISION") {
    std::map<WeightFormat, std::vector<std::string>> by_format;
    for (const auto& [name, f] : e.quantized_layers) by_format[f].push_back(name);  // map: sorted
    int gi = 0;
    for (const auto& [f, names] : by_format)
      groups["group_" + std::to_string(gi++)] = config_group(f, e.has_input_scales, names);
  } else {
    const WeightFormat f = e.quant_algo == "FP8" ? WeightFormat::kFP8 : WeightFormat::kNVFP4;
    groups["group_0"] = config_group(f, e.has_input_scales, nlohmann::json::array({"Linear"}));
  }
  c["config_groups"] = groups;
  c["ignore"] = e.quant_algo == "MIXED_PRECISION" ? std::vector<std::string>{} : modelopt_exclude_modules(e);
  c["quant_algo"] = e.quant_algo;
  if (e.kv_cache_fp8) c["kv_cache_scheme"] = float_args(8, false);
  c["producer"] = producer();
  c["quant_method"] = "modelopt";
  if (e.quant_algo != "FP8" && e.quant_algo != "MIXED_PRECISION") c["group_size"] = 16;
  if (e.quant_algo == "MIXED_PRECISION") c["quantized_layers"] = hf_quant_config_json(e)["quantization"]["quantized_layers"];
  return c;
}

}  // namespace quench
