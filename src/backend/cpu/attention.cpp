// quench/backend/cpu/attention.cpp: causal / sliding-window GQA attention (attention.h).
#include "backend/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "backend/cpu/threads.h"
#include "core/error.h"

namespace quench {

void attention(const float* q, const float* k, const float* v, const AttentionShape& s, float* out) {
  if (s.num_kv_heads <= 0 || s.num_heads % s.num_kv_heads != 0)
    throw InvalidArgument("attention: num_heads " + std::to_string(s.num_heads) +
                          " is not a multiple of num_kv_heads " + std::to_string(s.num_kv_heads));
  const int D = s.head_dim, Hq = s.num_heads, Hkv = s.num_kv_heads;
  const int group = Hq / Hkv;
  const int64_t total = int64_t(s.n_queries) * Hq;
  const int threads = cpu_threads_for(total * int64_t(s.n_keys) * D * 2);
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    std::vector<float> scores(std::max(1, s.n_keys));
#pragma omp for schedule(dynamic, 4)
    for (int64_t qi = 0; qi < total; ++qi) {
      const int i = static_cast<int>(qi / Hq), h = static_cast<int>(qi % Hq);
      const int kvh = h / group;
      const int p = s.query_pos0 + i;
      // Visible key positions: [lo, p] (window: p - window < kp).
      int lo = s.window > 0 ? p - s.window + 1 : 0;
      const int j0 = std::max(0, lo - s.key_pos0);
      const int j1 = std::min(s.n_keys, p - s.key_pos0 + 1);  // exclusive
      float* o = out + qi * D;
      std::fill(o, o + D, 0.0f);
      if (j1 <= j0) continue;
      const float* qv = q + qi * D;
      float mx = -INFINITY;
      for (int j = j0; j < j1; ++j) {
        const float* kv = k + (int64_t(j) * Hkv + kvh) * D;
        float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
        for (int d = 0; d < D; ++d) dot += qv[d] * kv[d];
        scores[j] = dot * s.scale;
        mx = std::max(mx, scores[j]);
      }
      float sum = 0.0f;
      for (int j = j0; j < j1; ++j) {
        scores[j] = std::exp(scores[j] - mx);
        sum += scores[j];
      }
      const float inv = 1.0f / sum;
      for (int j = j0; j < j1; ++j) {
        const float pj = scores[j] * inv;
        const float* vv = v + (int64_t(j) * Hkv + kvh) * D;
#pragma omp simd
        for (int d = 0; d < D; ++d) o[d] += pj * vv[d];
      }
    }
  }
}

}  // namespace quench
