// quench/backend/cpu/rope.cpp: RoPE tables and rotation (rope.h).
#include "backend/cpu/rope.h"

#include <cmath>
#include <cstdint>

#include "backend/cpu/threads.h"
#include "core/error.h"

namespace quench {

std::vector<float> rope_inv_freq(const RopeParams& rope, int head_dim) {
  const int half = head_dim / 2;
  std::vector<float> inv(half, 0.0f);
  int live = half;
  if (rope.type == RopeType::kDefault) {
    if (rope.partial_rotary_factor != 1.0)
      throw UnsupportedError("rope_parameters: rope_type 'default' with partial_rotary_factor " +
                             std::to_string(rope.partial_rotary_factor) + " (expected 1.0)");
  } else {
    // transformers _compute_proportional_rope_parameters: int(factor * head_dim // 2).
    live = static_cast<int>(std::floor(rope.partial_rotary_factor * head_dim / 2.0));
    if (live > half) live = half;
  }
  const float base = static_cast<float>(rope.theta);
  for (int j = 0; j < live; ++j) {
    // 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all fp32.
    const float exponent = static_cast<float>(2 * j) / static_cast<float>(head_dim);
    inv[j] = 1.0f / std::pow(base, exponent);
  }
  return inv;
}

void apply_rope(float* x, int n_tokens, int n_heads, int head_dim, const int* positions,
                const std::vector<float>& inv_freq) {
  const int half = head_dim / 2;
  const int threads = cpu_threads_for(int64_t(n_tokens) * n_heads * head_dim * 8);
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    std::vector<float> cs(half), sn(half);
#pragma omp for schedule(static)
    for (int t = 0; t < n_tokens; ++t) {
      const float pos = static_cast<float>(positions[t]);
      for (int j = 0; j < half; ++j) {
        const float angle = pos * inv_freq[j];
        cs[j] = std::cos(angle);
        sn[j] = std::sin(angle);
      }
      for (int h = 0; h < n_heads; ++h) {
        float* v = x + (int64_t(t) * n_heads + h) * head_dim;
        for (int j = 0; j < half; ++j) {
          const float a = v[j], b = v[j + half];
          v[j] = a * cs[j] - b * sn[j];
          v[j + half] = b * cs[j] + a * sn[j];
        }
      }
    }
  }
}

}  // namespace quench
