// tests/model/tiny_checkpoint.h: writes a small random Gemma 4 checkpoint at test time
// (config.json + model.safetensors) with every architectural feature switched on: sliding and
// global layers, GQA and MQA, k_eq_v, proportional RoPE, layer_scalar != 1, norm weights != 1.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/dtype.h"

namespace quench::test {

struct TinyOptions {
  DType dtype = DType::kF32;       ///< F32 or BF16 for every float tensor
  std::string layout = "unified";  ///< "unified" (model.language_model.*) or "text" (model.*)
  bool add_vision = true;          ///< add model.embed_vision.* / model.vision_embedder.* tensors
  uint32_t seed = 1234;
  /// Edits the config JSON (the text part) before writing.
  std::function<void(nlohmann::json& text_config)> edit_config;
  /// true: tensor shapes follow the edited config (hidden_size, intermediate_size, heads, head
  /// dims, vocab_size, layer_types); false: they keep the default geometry (to test mismatches).
  bool shapes_follow_config = false;
  /// Called with each tensor name; return false to drop the tensor.
  std::function<bool(const std::string& name)> keep;
  /// Extra random tensors (name, shape) added as they are.
  std::vector<std::pair<std::string, std::vector<int64_t>>> extra;
};

/// Geometry written by write_tiny_checkpoint: hidden 32, intermediate 64, 4 layers
/// (sliding, sliding, sliding, full), 4 query heads, sliding: 2 KV heads x 16, global: 1 KV head
/// x 32 (k_eq_v), vocab 97, sliding_window 5, softcap 30.
inline constexpr int kTinyVocab = 97;
inline constexpr int kTinyHidden = 32;
inline constexpr int kTinyLayers = 4;
inline constexpr int kTinyWindow = 5;

/// A fresh empty directory under the system temp dir, unique per call, removed on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& tag);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  operator const std::filesystem::path&() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// Writes the checkpoint into `dir` (created if needed) and returns dir.
std::filesystem::path write_tiny_checkpoint(const std::filesystem::path& dir, const TinyOptions& opt = {});

}  // namespace quench::test
