// quench/quant/modelopt_config.h: the quantization metadata of a ModelOpt Hugging Face export,
// `hf_quant_config.json` and config.json's `quantization_config`
// (../shared/reference/nvfp4-modelopt-format.md §6; ModelOpt `get_quant_config`,
// `convert_hf_quant_config_format`, `_prefix_wildcard_summarize_exclude_modules`).
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/quant_config.h"  // WeightFormat

namespace quench {

/// ModelOpt release whose export numerics and layout quench reproduces (block-scale clamp of
/// 0.45.0, §3.2). Written as producer.version because vLLM requires producer.name "modelopt".
inline constexpr const char* kModelOptFormatVersion = "0.45.0";

/// What was quantized, as the metadata writer needs it.
struct ModelOptExport {
  std::string quant_algo;                                ///< "NVFP4", "W4A16_NVFP4", "FP8", "MIXED_PRECISION"
  std::map<std::string, WeightFormat> quantized_layers;  ///< every quantized Linear -> format
  std::vector<std::string> unquantized_linears;          ///< Linears kept BF16 (attention for nvfp4-mlp, --exclude)
  std::vector<std::string> extra_ignore;                 ///< already-formatted entries ("lm_head", multimodal pairs)
  bool has_input_scales = true;                          ///< input_scale written (calibrated)
  bool kv_cache_fp8 = false;                             ///< k/v FP8 (kv_cache_quant_algo "FP8")
};

/// The exclude list: "lm_head"-style extra entries, plus for every unquantized Linear either the
/// pair {parent, parent.*} when no quantized Linear lives under that parent (e.g. a whole
/// `layers.N.self_attn`), or its exact name (§6.3 writer advice: no bare `X*`). Sorted, unique.
std::vector<std::string> modelopt_exclude_modules(const ModelOptExport& e);

/// hf_quant_config.json content (§6.1 / §6.4): producer, quantization.{quant_algo,
/// kv_cache_quant_algo, group_size (NVFP4 only), exclude_modules | quantized_layers}.
nlohmann::ordered_json hf_quant_config_json(const ModelOptExport& e);

/// config.json `quantization_config` (§6.2 / §6.4): config_groups, ignore, quant_algo,
/// kv_cache_scheme (FP8 KV only), producer, quant_method "modelopt", and for MIXED_PRECISION a
/// copy of quantized_layers with one config group per distinct per-layer config.
nlohmann::ordered_json config_quantization_config(const ModelOptExport& e);

}  // namespace quench
