// quench/ablate/capture.h: residual-stream capture through quench's own CPU forward pass
// (../shared/reference/directional-ablation.md §1, §8 step 2): for every prompt, the residual
// stream h_l after each decoder block l at the last prompt position (the position whose logits
// give the first reply token), plus the embedding output h_{-1} and the final logits there.
#pragma once

#include <cstdint>
#include <vector>

namespace quench {
class CpuForward;
struct ModelWeights;
}  // namespace quench

namespace quench::ablate {

/// Captures of n prompts at their last position, fp32.
struct Captures {
  int num_prompts = 0, num_layers = 0, hidden = 0, vocab = 0;
  std::vector<float> residual;  ///< [n, L, d]: h_l after block l (after layer_scalar)
  std::vector<float> embed;     ///< [n, d]: h_{-1} = embed_tokens[token] · embed_scale
  std::vector<float> logits;    ///< [n, vocab] final soft-capped logits (empty unless asked)

  const float* h(int prompt, int layer) const {
    return residual.data() + (static_cast<std::size_t>(prompt) * num_layers + layer) * hidden;
  }
  const float* h_prev(int prompt, int layer) const {
    return layer == 0 ? embed.data() + static_cast<std::size_t>(prompt) * hidden : h(prompt, layer - 1);
  }
};

/// Runs every prompt (token ids, each starting with <bos>) through `fwd` one at a time and keeps
/// the last position's residual stream after each block, h_{-1} (from `weights.embed_tokens`
/// scaled by fl32(sqrt(hidden)), the transformers fp32 `embed_scale`) and, with `keep_logits`,
/// the logits. Throws InvalidArgument for an empty prompt; forward errors propagate.
Captures capture_last_position(CpuForward& fwd, const ModelWeights& weights,
                               const std::vector<std::vector<int32_t>>& prompts, bool keep_logits);

/// Greedy decoding of one prompt for at most `max_new_tokens`, stopping after any id in
/// `stop_ids` (not included in the result). Returns the generated ids.
std::vector<int32_t> greedy_generate(CpuForward& fwd, const std::vector<int32_t>& prompt, int max_new_tokens,
                                     const std::vector<int32_t>& stop_ids);

}  // namespace quench::ablate
