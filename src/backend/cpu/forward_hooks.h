// quench/backend/cpu/forward_hooks.h: callbacks into the CPU forward pass, used by quantization
// calibration (amax of every Linear's input), directional ablation (residual stream per layer)
// and tests (K/V as cached).
#pragma once

#include <functional>
#include <string>

namespace quench {

/// Optional observers of a forward pass. Pointers are valid only during the call; all arrays are
/// fp32 row-major over the tokens of the call, in token order. Unset members are skipped.
struct ForwardHooks {
  /// Residual stream after decoder layer `layer` (after layer_scalar): [n_tokens, hidden].
  std::function<void(int layer, const float* residual, int n_tokens, int hidden)> after_block;
  /// The activation entering the Linear `linear_name` (checkpoint module name, e.g.
  /// "model.language_model.layers.3.mlp.down_proj"): [n_tokens, in_features]. q/k/v_proj get the
  /// same normed input, one call each (no call for v_proj on k_eq_v layers).
  std::function<void(const std::string& linear_name, const float* input, int n_tokens, int in_features)>
      linear_input;
  /// K and V of the new tokens as they are written to the cache (k: after k_norm and RoPE;
  /// v: after the weight-less v_norm): [n_tokens, num_kv_heads·head_dim] each.
  std::function<void(int layer, const float* k, const float* v, int n_tokens)> kv;
};

}  // namespace quench
