// quench/cli/bench_kernels_misc.cpp: `quench bench-kernels --filter misc`: the step's row kernels
// (residual post-norm with the next norm fused, RMSNorm, embedding with the first norm fused) at
// T = 1, 16, 64, 2048 tokens of the 12B's hidden size 3840, and the logits kernels (argmax with
// the softcap fused, the softcap pass) over R = 1, 16, 64 rows of V = 262144. The "no PDL" cases
// time the same back-to-back launches without Programmatic Dependent Launch (on by default).
//
// Bounds: bytes each launch must move (fp32 rows read/written, bf16 rows written, weight vectors
// read once) over the measured copy bandwidth. Every case rotates over enough copies of its
// inputs (>= 4x the L2) that each launch reads DRAM; inside a real decode step the residual and
// GEMV outputs are often still in L2, so these times are upper bounds for the step.
#ifdef QUENCH_HAVE_CUDA
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "backend/cuda/cuda_utils.h"
#include "backend/cuda/kernels.h"
#include "cli/kernel_bench.h"

namespace quench::cli {
namespace {

using cuda::bf16;
using cuda::DeviceBuffer;

/// Fills a device buffer with random words (xorshift64*): finite floats N-ish in [-2, 2) for
/// fp32 buffers (`as_f32`), else random bf16 pairs of moderate magnitude.
void fill_random(DeviceBuffer& b, uint64_t seed, bool as_f32) {
  std::vector<uint32_t> h(b.bytes() / 4);
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& w : h) {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    const uint64_t r = s * 0x2545F4914F6CDD1Dull;
    if (as_f32) {
      const float f = static_cast<float>(static_cast<int32_t>(r >> 32)) * (2.0f / 2147483648.0f);
      std::memcpy(&w, &f, 4);
    } else {
      // two bf16 with exponents around 2^-6 .. 2^1: sign, exponent 0x79..0x80, random mantissa
      auto half = [](uint32_t x) { return (x & 0x807fu) | ((0x79u + (x >> 8) % 8) << 7); };
      w = half(static_cast<uint32_t>(r >> 32) & 0xffffu) | (half(static_cast<uint32_t>(r >> 48)) << 16);
    }
  }
  QUENCH_CUDA_CHECK(cudaMemcpy(b.get(), h.data(), h.size() * 4, cudaMemcpyHostToDevice));
}

/// Number of copies of a `bytes` working set that make >= 4x the L2 (at least 1).
size_t copies_for(size_t bytes, const KernelBenchEnv& env) {
  return std::max<size_t>(1, (4 * env.l2_bytes + bytes - 1) / std::max<size_t>(bytes, 1));
}

std::vector<KernelCase> misc_cases(const KernelBenchEnv& env) {
  std::vector<KernelCase> out;
  const int H = 3840;
  const float eps = 1e-6f;
  DeviceBuffer w_a(H * 4), w_b(H * 4);
  fill_random(w_a, 1, true);
  fill_random(w_b, 2, true);
  const int V_embed = 32768;  // 252 MB embedding table (> 4x L2); token ids random over it
  DeviceBuffer table(static_cast<size_t>(V_embed) * H * 2);
  fill_random(table, 6, false);

  for (const int T : {1, 16, 64, 2048}) {
    const size_t row = static_cast<size_t>(T) * H;
    // residual_post_norm: x fp32 read + write, y fp32 read, next bf16 write.
    {
      const size_t set = row * (4 + 4 + 2);
      const size_t n = copies_for(set, env);
      DeviceBuffer x(row * 4 * n), y(row * 4 * n), next(row * 2 * n);
      fill_random(x, 3, true);
      fill_random(y, 4, true);
      size_t k = 0;
      const double us = median_kernel_us(
          [&] {
            const size_t c = k++ % n;
            cuda::residual_post_norm(x.get<float>() + c * row, y.get<float>() + c * row, w_a.get<float>(), 0.9999f, T,
                                     H, eps, w_b.get<float>(), next.get<bf16>() + c * row, env.stream);
          },
          env);
      out.push_back({"misc", fmt::format("residual_post_norm H={} T={}", H, T), row * (4.0 + 4 + 4 + 2) + 2.0 * H * 4,
                     0, us});
      if (T <= 16) {  // the same chain of launches with and without Programmatic Dependent Launch
        const bool pdl_before = cuda::programmatic_dependent_launch();
        k = 0;
        const double us_pdl = median_kernel_us(
            [&] {
              const size_t c = k++ % n;
              cuda::set_programmatic_dependent_launch(!pdl_before);
              cuda::residual_post_norm(x.get<float>() + c * row, y.get<float>() + c * row, w_a.get<float>(), 0.9999f,
                                       T, H, eps, w_b.get<float>(), next.get<bf16>() + c * row, env.stream);
              cuda::set_programmatic_dependent_launch(pdl_before);
            },
            env);
        out.push_back({"misc", fmt::format("residual_post_norm H={} T={} {}", H, T, pdl_before ? "no PDL" : "PDL"),
                       row * (4.0 + 4 + 4 + 2) + 2.0 * H * 4, 0, us_pdl});
      }
    }
    // rmsnorm_to_bf16: x fp32 read, out bf16 write.
    {
      const size_t n = copies_for(row * 6, env);
      DeviceBuffer x(row * 4 * n), o(row * 2 * n);
      fill_random(x, 5, true);
      size_t k = 0;
      const double us = median_kernel_us(
          [&] {
            const size_t c = k++ % n;
            cuda::rmsnorm_to_bf16(x.get<float>() + c * row, H, w_a.get<float>(), T, H, eps, o.get<bf16>() + c * row,
                                  env.stream);
          },
          env);
      out.push_back({"misc", fmt::format("rmsnorm H={} T={}", H, T), row * (4.0 + 2) + H * 4.0, 0, us});
    }
    // embed_rmsnorm: a bf16 table row read per token, x fp32 and next bf16 written.
    {
      const size_t n = copies_for(row * 6, env);
      std::vector<int32_t> ids_h(static_cast<size_t>(T) * n);
      uint32_t s = 12345;
      for (auto& i : ids_h) i = static_cast<int32_t>(((s = s * 1664525u + 1013904223u) >> 8) % V_embed);
      DeviceBuffer ids(ids_h.size() * 4), x(row * 4 * n), nx(row * 2 * n);
      QUENCH_CUDA_CHECK(cudaMemcpy(ids.get(), ids_h.data(), ids_h.size() * 4, cudaMemcpyHostToDevice));
      size_t k = 0;
      const double us = median_kernel_us(
          [&] {
            const size_t c = k++ % n;
            cuda::embed_rmsnorm(ids.get<int32_t>() + c * T, T, table.get<bf16>(), H, 62.0f, x.get<float>() + c * row,
                                w_a.get<float>(), eps, nx.get<bf16>() + c * row, env.stream);
          },
          env);
      out.push_back({"misc", fmt::format("embed+rmsnorm H={} T={}", H, T), row * (2.0 + 4 + 2) + H * 4.0 + T * 4.0,
                     0, us});
    }
  }

  const int V = 262144;
  for (const int R : {1, 16, 64}) {
    const size_t row = static_cast<size_t>(R) * V;
    const size_t n = copies_for(row * 4, env);
    DeviceBuffer logits(row * 4 * n), tokens(static_cast<size_t>(R) * 4), scratch(cuda::argmax_scratch_bytes(R, V));
    fill_random(logits, 7 + R, true);
    size_t k = 0;
    const double us = median_kernel_us(
        [&] {
          const size_t c = k++ % n;
          cuda::argmax_rows(logits.get<float>() + c * row, R, V, 30.0f, tokens.get<int32_t>(), scratch.get(),
                            env.stream);
        },
        env);
    out.push_back({"misc", fmt::format("argmax+softcap V={} R={}", V, R), row * 4.0, 0, us});
    k = 0;
    const double us_cap = median_kernel_us(
        [&] { cuda::softcap(logits.get<float>() + (k++ % n) * row, row, 30.0f, env.stream); }, env);
    out.push_back({"misc", fmt::format("softcap V={} R={}", V, R), row * 8.0, 0, us_cap});
  }
  return out;
}

const bool registered = register_kernel_bench("misc", misc_cases);

}  // namespace
}  // namespace quench::cli
#endif  // QUENCH_HAVE_CUDA
