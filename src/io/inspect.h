// quench/io/inspect.h: what a checkpoint directory holds (the library half of `quench inspect`).
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/model_config.h"
#include "io/quant_config.h"

namespace quench {

/// Summary of one checkpoint directory. Counts are over the tensors actually stored.
struct InspectReport {
  std::filesystem::path dir;
  std::string model_type;                  ///< config.json model_type as written
  std::optional<ModelConfig> config;       ///< absent when the config names an unsupported feature
  std::string config_error;                ///< that UnsupportedError's message, else ""
  QuantConfig quant;
  std::size_t tensor_count = 0;
  std::size_t total_bytes = 0;             ///< sum of tensor data bytes (headers excluded)
  std::map<std::string, std::size_t> dtype_counts;  ///< safetensors dtype name -> tensors
  std::map<std::string, std::size_t> dtype_bytes;   ///< safetensors dtype name -> bytes
  /// Text-decoder Linear weights (q/k/v/o/gate/up/down_proj) by stored format: "BF16" (any
  /// float dtype, unquantized), "FP8" (F8_E4M3 weight), "NVFP4" (U8 weight + F8_E4M3 weight_scale).
  std::map<std::string, std::size_t> linear_formats;
  /// Linears whose stored format differs from what the quantization metadata says, as
  /// "<module>: declared X, stored Y".
  std::vector<std::string> format_mismatches;
  std::size_t multimodal_tensor_count = 0;  ///< vision/audio tensors (skipped by the text model)
  std::size_t multimodal_bytes = 0;
};

/// Reads `dir/config.json`, quantization metadata and every safetensors header (no tensor data is
/// touched). Throws IoError / FormatError naming the file for a missing or malformed directory;
/// an UnsupportedError from the config is recorded in `config_error` instead.
InspectReport inspect_checkpoint(const std::filesystem::path& dir);

/// True for tensors of the vision / audio towers and embedders (both Google's and transformers'
/// key layouts, gemma4-architecture.md §3 and §10).
bool is_multimodal_tensor(const std::string& name);

/// Human-readable report (several lines, ends with a newline).
std::string format_inspect_text(const InspectReport& r);

/// The same facts as JSON (per-layer geometry included) for `quench inspect --json`.
nlohmann::json inspect_to_json(const InspectReport& r);

}  // namespace quench
