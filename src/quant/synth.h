// quench/quant/synth.h: random-weight Gemma 4 checkpoints of any config (notably the 12B), written
// tensor by tensor so benchmarks and the quantizer run on full-size shapes without real weights.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/dtype.h"

namespace quench {

/// One tensor of a synthetic checkpoint and the distribution its values are drawn from.
struct SynthTensor {
  std::string name;
  std::vector<int64_t> shape;
  enum class Init { kNormal, kNearOne, kLayerScalar } init = Init::kNormal;
};

/// `quench synth` options.
struct SynthOptions {
  uint64_t seed = 0;
  float weight_std = 0.02f;                     ///< std of Linear / embedding weights (N(0, std))
  std::size_t max_shard_bytes = 5'000'000'000;  ///< data bytes per shard
  bool multimodal = true;                       ///< also write vision/audio tensors when the config has vision_config / audio_config
};

/// The tensor inventory of a Gemma 4 checkpoint for `config` (config.json content), HF names as
/// transformers 5.17 saves them (../shared/reference/gemma4-architecture.md §3, §10): text
/// tensors under "model.language_model." (gemma4_unified) or "model." (gemma4_text); no v_proj on
/// k_eq_v layers; `lm_head.weight` only when untied; multimodal tensors under the nested runtime
/// names `model.embed_vision.*` / `model.embed_audio.*`. Throws what ModelConfig::from_json throws.
std::vector<SynthTensor> synth_inventory(const nlohmann::json& config, bool multimodal);

/// Value i (0-based, row-major) of tensor `t` for `seed`: deterministic, independent of chunking
/// and thread count. Normal weights ~N(0, weight_std) (Irwin-Hall approximation, |z| <= 3.46);
/// norm weights 1 + 0.05 z; layer_scalar uniform in [0.75, 1.0]. Never all-zero or constant.
float synth_value(const SynthTensor& t, uint64_t seed, float weight_std, uint64_t i);

/// What synth_checkpoint wrote.
struct SynthReport {
  std::size_t num_tensors = 0;
  std::size_t tensor_bytes = 0;
  std::size_t num_shards = 0;
  uint64_t num_params = 0;
};

/// Writes config.json (copied as given) and BF16 tensors into the existing empty directory
/// `out_dir`, generating each tensor in chunks (peak memory ~ 64 MB + one chunk per thread).
SynthReport synth_checkpoint(const nlohmann::ordered_json& config, const std::filesystem::path& out_dir,
                             const SynthOptions& options);

}  // namespace quench
