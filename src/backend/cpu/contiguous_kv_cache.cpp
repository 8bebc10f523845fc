// quench/backend/cpu/contiguous_kv_cache.cpp: single-sequence fp32 KV cache.
#include "backend/cpu/contiguous_kv_cache.h"

#include <algorithm>
#include <string>

#include "core/error.h"
#include "io/model_config.h"

namespace quench {

ContiguousKvCache::ContiguousKvCache(const ModelConfig& config, int reserve_tokens) {
  for (const LayerConfig& lc : config.layers) kv_dim_.push_back(lc.num_kv_heads * lc.head_dim);
  k_.resize(kv_dim_.size());
  v_.resize(kv_dim_.size());
  for (size_t l = 0; l < kv_dim_.size(); ++l) {
    k_[l].reserve(size_t(std::max(0, reserve_tokens)) * kv_dim_[l]);
    v_[l].reserve(size_t(std::max(0, reserve_tokens)) * kv_dim_[l]);
  }
}

int ContiguousKvCache::length() const {
  return kv_dim_.empty() ? 0 : static_cast<int>(k_[0].size() / kv_dim_[0]);
}

void ContiguousKvCache::truncate(int n) {
  if (n < 0 || n > length())
    throw InvalidArgument("ContiguousKvCache::truncate: length " + std::to_string(n) + " outside [0, " +
                          std::to_string(length()) + "]");
  for (size_t l = 0; l < kv_dim_.size(); ++l) {
    k_[l].resize(size_t(n) * kv_dim_[l]);
    v_[l].resize(size_t(n) * kv_dim_[l]);
  }
}

void ContiguousKvCache::write(int layer, int pos0, int n, const float* k, const float* v) {
  const size_t d = kv_dim_.at(layer);
  const int len = static_cast<int>(k_[layer].size() / d);
  if (pos0 < 0 || pos0 > len)
    throw InvalidArgument("ContiguousKvCache: write at position " + std::to_string(pos0) + " of layer " +
                          std::to_string(layer) + " leaves a gap (cached length " + std::to_string(len) + ")");
  k_[layer].resize(size_t(pos0) * d);
  v_[layer].resize(size_t(pos0) * d);
  k_[layer].insert(k_[layer].end(), k, k + size_t(n) * d);
  v_[layer].insert(v_[layer].end(), v, v + size_t(n) * d);
}

void ContiguousKvCache::read(int layer, int pos0, int n, float* k, float* v) const {
  const size_t d = kv_dim_.at(layer);
  const int len = static_cast<int>(k_[layer].size() / d);
  if (pos0 < 0 || pos0 + n > len)
    throw InvalidArgument("ContiguousKvCache: read of positions [" + std::to_string(pos0) + ", " +
                          std::to_string(pos0 + n) + ") of layer " + std::to_string(layer) +
                          " beyond cached length " + std::to_string(len));
  std::copy(k_[layer].begin() + pos0 * d, k_[layer].begin() + (pos0 + n) * d, k);
  std::copy(v_[layer].begin() + pos0 * d, v_[layer].begin() + (pos0 + n) * d, v);
}

}  // namespace quench
