// quench/io/model_config.h: the Gemma 4 text-decoder configuration, parsed from config.json.
//
// Accepts `gemma4_unified` (keys under "text_config") and `gemma4_text` / `gemma4_unified_text`
// (keys at the top level). Per-layer geometry is resolved here once, so nothing downstream reads a
// "global" head_dim (see ../shared/reference/gemma4-architecture.md §1.2 and §10: both the
// `per_layer_config` spelling of transformers 5.17 and the `global_head_dim` /
// `num_global_key_value_heads` spelling of Google's 12B config are accepted).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace quench {

enum class LayerType { kSliding, kFull };
enum class RopeType { kDefault, kProportional };

/// RoPE parameters of one layer type (config.json `rope_parameters.<layer_type>`).
struct RopeParams {
  RopeType type = RopeType::kDefault;
  double theta = 10000.0;
  double partial_rotary_factor = 1.0;  ///< proportional only: fraction of head_dim whose pairs rotate
};

/// Resolved geometry of one decoder layer.
struct LayerConfig {
  LayerType type = LayerType::kSliding;
  int head_dim = 0;             ///< 256 sliding / 512 global on the 12B
  int num_heads = 0;            ///< query heads (not overridden per layer)
  int num_kv_heads = 0;         ///< 8 sliding / 1 global on the 12B
  bool k_eq_v = false;          ///< no v_proj: V is the raw K projection (global layers with attention_k_eq_v)
  RopeParams rope;
  int sliding_window = 0;       ///< keys visible incl. self on sliding layers; 0 on full layers
};

/// The text decoder's configuration.
struct ModelConfig {
  std::string model_type;       ///< top-level model_type as written ("gemma4_unified", "gemma4_text"...)
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_hidden_layers = 0;
  int vocab_size = 0;
  int max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double final_logit_softcapping = 0.0;  ///< 0 = none
  bool tie_word_embeddings = true;
  std::string hidden_activation = "gelu_pytorch_tanh";
  int sliding_window = 0;
  int pad_token_id = 0, bos_token_id = 2;
  std::vector<int> eos_token_ids;        ///< config.json eos_token_id (int or list)
  std::vector<LayerConfig> layers;       ///< one per decoder layer, resolved
  nlohmann::json raw;                    ///< the whole config.json, for writers that copy it

  /// Parses and validates; throws FormatError (bad JSON / types, naming the key) or
  /// UnsupportedError naming a feature this forward pass does not implement (per-layer
  /// embeddings, KV sharing, MoE, double-wide MLP, attention softcap, non-gelu activation ...).
  static ModelConfig from_json(const nlohmann::json& j, const std::string& source_name = "config.json");
  /// Reads `dir/config.json`.
  static ModelConfig load(const std::filesystem::path& dir);

  int num_layers_of(LayerType t) const;
};

}  // namespace quench
