// quench/backend/cpu/activation.cpp: GELU-tanh and softcap (activation.h).
#include "backend/cpu/activation.h"

#include <cmath>

#include "backend/cpu/threads.h"

namespace quench {

float gelu_tanh(float u) {
  constexpr float kBeta = 0.7978845608028654f;  // sqrt(2 / pi)
  constexpr float kKappa = 0.044715f;
  const float inner = kBeta * (u + kKappa * u * u * u);
  return 0.5f * u * (1.0f + std::tanh(inner));
}

void gelu_tanh_mul(const float* gate, const float* up, int64_t n, float* out) {
  const int threads = cpu_threads_for(n * 16);
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
  for (int64_t i = 0; i < n; ++i) out[i] = gelu_tanh(gate[i]) * up[i];
}

void softcap(float* x, int64_t n, float cap) {
  if (cap <= 0.0f) return;
  const int threads = cpu_threads_for(n * 16);
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
  for (int64_t i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] / cap);
}

}  // namespace quench
