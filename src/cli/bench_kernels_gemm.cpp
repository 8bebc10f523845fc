// quench/cli/bench_kernels_gemm.cpp: `quench bench-kernels --filter gemm`: the weight-only
// tensor-core GEMM (backend/cuda/mma_gemm.h) on the 12B's Linear shapes — MLP gate/up 15360x3840
// and down 3840x15360 in NVFP4, FP8 and bf16; attention q/k/o shapes 4096x3840, 2048x3840,
// 3840x4096, 8192x3840, 3840x8192 in bf16 — at M = 16, 32, 64, 128 (decode batches) and 2048
// (prefill), each next to the path above the crossover: dequantize to a bf16 scratch (kernels.h)
// + cuBLAS for the quantized formats, plain cuBLAS for bf16 (the crossover in mma_gemm_preferred
// comes from these).
//
// Bounds: bytes = W as stored (+ NVFP4 block scales) + x bf16 + y fp32 once; FLOPs = 2·M·N·K.
// Weights rotate over copies in a random pool of >= 4x the L2, so every launch reads W from
// DRAM; x (<= 4 MB for decode) stays in L2 as it does in a decode step. Case names end in the
// tiling "MTxNTxSTAGES/SPLITS rSUBwWARPS" (mma_gemm.h); "try" lines sweep every compiled tiling on the main
// NVFP4/FP8/bf16 shapes at M = 16 and 64 (NVFP4 also 32 and 128). QUENCH_BENCH_CASE keeps only the
// cases whose name matches (ncu captures).
#ifdef QUENCH_HAVE_CUDA
#include <cublas_v2.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <regex>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "backend/cuda/cuda_utils.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/mma_gemm.h"
#include "cli/kernel_bench.h"

namespace quench::cli {
namespace {

using cuda::bf16;
using cuda::DeviceBuffer;

/// Random words (xorshift64*) whose bf16 halves are finite with exponents 2^-6..2^1; read as
/// FP8/NVFP4 bytes they are arbitrary codes (a few FP8 NaN codes do not change the timing).
void fill_random(DeviceBuffer& b, uint64_t seed) {
  std::vector<uint32_t> h(b.bytes() / 4);
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  auto half = [](uint32_t x) { return (x & 0x807fu) | ((0x79u + (x >> 8) % 8) << 7); };
  for (auto& w : h) {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    const uint64_t r = s * 0x2545F4914F6CDD1Dull;
    w = half(static_cast<uint32_t>(r >> 32) & 0xffffu) | (half(static_cast<uint32_t>(r >> 48)) << 16);
  }
  QUENCH_CUDA_CHECK(cudaMemcpy(b.get(), h.data(), h.size() * 4, cudaMemcpyHostToDevice));
}

const char* format_name(WeightFormat f) {
  return f == WeightFormat::kNVFP4 ? "nvfp4" : f == WeightFormat::kFP8 ? "fp8" : "bf16";
}

/// "MTxNTxSTAGES/SPLITS rSUBwWARPS", then "x" for x permuted in shared memory (xperm), "bN" for
/// registers capped for N blocks per SM, "kN" for N warps along K (mma_gemm.h).
std::string tiling_name(const cuda::MmaGemmTiling& t, int splits) {
  std::string s = fmt::format("{}x{}x{}/{} r{}w{}{}", t.mt, t.nt, t.stages, splits, t.sub, t.warps, t.xperm ? "x" : "");
  if (t.min_blocks > 0) s += fmt::format("b{}", t.min_blocks);
  if (t.wk > 1) s += fmt::format("k{}", t.wk);
  return s;
}

/// QUENCH_BENCH_CASE (a regular expression searched in the case name, e.g. "nvfp4 N=15360
/// K=3840 M=16 mma ") keeps only the matching cases (for ncu captures); unset: every case.
bool wanted(const std::string& name) {
  static const char* env = std::getenv("QUENCH_BENCH_CASE");
  if (env == nullptr || *env == '\0') return true;
  static const std::regex re(env);
  return std::regex_search(name, re);
}

struct Shape {
  WeightFormat format;
  int N, K;
};

/// Shapes whose every compiled tiling is timed too (the data behind the default by M).
bool sweep(const Shape& s, int M) {
  if (M > 128) return false;
  if (M != 16 && M != 64 && s.format != WeightFormat::kNVFP4) return false;
  return (s.format == WeightFormat::kNVFP4 && s.K == 3840) || (s.format == WeightFormat::kNVFP4 && s.N == 3840) ||
         (s.format == WeightFormat::kBF16 && s.K == 3840 && (s.N == 4096 || s.N == 15360)) ||
         (s.format == WeightFormat::kFP8 && s.N == 15360);
}

std::vector<KernelCase> gemm_cases(const KernelBenchEnv& env) {
  std::vector<Shape> shapes;
  for (WeightFormat f : {WeightFormat::kNVFP4, WeightFormat::kFP8, WeightFormat::kBF16}) {
    shapes.push_back({f, 15360, 3840});
    shapes.push_back({f, 3840, 15360});
  }
  for (auto [N, K] : {std::pair{4096, 3840}, {2048, 3840}, {3840, 4096}, {8192, 3840}, {3840, 8192}})
    shapes.push_back({WeightFormat::kBF16, N, K});
  const int Ms[] = {16, 32, 64, 128, 2048};

  // One random pool holds every rotated weight copy: the largest matrix (bf16 15360x3840,
  // 118 MB) times enough copies for >= 4x the L2, rounded to 256-byte offsets.
  const size_t max_w = size_t{15360} * 3840 * 2;
  const size_t copies = std::max<size_t>(2, (4 * env.l2_bytes + max_w - 1) / max_w);
  DeviceBuffer pool(max_w * copies + (size_t{15360} * 3840 / 16) * copies + 4096);
  fill_random(pool, 11);
  const int max_M = 2048, max_K = 15360, max_N = 15360;
  DeviceBuffer x(static_cast<size_t>(max_M) * max_K * 2), y(static_cast<size_t>(max_M) * max_N * 4);
  fill_random(x, 12);
  DeviceBuffer ws(cuda::kMmaGemmMaxWorkspace), deq(max_w);

  cublasHandle_t handle = nullptr;
  QUENCH_CUBLAS_CHECK(cublasCreate(&handle));
  DeviceBuffer cublas_ws(32u << 20);
  QUENCH_CUBLAS_CHECK(cublasSetWorkspace(handle, cublas_ws.get(), cublas_ws.bytes()));
  QUENCH_CUBLAS_CHECK(cublasSetStream(handle, env.stream));
  auto cublas_bf16 = [&](const bf16* W, int N, int K, int M) {
    const float alpha = 1.0f, beta = 0.0f;  // yᵀ [N, M] = W [K, N]ᵀ · xᵀ [K, M] (column-major view)
    QUENCH_CUBLAS_CHECK(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &alpha, W, CUDA_R_16BF, K,
                                     x.get<bf16>(), CUDA_R_16BF, K, &beta, y.get<float>(), CUDA_R_32F, N,
                                     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  };

  std::vector<KernelCase> out;
  for (const Shape& s : shapes) {
    const size_t nk = static_cast<size_t>(s.N) * s.K;
    const size_t w_bytes = s.format == WeightFormat::kNVFP4 ? nk / 2 : s.format == WeightFormat::kFP8 ? nk : nk * 2;
    const size_t sc_bytes = s.format == WeightFormat::kNVFP4 ? nk / 16 : 0;
    const size_t stride = (w_bytes + sc_bytes + 255) / 256 * 256;
    const size_t n_copies = std::min(pool.bytes() / stride, std::max<size_t>(1, (4 * env.l2_bytes + stride - 1) / stride));
    auto weight = [&](size_t c) {
      const uint8_t* base = pool.get<uint8_t>() + c * stride;
      return cuda::GemmWeight{s.format, s.N, s.K, base, sc_bytes ? base + w_bytes : nullptr, 0.01f};
    };
    for (const int M : Ms) {
      const double bytes = static_cast<double>(w_bytes + sc_bytes) + 2.0 * M * s.K + 4.0 * M * s.N;
      const double flops = 2.0 * M * static_cast<double>(nk);
      const std::string shape = fmt::format("{} N={} K={} M={}", format_name(s.format), s.N, s.K, M);
      size_t k = 0;
      const cuda::MmaGemmTiling t = cuda::mma_gemm_tiling(weight(0), M);
      const std::string mma_name = shape + " mma " + tiling_name(t, t.splits);
      if (wanted(mma_name)) {
        const double mma_us = median_kernel_us(
            [&] {
              cuda::mma_gemm(weight(k++ % n_copies), x.get<bf16>(), M, y.get<float>(), ws.get(), ws.bytes(),
                             env.stream);
            },
            env);
        out.push_back({"gemm", mma_name, bytes, flops, mma_us});
      }
      if (sweep(s, M)) {  // every compiled tiling, automatic split count
        for (const cuda::MmaGemmTiling& v : cuda::mma_gemm_tilings()) {
          if (cuda::mma_gemm_workspace_bytes(weight(0), M, v) > ws.bytes()) continue;
          const int splits = cuda::mma_gemm_tiling(weight(0), M, v).splits;
          const std::string name = shape + " try " + tiling_name(v, splits);
          if (!wanted(name)) continue;
          k = 0;
          const double us = median_kernel_us(
              [&] {
                cuda::mma_gemm(weight(k++ % n_copies), v, x.get<bf16>(), M, y.get<float>(), ws.get(), ws.bytes(),
                               env.stream);
              },
              env);
          out.push_back({"gemm", name, bytes, flops, us});
        }
      }
      const std::string ref_name = shape + (s.format == WeightFormat::kBF16 ? " cublas" : " deq+cublas");
      if (!wanted(ref_name)) continue;
      k = 0;
      const double ref_us = median_kernel_us(
          [&] {
            const cuda::GemmWeight w = weight(k++ % n_copies);
            const uint8_t* data = static_cast<const uint8_t*>(w.data);
            if (s.format == WeightFormat::kBF16) {
              cublas_bf16(static_cast<const bf16*>(w.data), s.N, s.K, M);
              return;
            }
            if (s.format == WeightFormat::kFP8)
              cuda::dequant_fp8_to_bf16(data, w.scale, s.N, s.K, deq.get<bf16>(), env.stream);
            else
              cuda::dequant_nvfp4_to_bf16(data, w.block_scales, w.scale, s.N, s.K, deq.get<bf16>(), env.stream);
            cublas_bf16(deq.get<bf16>(), s.N, s.K, M);
          },
          env);
      out.push_back({"gemm", ref_name, bytes, flops, ref_us});
    }
  }
  // One launch for several weights on the same x (mma_gemm_multi, what LinearExecutor runs for
  // q/k/v and gate/up at M > 8) against one mma_gemm launch each and, for bf16, one cuBLAS call
  // each (the path bf16 groups take when mma_gemm is not preferred): the 12B's sliding q/k/v
  // (4096 + 2048 + 2048 rows), global q/k (8192 + 512, k_eq_v) and gate/up (2 x 15360) in NVFP4/FP8.
  struct Group {
    const char* name;
    WeightFormat format;
    std::vector<int> Ns;
  };
  for (const Group& grp : {Group{"bf16 qkv 4096+2048+2048 K=3840", WeightFormat::kBF16, {4096, 2048, 2048}},
                           Group{"bf16 qk-global 8192+512 K=3840", WeightFormat::kBF16, {8192, 512}},
                           Group{"nvfp4 gate+up 2x15360 K=3840", WeightFormat::kNVFP4, {15360, 15360}},
                           Group{"fp8 gate+up 2x15360 K=3840", WeightFormat::kFP8, {15360, 15360}}}) {
    const int K = 3840;
    std::vector<cuda::GemmWeight> views;
    double bytes_w = 0;
    size_t off = 0;
    for (int N : grp.Ns) {
      const size_t nk = static_cast<size_t>(N) * K;
      const size_t wb = grp.format == WeightFormat::kNVFP4 ? nk / 2 : grp.format == WeightFormat::kFP8 ? nk : nk * 2;
      const size_t sb = grp.format == WeightFormat::kNVFP4 ? nk / 16 : 0;
      const uint8_t* base = pool.get<uint8_t>() + off;
      views.push_back({grp.format, N, K, base, sb ? base + wb : nullptr, 0.01f});
      off += (wb + sb + 255) / 256 * 256;
      bytes_w += static_cast<double>(wb + sb);
    }
    // The group's weights are read from one place of the pool: rotate whole groups over it.
    const size_t n_groups = std::max<size_t>(1, pool.bytes() / off);
    auto rotated = [&](size_t c) {
      std::vector<cuda::GemmWeight> v = views;
      for (auto& w : v) {
        w.data = static_cast<const uint8_t*>(w.data) + c * off;
        if (w.block_scales) w.block_scales += c * off;
      }
      return v;
    };
    for (const int M : {16, 32, 64, 128}) {
      std::vector<float*> ys;
      size_t yoff = 0;
      for (int N : grp.Ns) {
        ys.push_back(y.get<float>() + yoff);
        yoff += static_cast<size_t>(M) * N;
      }
      double rows = 0;
      for (int N : grp.Ns) rows += N;
      const double bytes = bytes_w + 2.0 * M * K + 4.0 * M * rows;
      const double flops = 2.0 * M * rows * K;
      const cuda::MmaGemmTiling t = cuda::mma_gemm_multi_tiling(views.data(), static_cast<int>(views.size()), M);
      const std::string multi_name = fmt::format("{} M={} multi {}", grp.name, M, tiling_name(t, t.splits));
      const std::string sep_name = fmt::format("{} M={} separate", grp.name, M);
      const std::string cublas_name = fmt::format("{} M={} cublas", grp.name, M);
      size_t k = 0;
      if (wanted(multi_name)) {
        const double one_us = median_kernel_us(
            [&] {
              const auto v = rotated(k++ % n_groups);
              cuda::mma_gemm_multi(v.data(), ys.data(), static_cast<int>(v.size()), x.get<bf16>(), M, ws.get(),
                                   ws.bytes(), env.stream);
            },
            env);
        out.push_back({"gemm", multi_name, bytes, flops, one_us});
      }
      if (wanted(sep_name)) {
        k = 0;
        const double sep_us = median_kernel_us(
            [&] {
              const auto v = rotated(k++ % n_groups);
              for (size_t j = 0; j < v.size(); ++j)
                cuda::mma_gemm(v[j], x.get<bf16>(), M, ys[j], ws.get(), ws.bytes(), env.stream);
            },
            env);
        out.push_back({"gemm", sep_name, bytes, flops, sep_us});
      }
      if (grp.format == WeightFormat::kBF16 && wanted(cublas_name)) {
        k = 0;
        const double cublas_us = median_kernel_us(
            [&] {
              const auto v = rotated(k++ % n_groups);
              for (size_t j = 0; j < v.size(); ++j) {
                const float alpha = 1.0f, beta = 0.0f;
                QUENCH_CUBLAS_CHECK(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, v[j].N, M, K, &alpha, v[j].data,
                                                 CUDA_R_16BF, K, x.get<bf16>(), CUDA_R_16BF, K, &beta, ys[j],
                                                 CUDA_R_32F, v[j].N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
              }
            },
            env);
        out.push_back({"gemm", cublas_name, bytes, flops, cublas_us});
      }
    }
  }
  cublasDestroy(handle);
  return out;
}

const bool registered = register_kernel_bench("gemm", gemm_cases);

}  // namespace
}  // namespace quench::cli
#endif  // QUENCH_HAVE_CUDA
