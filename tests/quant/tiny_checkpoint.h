// tests/quant/tiny_checkpoint.h: a tiny random gemma4_unified checkpoint made at test time with
// quench synth (one sliding and one k_eq_v full layer, vision + audio tensors in transformers
// 5.17's nested names), and a scratch directory removed at scope exit.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "quant/synth.h"

namespace quench::test {

/// A fresh empty directory under the system temp dir, removed by the destructor.
struct ScratchDir {
  std::filesystem::path path;
  explicit ScratchDir(const std::string& tag) {
    path = std::filesystem::temp_directory_path() /
           ("quench-quant-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  static int& counter() {
    static int c = 0;
    return c;
  }
};

inline nlohmann::ordered_json tiny_config() {
  return nlohmann::ordered_json::parse(R"({
    "architectures": ["Gemma4UnifiedForConditionalGeneration"],
    "model_type": "gemma4_unified",
    "text_config": {
      "model_type": "gemma4_unified_text", "hidden_size": 64, "intermediate_size": 128,
      "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 2, "head_dim": 32,
      "global_head_dim": 64, "num_global_key_value_heads": 1, "attention_k_eq_v": true,
      "layer_types": ["sliding_attention", "full_attention"], "sliding_window": 8,
      "rope_parameters": {"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                          "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.25,
                                             "rope_theta": 1000000.0}},
      "rms_norm_eps": 1e-06, "hidden_activation": "gelu_pytorch_tanh", "vocab_size": 96,
      "max_position_embeddings": 256, "final_logit_softcapping": 30.0, "tie_word_embeddings": true,
      "hidden_size_per_layer_input": 0, "num_kv_shared_layers": 0, "enable_moe_block": false,
      "pad_token_id": 0, "eos_token_id": 1, "bos_token_id": 2},
    "vision_config": {"model_patch_size": 4, "mm_embed_dim": 64, "mm_posemb_size": 8},
    "audio_config": {"audio_embed_dim": 16},
    "tie_word_embeddings": true})");
}

/// Writes the tiny checkpoint (plus a small tokenizer-side file to check copying) into `dir`.
inline void write_tiny_checkpoint(const std::filesystem::path& dir, uint64_t seed = 7, float std = 0.1f) {
  SynthOptions o;
  o.seed = seed;
  o.weight_std = std;
  synth_checkpoint(tiny_config(), dir, o);
  std::FILE* f = std::fopen((dir / "chat_template.jinja").c_str(), "w");
  std::fputs("{{ bos_token }}", f);
  std::fclose(f);
}

}  // namespace quench::test
