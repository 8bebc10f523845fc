// quench/backend/cpu/forward.h: the single-sequence CPU forward pass (tests, quantization
// calibration, directional ablation). Same op code as CpuModelRunner (backend/cpu/decoder.h).
#pragma once

#include <cstdint>
#include <span>

#include "backend/cpu/contiguous_kv_cache.h"
#include "backend/cpu/decoder.h"
#include "backend/cpu/forward_hooks.h"

namespace quench {

class Model;

/// Which positions get logits from CpuForward::forward.
enum class LogitsFor { kLast, kAll };

/// Runs one sequence incrementally over a ContiguousKvCache:
///   ContiguousKvCache cache = fwd.new_cache();
///   fwd.forward(prompt, 0, cache, logits);                  // prefill, logits of the last token
///   fwd.forward({&next, 1}, cache.length(), cache, logits); // one decode step
/// Not thread-safe (reuses activation buffers); create one per thread. Internally OpenMP-parallel.
class CpuForward {
 public:
  /// `model` must outlive this object.
  explicit CpuForward(const Model& model);
  /// `config` and `weights` must outlive this object.
  CpuForward(const ModelConfig& config, const ModelWeights& weights);

  const ModelConfig& config() const { return decoder_.config(); }
  ContiguousKvCache new_cache(int reserve_tokens = 0) const;

  /// Processes `tokens` at positions start_pos .. start_pos+n-1, reading earlier K/V from
  /// `cache` and storing the new ones (cache positions >= start_pos are replaced).
  /// logits_out_or_null: fp32 [1, vocab] (kLast) or [n, vocab] (kAll) final soft-capped logits.
  /// Throws InvalidArgument when tokens is empty, start_pos > cache.length() or < 0, or a token
  /// id is out of range.
  void forward(std::span<const int32_t> tokens, int start_pos, ContiguousKvCache& cache,
               float* logits_out_or_null, const ForwardHooks* hooks = nullptr,
               LogitsFor logits_for = LogitsFor::kLast);

 private:
  CpuDecoder decoder_;
};

}  // namespace quench
