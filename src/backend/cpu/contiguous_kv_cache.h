// quench/backend/cpu/contiguous_kv_cache.h: a single sequence's fp32 KV cache, one growing array
// per layer (used by CpuForward: tests, quantization calibration, ablation).
#pragma once

#include <vector>

#include "backend/cpu/sequence_kv.h"

namespace quench {

struct ModelConfig;

/// fp32 K/V of positions 0 .. length()-1 for every layer, [length, kv_dim(layer)] each.
class ContiguousKvCache : public SequenceKv {
 public:
  /// kv_dim per layer from `config.layers` (num_kv_heads · head_dim); reserves `reserve_tokens`.
  explicit ContiguousKvCache(const ModelConfig& config, int reserve_tokens = 0);

  /// Number of cached positions (of layer 0; all layers agree after a forward call).
  int length() const;
  /// Drops positions >= n (n <= length()). Throws InvalidArgument otherwise.
  void truncate(int n);
  void clear() { truncate(0); }
  int num_layers() const { return static_cast<int>(kv_dim_.size()); }
  int kv_dim(int layer) const { return kv_dim_[layer]; }
  /// [length, kv_dim(layer)] fp32.
  const float* k_data(int layer) const { return k_[layer].data(); }
  const float* v_data(int layer) const { return v_[layer].data(); }

  /// pos0 must be <= the layer's current length; positions from pos0 on are replaced.
  /// Throws InvalidArgument otherwise.
  void write(int layer, int pos0, int n, const float* k, const float* v) override;
  /// Throws InvalidArgument when pos0 + n exceeds the layer's length.
  void read(int layer, int pos0, int n, float* k, float* v) const override;

 private:
  std::vector<int> kv_dim_;
  std::vector<std::vector<float>> k_, v_;
};

}  // namespace quench
