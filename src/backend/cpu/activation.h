// quench/backend/cpu/activation.h: elementwise ops of Gemma 4 (GeGLU, final logit softcap).
#pragma once

#include <cstdint>

namespace quench {

/// PyTorch gelu(approximate="tanh"): 0.5·u·(1 + tanh(√(2/π)·(u + 0.044715·u³))), fp32.
float gelu_tanh(float u);

/// GeGLU (§2.7): out[i] = gelu_tanh(gate[i]) · up[i] for i < n. out may alias gate or up.
void gelu_tanh_mul(const float* gate, const float* up, int64_t n, float* out);

/// Final logit soft-capping (§2.8): x = cap · tanh(x / cap) in place; cap <= 0 leaves x as is.
void softcap(float* x, int64_t n, float cap);

}  // namespace quench
