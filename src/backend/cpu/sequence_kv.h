// quench/backend/cpu/sequence_kv.h: where one sequence's keys and values live, as seen by the
// shared CPU decoder (contiguous per-sequence cache, or paged blocks through block tables).
#pragma once

namespace quench {

/// K/V storage of one sequence. Rows are [num_kv_heads(layer) · head_dim(layer)] fp32 values as
/// the decoder produced them (K after k_norm + RoPE, V after v_norm); an implementation may store
/// them in a narrower dtype and returns the decoded values.
class SequenceKv {
 public:
  virtual ~SequenceKv() = default;
  /// Stores k, v ([n, kv_dim] each) for positions pos0 .. pos0+n-1 of decoder layer `layer`.
  virtual void write(int layer, int pos0, int n, const float* k, const float* v) = 0;
  /// Reads positions pos0 .. pos0+n-1 of `layer` into k, v ([n, kv_dim] fp32 each).
  virtual void read(int layer, int pos0, int n, float* k, float* v) const = 0;
};

}  // namespace quench
