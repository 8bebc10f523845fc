// quench/backend/cpu/rmsnorm.cpp: Gemma 4 RMSNorm (rmsnorm.h).
#include "backend/cpu/rmsnorm.h"

#include <cmath>
#include <cstdint>

#include "backend/cpu/threads.h"

namespace quench {

void rms_norm(const float* x, const float* weight, int n_rows, int dim, float eps, float* y) {
  const int threads = cpu_threads_for(int64_t(n_rows) * dim * 8);
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
  for (int r = 0; r < n_rows; ++r) {
    const float* xr = x + int64_t(r) * dim;
    float* yr = y + int64_t(r) * dim;
    double ss = 0.0;  // sum of squares; double so long rows keep fp32 mean accuracy
    for (int i = 0; i < dim; ++i) ss += double(xr[i]) * xr[i];
    const float ms = static_cast<float>(ss / dim) + eps;
    const float inv = std::pow(ms, -0.5f);  // transformers: torch.pow(mean + eps, -0.5)
    if (weight) {
      for (int i = 0; i < dim; ++i) yr[i] = (xr[i] * inv) * weight[i];
    } else {
      for (int i = 0; i < dim; ++i) yr[i] = xr[i] * inv;
    }
  }
}

}  // namespace quench
