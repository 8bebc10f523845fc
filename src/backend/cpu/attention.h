// quench/backend/cpu/attention.h: causal (optionally sliding-window) multi-head attention over
// contiguous fp32 K/V, GQA/MQA, explicit softmax scale (1.0 for Gemma 4, §2.4), fp32 softmax.
#pragma once

namespace quench {

/// Shapes and positions of one attention call.
struct AttentionShape {
  int n_queries = 0;   ///< rows of q / out
  int n_keys = 0;      ///< rows of k / v
  int num_heads = 0;   ///< query heads Hq
  int num_kv_heads = 0;  ///< Hkv; query head h reads kv head h / (Hq / Hkv) (repeat_kv order)
  int head_dim = 0;
  int query_pos0 = 0;  ///< position of query row 0 (rows are consecutive positions)
  int key_pos0 = 0;    ///< position of key row 0
  int window = 0;      ///< 0: full causal; else key kp visible to query p iff p - window < kp <= p
  float scale = 1.0f;  ///< multiplies q·k before the softmax
};

/// out[i, h, :] = Σ_j softmax_j(scale · q[i,h,:]·k[j,kvh,:] over visible j) · v[j, kvh, :].
/// q, out: [n_queries, Hq, D]; k, v: [n_keys, Hkv, D]; all fp32. A query with no visible key gets
/// zeros. Throws InvalidArgument when Hq is not a multiple of Hkv.
void attention(const float* q, const float* k, const float* v, const AttentionShape& s, float* out);

}  // namespace quench
