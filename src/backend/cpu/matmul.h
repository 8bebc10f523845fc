// quench/backend/cpu/matmul.h: y = x · Wᵀ for a Linear in any stored weight format, fp32
// accumulate, OpenMP over output rows. Weights are decoded row by row to fp32, bit-exactly as
// io/dequant.h specifies (nvfp4-modelopt-format.md §4), never expanded whole in memory.
#pragma once

#include <cstdint>

#include "model/weights.h"

namespace quench {

/// Decodes row `row` of `w` into out[0 .. in_features) (fp32, exact for BF16/F16/F32; FP8:
/// fl32(e4m3 · weight_scale); NVFP4: fl32(e2m1 · fl32(e4m3_block_scale · weight_scale_2))).
void decode_weight_row(const LinearWeight& w, int64_t row, float* out);

/// y[t, o] = Σ_i x[t, i] · W[o, i] for t < n_tokens. x: [n_tokens, in_features] fp32,
/// y: [n_tokens, out_features] fp32 (must not alias x). No activation quantization: the
/// `input_scale` of FP8/NVFP4 weights is not applied (activations stay fp32).
void linear(const LinearWeight& w, const float* x, int n_tokens, float* y);

}  // namespace quench
