// quench/cli/bench_kernels_sampling.cpp: `quench bench-kernels --filter sampling`: the GPU sampler
// (backend/cuda/gpu_sampler.h) over R = 1, 16, 64, 256 rows of V = 262144: greedy, plain
// temperature sampling, top_p 0.95, and top_k 50 + top_p 0.95, each one launch of the draw kernel
// (no adjustments; the upload of the row parameters is done once outside the timing).
//
// Logits look like a confident language model's: N(0, 2.5) with ten ids lifted by 18-26, so
// the top_p nucleus is a handful of ids as in real decoding ("peaked"); the "flat" rows (N(0, 1),
// no lift: a nucleus of ~200k ids) time the general path, whose cuts are refined by extra passes. Bound: one read of the rows (R * V * 4 bytes)
// over the measured copy bandwidth; the kernel reads a row 2 to 5 times (max, histogram, boundary
// gather(s), draw), from L2 when the rows in flight fit there. Rows rotate over >= 4x the L2.
#ifdef QUENCH_HAVE_CUDA
#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include <fmt/format.h>

#include "backend/cuda/cuda_utils.h"
#include "backend/cuda/gpu_sampler.h"
#include "cli/kernel_bench.h"

namespace quench::cli {
namespace {

using cuda::DeviceBuffer;

/// `rows` rows of logits: peaked (LM-like) or flat.
void fill_logits(DeviceBuffer& b, int V, size_t rows, uint32_t seed, bool peaked) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, peaked ? 2.5f : 1.0f);
  std::uniform_int_distribution<int> id(0, V - 1);
  std::uniform_real_distribution<float> lift(18.0f, 26.0f);
  // 32 distinct rows, repeated (each copy still has its own addresses, so L2 rotation holds).
  const size_t distinct = std::min<size_t>(rows, 32);
  std::vector<float> h(distinct * static_cast<size_t>(V));
  for (size_t r = 0; r < distinct; ++r) {
    float* row = h.data() + r * static_cast<size_t>(V);
    for (int i = 0; i < V; ++i) row[i] = nd(rng);
    if (peaked)
      for (int j = 0; j < 10; ++j) row[id(rng)] += lift(rng);
  }
  for (size_t r = 0; r < rows; r += distinct) {
    const size_t c = std::min(distinct, rows - r);
    QUENCH_CUDA_CHECK(cudaMemcpy(b.get<float>() + r * static_cast<size_t>(V), h.data(), c * V * 4, cudaMemcpyHostToDevice));
  }
}

std::vector<KernelCase> sampling_cases(const KernelBenchEnv& env) {
  std::vector<KernelCase> out;
  const int V = 262144;
  struct Mode {
    const char* name;
    float temperature, top_p;
    int top_k;
    bool peaked;
  };
  const Mode modes[] = {{"greedy", 0.0f, 1.0f, 0, true},
                        {"T=1", 1.0f, 1.0f, 0, true},
                        {"T=1 top_p=0.95", 1.0f, 0.95f, 0, true},
                        {"T=1 top_k=50 top_p=0.95", 1.0f, 0.95f, 50, true},
                        {"flat T=1 top_p=0.95", 1.0f, 0.95f, 0, false}};
  for (const int R : {1, 16, 64, 256}) {
    const size_t row = static_cast<size_t>(R) * V;
    const size_t n = std::max<size_t>(1, (4 * env.l2_bytes + row * 4 - 1) / (row * 4));
    DeviceBuffer peaked(row * 4 * n), flat(row * 4 * n);
    fill_logits(peaked, V, static_cast<size_t>(R) * n, 11u + static_cast<uint32_t>(R), true);
    fill_logits(flat, V, static_cast<size_t>(R) * n, 13u + static_cast<uint32_t>(R), false);
    cuda::GpuSampler sampler(V);
    for (const Mode& m : modes) {
      DeviceBuffer& logits = m.peaked ? peaked : flat;
      std::vector<DeviceSamplingRow> rows(static_cast<size_t>(R));
      for (int r = 0; r < R; ++r) {
        DeviceSamplingRow& d = rows[static_cast<size_t>(r)];
        d.logits_row = r;
        d.temperature = m.temperature;
        d.top_p = m.top_p;
        d.top_k = m.top_k;
        d.seed = 1000u + static_cast<uint64_t>(r);
      }
      sampler.prepare(rows, R, env.stream, /*logprobs=*/false);  // tokens only, as the engine without logprobs
      size_t k = 0;
      const double us = median_kernel_us(
          [&] { sampler.launch(logits.get<float>() + (k++ % n) * row, env.stream); }, env);
      std::vector<int32_t> tokens(static_cast<size_t>(R));
      sampler.finish(env.stream, tokens, {});  // also checks every row produced a token
      out.push_back({"sampling", fmt::format("{} V={} R={}", m.name, V, R), row * 4.0, 0, us});
    }
  }
  return out;
}

const bool registered = register_kernel_bench("sampling", sampling_cases);

}  // namespace
}  // namespace quench::cli
#endif  // QUENCH_HAVE_CUDA
