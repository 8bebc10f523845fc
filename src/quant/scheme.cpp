// quench/quant/scheme.cpp: scheme parsing and Linear classification (see scheme.h).
#include "quant/scheme.h"

#include <regex>

#include <fmt/format.h>

#include "core/error.h"  // InvalidArgument

namespace quench {

QuantScheme parse_quant_scheme(std::string_view s) {
  if (s == "nvfp4-mlp") return QuantScheme::kNvfp4Mlp;
  if (s == "nvfp4") return QuantScheme::kNvfp4;
  if (s == "fp8") return QuantScheme::kFp8;
  if (s == "nvfp4-mlp+fp8-attn") return QuantScheme::kNvfp4MlpFp8Attn;
  throw InvalidArgument(fmt::format(
      "--scheme '{}': expected one of nvfp4-mlp, nvfp4, fp8, nvfp4-mlp+fp8-attn", s));
}

std::string_view quant_scheme_name(QuantScheme s) {
  switch (s) {
    case QuantScheme::kNvfp4Mlp: return "nvfp4-mlp";
    case QuantScheme::kNvfp4: return "nvfp4";
    case QuantScheme::kFp8: return "fp8";
    case QuantScheme::kNvfp4MlpFp8Attn: return "nvfp4-mlp+fp8-attn";
  }
  return "?";
}

std::string LinearModule::fused_group() const {
  const auto dot = module.rfind('.');
  const std::string parent = module.substr(0, dot);  // "...layers.N.self_attn" / "...layers.N.mlp"
  switch (kind) {
    case LinearKind::kQ:
    case LinearKind::kK:
    case LinearKind::kV: return parent + ".qkv_proj";
    case LinearKind::kGate:
    case LinearKind::kUp: return parent + ".gate_up_proj";
    default: return module;
  }
}

std::optional<LinearModule> parse_linear_weight(std::string_view tensor_name) {
  static const std::regex re(R"(^((?:[A-Za-z0-9_]+\.)*)layers\.(\d+)\.(self_attn|mlp)\.(q|k|v|o|gate|up|down)_proj\.weight$)");
  std::match_results<std::string_view::const_iterator> m;
  if (!std::regex_match(tensor_name.begin(), tensor_name.end(), m, re)) return std::nullopt;
  const std::string prefix = m[1].str();
  for (const char* tower : {"vision", "audio", "visual"})
    if (prefix.find(tower) != std::string::npos) return std::nullopt;
  const std::string block = m[3].str(), proj = m[4].str();
  LinearModule lm;
  lm.module = std::string(tensor_name.substr(0, tensor_name.size() - std::string_view(".weight").size()));
  lm.layer = std::stoi(m[2].str());
  if (block == "self_attn") {
    if (proj == "q") lm.kind = LinearKind::kQ;
    else if (proj == "k") lm.kind = LinearKind::kK;
    else if (proj == "v") lm.kind = LinearKind::kV;
    else if (proj == "o") lm.kind = LinearKind::kO;
    else return std::nullopt;
  } else {
    if (proj == "gate") lm.kind = LinearKind::kGate;
    else if (proj == "up") lm.kind = LinearKind::kUp;
    else if (proj == "down") lm.kind = LinearKind::kDown;
    else return std::nullopt;
  }
  return lm;
}

WeightFormat scheme_format(QuantScheme scheme, const LinearModule& m) {
  switch (scheme) {
    case QuantScheme::kNvfp4Mlp: return m.is_mlp() ? WeightFormat::kNVFP4 : WeightFormat::kBF16;
    case QuantScheme::kNvfp4: return WeightFormat::kNVFP4;
    case QuantScheme::kFp8: return WeightFormat::kFP8;
    case QuantScheme::kNvfp4MlpFp8Attn: return m.is_mlp() ? WeightFormat::kNVFP4 : WeightFormat::kFP8;
  }
  return WeightFormat::kBF16;
}

std::string modelopt_quant_algo(QuantScheme scheme, bool has_input_scales) {
  switch (scheme) {
    case QuantScheme::kNvfp4Mlp:
    case QuantScheme::kNvfp4: return has_input_scales ? "NVFP4" : "W4A16_NVFP4";
    case QuantScheme::kFp8: return "FP8";
    case QuantScheme::kNvfp4MlpFp8Attn: return "MIXED_PRECISION";
  }
  return "";
}

}  // namespace quench
