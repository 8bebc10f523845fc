// quench/model/model.h: a loaded Gemma 4 checkpoint (mmap + parsed configs + bound weights).
#pragma once

#include <filesystem>
#include <memory>

#include "io/model_config.h"
#include "io/quant_config.h"
#include "io/safetensors.h"
#include "model/weights.h"

namespace quench {

/// Owns the memory-mapped Checkpoint, its ModelConfig and QuantConfig and the ModelWeights views
/// into it. Immutable after load; shareable across threads for reading.
class Model {
 public:
  /// Loads `dir` (config.json, model.safetensors or sharded index, optional hf_quant_config.json).
  /// Throws IoError / FormatError / UnsupportedError from the parsers and ModelWeights::bind.
  static std::unique_ptr<Model> load(const std::filesystem::path& dir);

  const std::filesystem::path& dir() const { return checkpoint_.dir(); }
  const Checkpoint& checkpoint() const { return checkpoint_; }
  const ModelConfig& config() const { return config_; }
  const QuantConfig& quant_config() const { return quant_; }
  const ModelWeights& weights() const { return weights_; }

 private:
  Model(Checkpoint ckpt, ModelConfig config, QuantConfig quant);
  Checkpoint checkpoint_;
  ModelConfig config_;
  QuantConfig quant_;
  ModelWeights weights_;
};

}  // namespace quench
