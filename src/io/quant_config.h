// quench/io/quant_config.h: which Linear is stored in which format, from config.json
// `quantization_config` or hf_quant_config.json (ModelOpt layout; see
// ../shared/reference/nvfp4-modelopt-format.md §4-5).
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace quench {

/// Storage format of one Linear's weight.
///  kBF16 : `<m>.weight` BF16 [out, in]
///  kFP8  : `<m>.weight` F8_E4M3 [out, in], `<m>.weight_scale` F32 scalar (per-tensor), optional
///          `<m>.input_scale` F32 scalar
///  kNVFP4: `<m>.weight` U8 [out, in/2] (E2M1 pairs, low nibble first), `<m>.weight_scale`
///          F8_E4M3 [out, in/16], `<m>.weight_scale_2` F32 scalar, optional `<m>.input_scale`
enum class WeightFormat { kBF16, kFP8, kNVFP4 };

std::string_view weight_format_name(WeightFormat f);

/// Parsed quantization description of a checkpoint.
struct QuantConfig {
  std::string quant_method;     ///< "" (unquantized) or "modelopt"
  std::string quant_algo;       ///< "NVFP4", "FP8", "MIXED_PRECISION" or ""
  std::vector<std::string> exclude_modules;  ///< glob patterns (ModelOpt `exclude_modules` / `ignore`)
  std::map<std::string, WeightFormat> quantized_layers;  ///< MIXED_PRECISION per-module formats
  std::string kv_cache_quant_algo;  ///< "FP8" or ""
  int group_size = 16;

  /// Reads `quantization_config` of config.json, else dir/hf_quant_config.json, else unquantized.
  /// Throws FormatError / UnsupportedError naming the file and key.
  static QuantConfig load(const std::filesystem::path& dir, const nlohmann::json& config_json);

  /// Format of the Linear named `module` (e.g. "model.language_model.layers.3.mlp.down_proj"),
  /// honouring exclude patterns and MIXED_PRECISION entries (names matched with and without the
  /// "model." / "model.language_model." prefixes as ModelOpt writes them).
  WeightFormat format_of(const std::string& module) const;
};

/// Glob match with '*' (any run, including dots) and '?' as ModelOpt's fnmatch does.
bool glob_match(std::string_view pattern, std::string_view text);

}  // namespace quench
