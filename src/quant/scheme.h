// quench/quant/scheme.h: the quantization schemes of `quench quantize` and which Linear each one
// quantizes to which format (../shared/reference/nvfp4-modelopt-format.md §5.3, §6.4, §7.1).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/quant_config.h"  // WeightFormat

namespace quench {

/// `--scheme` values.
enum class QuantScheme {
  kNvfp4Mlp,           ///< "nvfp4-mlp": ModelOpt NVFP4_MLP_ONLY_CFG (gate/up/down NVFP4, rest BF16)
  kNvfp4,              ///< "nvfp4": NVFP4_DEFAULT_CFG (every decoder Linear NVFP4)
  kFp8,                ///< "fp8": FP8_DEFAULT_CFG (every decoder Linear FP8 per-tensor)
  kNvfp4MlpFp8Attn,    ///< "nvfp4-mlp+fp8-attn": MIXED_PRECISION, MLP NVFP4 + attention FP8
};

/// Parses the CLI spelling; throws InvalidArgument("--scheme 'x': expected one of ...").
QuantScheme parse_quant_scheme(std::string_view s);
std::string_view quant_scheme_name(QuantScheme s);

/// Projection of a decoder-layer Linear (HF module leaf names).
enum class LinearKind { kQ, kK, kV, kO, kGate, kUp, kDown };

/// A decoder-layer Linear found in a checkpoint.
struct LinearModule {
  std::string module;   ///< HF module name, e.g. "model.language_model.layers.3.mlp.up_proj"
  int layer = 0;        ///< decoder layer index
  LinearKind kind = LinearKind::kQ;
  bool is_mlp() const { return kind == LinearKind::kGate || kind == LinearKind::kUp || kind == LinearKind::kDown; }
  /// Name of the fused group vLLM builds from this Linear (§3.5): "<layer prefix>.self_attn.qkv_proj"
  /// for q/k/v, "<layer prefix>.mlp.gate_up_proj" for gate/up, the module itself for o/down.
  std::string fused_group() const;
};

/// Recognises "<prefix>layers.<N>.{self_attn.{q,k,v,o},mlp.{gate,up,down}}_proj.weight" of the
/// text decoder (tensors under vision/audio towers are never Linears to quantize). nullopt otherwise.
std::optional<LinearModule> parse_linear_weight(std::string_view tensor_name);

/// Format `scheme` gives `m`, before user `--exclude` patterns are applied.
WeightFormat scheme_format(QuantScheme scheme, const LinearModule& m);

/// ModelOpt `quant_algo` written to hf_quant_config.json for the scheme ("NVFP4", "FP8",
/// "MIXED_PRECISION"); W4A16_NVFP4 when NVFP4 weights carry no input_scale (uncalibrated).
std::string modelopt_quant_algo(QuantScheme scheme, bool has_input_scales);

}  // namespace quench
