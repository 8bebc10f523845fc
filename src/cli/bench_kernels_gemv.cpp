// quench/cli/bench_kernels_gemv.cpp: the "gemv" group of `quench bench-kernels`: the decode skinny
// GEMMs on every 12B weight shape (gemma4-12b config: hidden 3840, intermediate 15360, sliding
// q/k/v/o 4096/2048/2048 x 3840 and 3840 x 4096, global q/k/o 8192/512 x 3840 and 3840 x 8192, LM
// head 262144 x 3840) for M = 1, 2, 4, 8 in the formats a checkpoint uses there (attention bf16 and
// FP8, MLP bf16 / FP8 / NVFP4, LM head bf16), the fused launches (q/k/v in one launch, gate/up +
// GELU), and the prefill dequantization kernels. Every GEMV case is timed with each kernel forced
// (gemv_variant.h: "regs" = register-streaming gemv_kernels.cu, "ring" = gemv_ring.cu, "ring16" =
// the ring with 16 warps per tile; a shape the ring does not take runs the register kernel under
// every name). QUENCH_BENCH_CASE=<regex> keeps only matching case names (for ncu).
//
// Bound: every weight byte (and block scale) read once plus x read and y written once. Weights are
// random (never zeros) and rotated over enough copies (>= 4x L2) that each launch reads DRAM.
#ifdef QUENCH_HAVE_CUDA
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <regex>
#include <string>
#include <functional>
#include <utility>
#include <memory>
#include <random>
#include <vector>

#include "backend/cuda/cuda_utils.h"
#include "backend/cuda/gemv_variant.h"
#include "backend/cuda/kernels.h"
#include "cli/kernel_bench.h"

namespace quench::cli {
namespace {

using cuda::DeviceBuffer;
using cuda::GemvFormat;

/// Host bytes of one random weight of a format: bf16 ~ +-[2^-7, 2^-1) with random mantissas; FP8
/// random non-NaN codes; NVFP4 random nibbles. Scales (NVFP4): random mid-range E4M3.
std::vector<uint8_t> random_bytes(size_t n, std::mt19937_64& rng, GemvFormat f) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i + 8 <= n; i += 8) {
    const uint64_t r = rng();
    std::memcpy(&v[i], &r, 8);
  }
  for (size_t i = n - n % 8; i < n; ++i) v[i] = static_cast<uint8_t>(rng());
  if (f == GemvFormat::kBF16) {
    for (size_t i = 1; i < n; i += 2) v[i] = static_cast<uint8_t>((v[i] & 0x80) | (0x3c + (v[i] & 0x3)));
  } else if (f == GemvFormat::kFP8) {
    for (auto& b : v)
      if ((b & 0x7f) == 0x7f) b = 0x3f;
  }
  return v;
}

std::vector<uint8_t> random_scales(size_t n, std::mt19937_64& rng) {
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(0x28 + rng() % 0x20);
  return v;
}

/// `copies` device copies of one random weight (and its NVFP4 scales).
struct WeightSet {
  GemvFormat format;
  int N, K;
  float scale = 1.0f;
  std::vector<DeviceBuffer> data, scales;

  WeightSet(GemvFormat f, int n, int k, int copies, std::mt19937_64& rng) : format(f), N(n), K(k) {
    const size_t nk = static_cast<size_t>(N) * K;
    const size_t bytes = f == GemvFormat::kBF16 ? 2 * nk : f == GemvFormat::kFP8 ? nk : nk / 2;
    const auto host = random_bytes(bytes, rng, f);
    std::vector<uint8_t> hs;
    if (f == GemvFormat::kNVFP4) hs = random_scales(nk / 16, rng);
    scale = f == GemvFormat::kFP8 ? 0.01f : f == GemvFormat::kNVFP4 ? 1e-3f : 1.0f;
    for (int c = 0; c < copies; ++c) {
      data.emplace_back(bytes);
      QUENCH_CUDA_CHECK(cudaMemcpy(data.back().get(), host.data(), bytes, cudaMemcpyHostToDevice));
      if (!hs.empty()) {
        scales.emplace_back(hs.size());
        QUENCH_CUDA_CHECK(cudaMemcpy(scales.back().get(), hs.data(), hs.size(), cudaMemcpyHostToDevice));
      }
    }
  }
  /// Bytes one launch must read for this weight.
  double weight_bytes() const {
    return static_cast<double>(data[0].bytes()) + (scales.empty() ? 0.0 : static_cast<double>(scales[0].bytes()));
  }
  cuda::GemvJob job(int copy, float* y) const {
    return {format, data[copy].get(), scales.empty() ? nullptr : scales[copy].get<uint8_t>(), scale, N, y};
  }
};

/// Copies needed so that the rotated working set is >= 4x L2 (at least 1).
int copies_for(double bytes_per_launch, const KernelBenchEnv& env) {
  return static_cast<int>(std::clamp(4.0 * static_cast<double>(env.l2_bytes) / bytes_per_launch + 1.0, 1.0, 64.0));
}

double weight_bytes_of(GemvFormat f, int N, int K) {
  const double nk = static_cast<double>(N) * K;
  return f == GemvFormat::kBF16 ? 2 * nk : f == GemvFormat::kFP8 ? nk : nk / 2 + nk / 16;
}

const char* fmt_name(GemvFormat f) {
  return f == GemvFormat::kBF16 ? "bf16" : f == GemvFormat::kFP8 ? "fp8" : "nvfp4";
}

struct Shape {
  const char* what;
  int N, K;
  std::vector<GemvFormat> formats;
};

/// One kernel configuration every GEMV case is timed with (gemv_variant.h).
struct KernelChoice {
  cuda::GemvKernel kernel;
  int ring_group_warps;  ///< 0: picked per launch
  int register_blocks;   ///< NVFP4 register kernel: blocks per SM compiled for
  const char* name;
};
/// "regs": gemv_kernels.cu; "regs3": the same at 3 blocks per SM for NVFP4 (same as regs for
/// bf16/FP8); "ring": gemv_ring.cu with its own warp grouping; "ring16": the ring with all 16
/// warps on one tile (every row read 2 KB at a time: a DRAM-locality experiment).
constexpr KernelChoice kKernels[] = {{cuda::GemvKernel::kRegisters, 0, 2, "regs"},
                                     {cuda::GemvKernel::kRegisters, 0, 3, "regs3"},
                                     {cuda::GemvKernel::kRing, 0, 2, "ring"},
                                     {cuda::GemvKernel::kRing, 16, 2, "ring16"}};

/// median_kernel_us of `launch` with kernel `k` forced (kAuto restored afterwards).
double time_with(const KernelChoice& k, const std::function<void()>& launch, const KernelBenchEnv& env) {
  cuda::set_gemv_kernel(k.kernel);
  cuda::set_gemv_ring_group_warps(k.ring_group_warps);
  cuda::set_gemv_register_blocks(k.register_blocks);
  auto restore = [] {
    cuda::set_gemv_kernel(cuda::GemvKernel::kAuto);
    cuda::set_gemv_ring_group_warps(0);
    cuda::set_gemv_register_blocks(0);
  };
  double us = 0;
  try {
    us = median_kernel_us(launch, env);
  } catch (...) {
    restore();
    throw;
  }
  restore();
  return us;
}

/// QUENCH_BENCH_CASE (a regular expression on the case name, e.g. "nvfp4 down.*M=1 ring$") keeps
/// only the matching GEMV cases (for profiling one kernel under ncu); unset: every case.
bool case_selected(const std::string& name) {
  static const char* env = std::getenv("QUENCH_BENCH_CASE");
  if (env == nullptr || *env == 0) return true;
  static const std::regex re(env);
  return std::regex_search(name, re);
}

/// Random bf16 activations x [8, K] (enough for every M).
DeviceBuffer random_x(int K, std::mt19937_64& rng) {
  auto host = random_bytes(static_cast<size_t>(8) * K * 2, rng, GemvFormat::kBF16);
  DeviceBuffer d(host.size());
  QUENCH_CUDA_CHECK(cudaMemcpy(d.get(), host.data(), host.size(), cudaMemcpyHostToDevice));
  return d;
}

std::vector<KernelCase> gemv_cases(const KernelBenchEnv& env) {
  std::vector<KernelCase> out;
  std::mt19937_64 rng(20261130);
  const GemvFormat B = GemvFormat::kBF16, F8 = GemvFormat::kFP8, F4 = GemvFormat::kNVFP4;
  const std::vector<Shape> shapes = {
      {"sliding q", 4096, 3840, {B, F8}},   {"sliding k/v", 2048, 3840, {B, F8}}, {"sliding o", 3840, 4096, {B, F8}},
      {"global q", 8192, 3840, {B, F8}},    {"global k", 512, 3840, {B, F8}},     {"global o", 3840, 8192, {B, F8}},
      {"gate/up", 15360, 3840, {B, F8, F4}}, {"down", 3840, 15360, {B, F8, F4}}, {"lm head", 262144, 3840, {B}},
  };
  const int Ms[4] = {1, 2, 4, 8};
  DeviceBuffer y(static_cast<size_t>(8) * 262144 * 4);
  DeviceBuffer act(static_cast<size_t>(8) * 15360 * 2);

  // Single Linears.
  for (const Shape& s : shapes)
    for (GemvFormat f : s.formats) {
      const int copies = copies_for(weight_bytes_of(f, s.N, s.K), env);
      WeightSet w(f, s.N, s.K, copies, rng);
      DeviceBuffer x = random_x(s.K, rng);
      for (int M : Ms)
        for (const KernelChoice& kc : kKernels) {
          const std::string name = fmt::format("{} {} N={} K={} M={} {}", fmt_name(f), s.what, s.N, s.K, M, kc.name);
          if (!case_selected(name) || (kc.register_blocks == 3 && f != F4)) continue;
          int i = 0;
          const double us = time_with(
              kc,
              [&] {
                const cuda::GemvJob j = w.job(i++ % copies, y.get<float>());
                cuda::gemv_multi(&j, 1, s.K, x.get<cuda::bf16>(), M, env.stream);
              },
              env);
          out.push_back({"gemv", name, w.weight_bytes() + 2.0 * M * s.K + 4.0 * M * s.N, 2.0 * M * s.N * s.K, us});
        }
    }

  // q/k/v (sliding: q, k, v; global: q, k with V = K) in one launch.
  struct Qkv {
    const char* what;
    std::vector<int> Ns;
  };
  for (const Qkv& q : {Qkv{"sliding q+k+v", {4096, 2048, 2048}}, Qkv{"global q+k", {8192, 512}}})
    for (GemvFormat f : {B, F8}) {
      double wb = 0;
      for (int N : q.Ns) wb += weight_bytes_of(f, N, 3840);
      const int copies = copies_for(wb, env);
      std::vector<std::unique_ptr<WeightSet>> ws;
      for (int N : q.Ns) ws.push_back(std::make_unique<WeightSet>(f, N, 3840, copies, rng));
      DeviceBuffer x = random_x(3840, rng);
      int total_n = 0;
      for (int N : q.Ns) total_n += N;
      for (int M : Ms)
        for (const KernelChoice& kc : kKernels) {
          const std::string name = fmt::format("{} multi {} K=3840 M={} {}", fmt_name(f), q.what, M, kc.name);
          if (!case_selected(name) || kc.register_blocks == 3) continue;
          int i = 0;
          const double us = time_with(
              kc,
              [&] {
                const int c = i++ % copies;
                cuda::GemvJob jobs[cuda::kGemvMaxJobs];
                size_t off = 0;
                for (size_t j = 0; j < ws.size(); ++j) {
                  jobs[j] = ws[j]->job(c, y.get<float>() + off);
                  off += static_cast<size_t>(M) * q.Ns[j];
                }
                cuda::gemv_multi(jobs, static_cast<int>(ws.size()), 3840, x.get<cuda::bf16>(), M, env.stream);
              },
              env);
          out.push_back({"gemv", name, wb + 2.0 * M * 3840 + 4.0 * M * total_n, 2.0 * M * total_n * 3840, us});
        }
    }

  // gate/up + GELU in one launch.
  for (GemvFormat f : {B, F8, F4}) {
    const int N = 15360, K = 3840;
    const int copies = copies_for(2 * weight_bytes_of(f, N, K), env);
    WeightSet g(f, N, K, copies, rng), u(f, N, K, copies, rng);
    DeviceBuffer x = random_x(K, rng);
    for (int M : Ms)
      for (const KernelChoice& kc : kKernels) {
        const std::string name = fmt::format("{} gate+up+gelu N={} K={} M={} {}", fmt_name(f), N, K, M, kc.name);
        if (!case_selected(name) || (kc.register_blocks == 3 && f != F4)) continue;
        int i = 0;
        const double us = time_with(
            kc,
            [&] {
              const int c = i++ % copies;
              cuda::gemv_gate_up_gelu(g.job(c, nullptr), u.job(c, nullptr), K, x.get<cuda::bf16>(), M,
                                      act.get<cuda::bf16>(), env.stream);
            },
            env);
        out.push_back({"gemv", name, 2 * g.weight_bytes() + 2.0 * M * K + 2.0 * M * N, 4.0 * M * N * K, us});
      }
  }

  // Prefill dequantization of one MLP matrix.
  for (GemvFormat f : {F4, F8}) {
    const int N = 15360, K = 3840;
    const std::string name = fmt::format("dequant {} -> bf16 N={} K={}", fmt_name(f), N, K);
    if (!case_selected(name)) continue;
    const double bytes = weight_bytes_of(f, N, K) + 2.0 * N * K;
    const int copies = std::max(2, copies_for(bytes, env));
    WeightSet w(f, N, K, copies, rng);
    DeviceBuffer dst(static_cast<size_t>(N) * K * 2);
    int i = 0;
    const double us = median_kernel_us(
        [&] {
          const int c = i++ % copies;
          if (f == F4)
            cuda::dequant_nvfp4_to_bf16(w.data[c].get<uint8_t>(), w.scales[c].get<uint8_t>(), w.scale, N, K,
                                        dst.get<cuda::bf16>(), env.stream);
          else
            cuda::dequant_fp8_to_bf16(w.data[c].get<uint8_t>(), w.scale, N, K, dst.get<cuda::bf16>(), env.stream);
        },
        env);
    out.push_back({"gemv", name, bytes, 0.0, us});
  }
  return out;
}

const bool registered = register_kernel_bench("gemv", gemv_cases);

}  // namespace
}  // namespace quench::cli
#endif  // QUENCH_HAVE_CUDA
