// quench/backend/cpu/rope.h: rotary position embeddings of Gemma 4 (gemma4-architecture.md
// §2.5): NeoX "rotate_half" pairing (j, j + D/2), angles p · inv_freq[j] in fp32.
#pragma once

#include <vector>

#include "io/model_config.h"

namespace quench {

/// The D/2 inverse frequencies of one layer, computed in fp32 as transformers does:
///  - kDefault: inv_freq[j] = 1 / theta^(2j / D), j < D/2 (every dim rotates);
///    partial_rotary_factor must be 1 (UnsupportedError otherwise).
///  - kProportional (`_compute_proportional_rope_parameters`): rope_angles =
///    floor(partial_rotary_factor · D / 2); inv_freq[j] = 1 / theta^(2j / D) for j < rope_angles
///    (denominator is the FULL head_dim), 0 for rope_angles <= j < D/2 (those pairs pass through).
std::vector<float> rope_inv_freq(const RopeParams& rope, int head_dim);

/// Rotates x [n_tokens, n_heads, head_dim] in place; token t is at position positions[t].
/// For j < D/2: x'[j] = x[j]·cos − x[j+D/2]·sin, x'[j+D/2] = x[j+D/2]·cos + x[j]·sin with
/// cos/sin of the fp32 angle fl32(float(pos) · inv_freq[j]).
void apply_rope(float* x, int n_tokens, int n_heads, int head_dim, const int* positions,
                const std::vector<float>& inv_freq);

}  // namespace quench
