// quench/backend/cpu/runner.h: the CPU ModelRunner (backend/backend.h): owns the paged KV-cache
// pools (full-attention group, sliding-window group) and runs batched steps through CpuDecoder.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/decoder.h"
#include "backend/cpu/paged_kv_cache.h"

namespace quench {

class Model;

/// CPU backend. KV pools are allocated at construction: block bytes per group = Σ over the
/// group's layers of 2 · block_size · kv_dim · sizeof(dtype). FP8 pools use the checkpoint's
/// per-layer k_scale / v_scale (1.0 when absent). Not thread-safe: one engine thread calls it.
class CpuModelRunner : public ModelRunner {
 public:
  /// Throws InvalidArgument for block_size < 1 or negative block counts.
  CpuModelRunner(std::shared_ptr<const Model> model, const KvCacheConfig& kv_config);

  const ModelConfig& config() const override;
  KvCacheSpec kv_cache_spec() const override;
  std::string name() const override { return "cpu"; }
  /// See ModelRunner::execute. Also throws InvalidArgument when logits.size() is not
  /// n_want · vocab_size, a slice is empty, or a block table is too short for its positions.
  void execute(std::span<const SeqStep> batch, std::span<float> logits) override;

  const Model& model() const { return *model_; }

 private:
  /// Throws InvalidArgument (before anything is written) when a block the step writes or reads
  /// is missing, -1 or outside its pool.
  void validate_tables(const SeqStep& s, int index) const;

  std::shared_ptr<const Model> model_;
  KvCacheConfig kv_config_;
  std::vector<int> group_of_, index_in_group_;
  std::unique_ptr<PagedKvPool> full_pool_, sliding_pool_;
  CpuDecoder decoder_;
};

}  // namespace quench
