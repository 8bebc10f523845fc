// quench/cli/bench_kernels_attention.cpp: `quench bench-kernels --filter attention`: paged
// attention (kernels.h paged_attention, split merge included) on the 12B's two layer shapes —
// sliding (16 q heads x 256, 8 KV heads, window 1024) and global (16 q heads x 512, 1 KV head) —
// with bf16 and FP8 E4M3 caches, block size 16, block ids scattered over the pool:
//   decode: one query per sequence, batch 1 / 16 / 64 at context 512 and 4096 (the table width
//     and max_context bucketed to a power of two as the CUDA runner does); bound = KV bytes each
//     sequence must read (min(context, window) keys x Hkv x D x 2 tensors) / copy bandwidth;
//     every launch reads another copy of the cache (>= 4x the L2 in all). Each decode shape is
//     timed with the single-launch kernels (the default) and with the previous split + combine
//     path on the same buffers (lines ending "split+combine"), then the q/k/v post-processing with
//     it: qkv_norm_rope_store + paged_attention ("2 launches") and qkv_paged_attention_decode
//     ("folded"); "decode 48 layers" adds 40 sliding + 8 global layers (the 12B's share of one
//     decode step).
//   prefill: 2048 tokens of one sequence from position 0; bound = useful FLOPs (4 D Hq per
//     visible (query, key) pair, causal / window) / bf16 GEMM peak. The line "48 layers" adds
//     40 sliding + 8 global layers (the 12B's attention share of a 2048-token prefill).
#ifdef QUENCH_HAVE_CUDA
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <string>
#include <random>
#include <regex>
#include <cstdlib>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "backend/cuda/cuda_utils.h"
#include "backend/cuda/kernels.h"
#include "cli/kernel_bench.h"

namespace quench::cli {
namespace {

using cuda::bf16;
using cuda::DeviceBuffer;

constexpr int kBlock = 16;

struct LayerShape {
  const char* name;
  int Hq, Hkv, D, window;
};
constexpr LayerShape kSliding{"sliding", 16, 8, 256, 1024};
constexpr LayerShape kGlobal{"global", 16, 1, 512, 0};

/// Fills `b` with a 16 MB pattern of random words repeated: bf16 values of moderate magnitude, or
/// FP8 E4M3 codes without the NaN codes (`fp8`).
void fill_random(DeviceBuffer& b, uint64_t seed, bool fp8) {
  std::vector<uint16_t> h(std::min<size_t>(b.bytes(), 16u << 20) / 2);
  std::mt19937_64 rng(seed);
  for (auto& w : h) {
    const uint64_t r = rng();
    if (fp8) {
      uint8_t lo = static_cast<uint8_t>(r), hi = static_cast<uint8_t>(r >> 8);
      if ((lo & 0x7f) == 0x7f) lo ^= 1;
      if ((hi & 0x7f) == 0x7f) hi ^= 1;
      w = static_cast<uint16_t>(lo | (hi << 8));
    } else {
      // sign, exponent 2^-4 .. 2^1, random mantissa
      w = static_cast<uint16_t>((r & 0x807f) | ((0x7b + (r >> 16) % 6) << 7));
    }
  }
  const size_t chunk = h.size() * 2;
  for (size_t off = 0; off < b.bytes(); off += chunk)
    QUENCH_CUDA_CHECK(cudaMemcpy(b.get<uint8_t>() + off, h.data(), std::min(chunk, b.bytes() - off),
                                 cudaMemcpyHostToDevice));
}

int bucket_blocks(int blocks) {
  int b = 16;
  while (b < blocks) b *= 2;
  return b;
}

/// Decode: B sequences at context `ctx`, one query each (position ctx - 1): the single-launch
/// kernels (set_decode_attention_fused(true), the default) and, on the same buffers, the previous
/// split + combine path ("split+combine").
/// QUENCH_BENCH_CASE (a regular expression searched in "decode <layer> <kv> B=<b> ctx=<c>" or
/// "prefill <layer> <kv> T=<t>") keeps only the matching shapes (for ncu captures).
bool wanted(const std::string& base) {
  static const char* env = std::getenv("QUENCH_BENCH_CASE");
  if (env == nullptr || *env == '\0') return true;
  static const std::regex re(env);
  return std::regex_search(base, re);
}

std::vector<KernelCase> decode_cases(const LayerShape& L, bool fp8, int B, int ctx, const KernelBenchEnv& env) {
  if (!wanted(fmt::format("decode {} {} B={} ctx={}", L.name, fp8 ? "fp8" : "bf16", B, ctx))) return {};
  const size_t elem = fp8 ? 1 : 2;
  const size_t block_bytes = static_cast<size_t>(kBlock) * L.Hkv * L.D * elem;
  const int nb = (ctx + kBlock - 1) / kBlock;
  // Sliding layers hold only the window's blocks (the engine frees the others: -1).
  const int first_kept = L.window > 0 ? std::max(0, ctx - L.window) / kBlock : 0;
  const int kept = nb - first_kept;
  const size_t set_bytes = 2ull * B * kept * block_bytes;
  const size_t copies = std::max<size_t>(1, (4 * env.l2_bytes + set_bytes - 1) / set_bytes);
  const size_t pool_blocks = copies * B * kept;
  DeviceBuffer k(pool_blocks * block_bytes), v(pool_blocks * block_bytes);
  fill_random(k, 11, fp8);
  fill_random(v, 12, fp8);
  const int mb = bucket_blocks(nb);
  std::vector<int32_t> ids(pool_blocks);
  std::iota(ids.begin(), ids.end(), 0);
  std::mt19937 rng(7);
  std::shuffle(ids.begin(), ids.end(), rng);
  std::vector<int32_t> tab(copies * B * mb, -1);
  size_t next = 0;
  for (size_t c = 0; c < copies; ++c)
    for (int s = 0; s < B; ++s)
      for (int b = first_kept; b < nb; ++b) tab[(c * B + s) * mb + b] = ids[next++];
  std::vector<int32_t> pos(B, ctx - 1), seq(B);
  std::iota(seq.begin(), seq.end(), 0);
  DeviceBuffer dtab(tab.size() * 4), dpos(B * 4), dseq(B * 4);
  QUENCH_CUDA_CHECK(cudaMemcpy(dtab.get(), tab.data(), tab.size() * 4, cudaMemcpyHostToDevice));
  QUENCH_CUDA_CHECK(cudaMemcpy(dpos.get(), pos.data(), B * 4, cudaMemcpyHostToDevice));
  QUENCH_CUDA_CHECK(cudaMemcpy(dseq.get(), seq.data(), B * 4, cudaMemcpyHostToDevice));
  const size_t qn = static_cast<size_t>(B) * L.Hq * L.D;
  DeviceBuffer q(qn * 2), out(qn * 2);
  fill_random(q, 13, false);
  const int max_context = mb * kBlock;
  DeviceBuffer scratch(std::max<size_t>(16, cuda::attention_scratch_bytes(B, L.Hq, L.D, max_context)));
  cuda::KvLayerView view{k.get(), v.get(), fp8, 0.02f, 0.015f, kBlock, L.Hkv, L.D};
  const int keys = L.window > 0 ? std::min(ctx, L.window) : ctx;
  const double bytes = 2.0 * B * keys * L.Hkv * L.D * elem + 2.0 * qn * 2;
  const double flops = 4.0 * B * keys * L.Hq * L.D;
  std::vector<KernelCase> out_cases;
  for (const bool fused : {true, false}) {
    cuda::set_decode_attention_fused(fused);
    size_t it = 0;
    double us = 0;
    try {
      us = median_kernel_us(
          [&] {
            const size_t c = it++ % copies;
            cuda::paged_attention(q.get<bf16>(), B, L.Hq, L.D, L.window, {dpos.get<int32_t>(), dseq.get<int32_t>()},
                                  {dtab.get<int32_t>() + c * B * mb, mb}, view, max_context, out.get<bf16>(),
                                  scratch.get(), env.stream);
          },
          env);
    } catch (...) {
      cuda::set_decode_attention_fused(true);
      throw;
    }
    cuda::set_decode_attention_fused(true);
    out_cases.push_back({"attention",
                         fmt::format("decode {} {} B={} ctx={}{}", L.name, fp8 ? "fp8" : "bf16", B, ctx,
                                     fused ? fmt::format(" S={}{}", cuda::decode_attention_last_splits(),
                                                         cuda::decode_attention_cluster_refusals().empty()
                                                             ? std::string()
                                                             : " (refused: " + cuda::decode_attention_cluster_refusals() + ")")
                                           : std::string(" split+combine")),
                         bytes, flops, us});
    if (!fused || B != 1 || fp8) continue;
    // Probes at B=1 (latency): the single-launch kernel with capped cluster sizes, and without PDL.
    for (const int cap : {8, 4, 1, -1}) {
      cuda::set_decode_attention_max_cluster(cap > 0 ? cap : 0);
      const bool pdl = cuda::programmatic_dependent_launch();
      if (cap < 0) cuda::set_programmatic_dependent_launch(false);
      size_t it2 = 0;
      double us2 = 0;
      try {
        us2 = median_kernel_us(
            [&] {
              const size_t c = it2++ % copies;
              cuda::paged_attention(q.get<bf16>(), B, L.Hq, L.D, L.window, {dpos.get<int32_t>(), dseq.get<int32_t>()},
                                    {dtab.get<int32_t>() + c * B * mb, mb}, view, max_context, out.get<bf16>(),
                                    scratch.get(), env.stream);
            },
            env);
      } catch (...) {
        cuda::set_decode_attention_max_cluster(0);
        cuda::set_programmatic_dependent_launch(pdl);
        throw;
      }
      const int splits = cuda::decode_attention_last_splits();
      cuda::set_decode_attention_max_cluster(0);
      cuda::set_programmatic_dependent_launch(pdl);
      out_cases.push_back({"attention",
                           fmt::format("decode {} bf16 B=1 ctx={} S={} probe: {}", L.name, ctx, splits,
                                       cap > 0 ? fmt::format("cluster cap {}", cap) : std::string("no PDL")),
                           bytes, flops, us2});
    }
  }
  // The step's q/k/v post-processing with the attention: qkv_norm_rope_store + paged_attention
  // (two launches) against qkv_paged_attention_decode (one). Projections / norms / frequencies
  // are fill_random's bf16 words read as fp32: finite, moderate.
  const size_t kvn = static_cast<size_t>(B) * L.Hkv * L.D;
  DeviceBuffer qp(qn * 4), kp(kvn * 4), vp(kvn * 4), qnorm(L.D * 4), knorm(L.D * 4), freq(L.D / 2 * 4);
  fill_random(qp, 31, false);
  fill_random(kp, 32, false);
  fill_random(vp, 33, false);
  fill_random(qnorm, 34, false);
  fill_random(knorm, 35, false);
  fill_random(freq, 36, false);
  const cuda::TokenMeta meta{dpos.get<int32_t>(), dseq.get<int32_t>()};
  for (const bool folded : {false, true}) {
    size_t it = 0;
    bool took_fold = false;  // qkv_paged_attention_decode declines shapes without a winning fold
    const double us = median_kernel_us(
        [&] {
          const cuda::BlockTables tables{dtab.get<int32_t>() + (it++ % copies) * B * mb, mb};
          if (folded &&
              cuda::qkv_paged_attention_decode(qp.get<float>(), kp.get<float>(), vp.get<float>(), B, L.Hq, L.Hkv, L.D,
                                               qnorm.get<float>(), knorm.get<float>(), freq.get<float>(), 1e-6f,
                                               L.window, meta, tables, view, max_context, out.get<bf16>(), env.stream)) {
            took_fold = true;
            return;
          }
          cuda::qkv_norm_rope_store(qp.get<float>(), kp.get<float>(), vp.get<float>(), B, L.Hq, L.Hkv, L.D,
                                    qnorm.get<float>(), knorm.get<float>(), freq.get<float>(), 1e-6f, meta, tables, view,
                                    q.get<bf16>(), env.stream);
          cuda::paged_attention(q.get<bf16>(), B, L.Hq, L.D, L.window, meta, tables, view, max_context, out.get<bf16>(),
                                scratch.get(), env.stream);
        },
        env);
    out_cases.push_back({"attention",
                         fmt::format("decode {} {} B={} ctx={} qkv+attention {}", L.name, fp8 ? "fp8" : "bf16", B, ctx,
                                     !folded ? "(2 launches)" : took_fold ? "folded (1 launch)" : "folded (declined: 2 launches)"),
                         bytes + (qn + 2.0 * kvn) * 4, flops, us});
  }
  return out_cases;
}

/// Prefill: T tokens of one sequence from position 0 (keys written before, as the step does).
KernelCase prefill_case(const LayerShape& L, bool fp8, int T, const KernelBenchEnv& env) {
  const size_t elem = fp8 ? 1 : 2;
  const int nb = (T + kBlock - 1) / kBlock, mb = bucket_blocks(nb);
  const size_t block_bytes = static_cast<size_t>(kBlock) * L.Hkv * L.D * elem;
  DeviceBuffer k(nb * block_bytes), v(nb * block_bytes);
  fill_random(k, 21, fp8);
  fill_random(v, 22, fp8);
  std::vector<int32_t> tab(mb, -1), pos(T), seq(T, 0);
  std::iota(tab.begin(), tab.begin() + nb, 0);
  std::mt19937 rng(3);
  std::shuffle(tab.begin(), tab.begin() + nb, rng);
  std::iota(pos.begin(), pos.end(), 0);
  DeviceBuffer dtab(tab.size() * 4), dpos(T * 4), dseq(T * 4);
  QUENCH_CUDA_CHECK(cudaMemcpy(dtab.get(), tab.data(), tab.size() * 4, cudaMemcpyHostToDevice));
  QUENCH_CUDA_CHECK(cudaMemcpy(dpos.get(), pos.data(), T * 4, cudaMemcpyHostToDevice));
  QUENCH_CUDA_CHECK(cudaMemcpy(dseq.get(), seq.data(), T * 4, cudaMemcpyHostToDevice));
  const size_t qn = static_cast<size_t>(T) * L.Hq * L.D;
  DeviceBuffer q(qn * 2), out(qn * 2);
  fill_random(q, 23, false);
  const int max_context = mb * kBlock;
  DeviceBuffer scratch(std::max<size_t>(16, cuda::attention_scratch_bytes(T, L.Hq, L.D, max_context)));
  cuda::KvLayerView view{k.get(), v.get(), fp8, 0.02f, 0.015f, kBlock, L.Hkv, L.D};
  const double us = median_kernel_us(
      [&] {
        cuda::paged_attention(q.get<bf16>(), T, L.Hq, L.D, L.window, {dpos.get<int32_t>(), dseq.get<int32_t>()},
                              {dtab.get<int32_t>(), mb}, view, max_context, out.get<bf16>(), scratch.get(), env.stream);
      },
      env);
  double pairs = 0;
  for (int p = 0; p < T; ++p) pairs += L.window > 0 ? std::min(p + 1, L.window) : p + 1;
  const double flops = 4.0 * pairs * L.Hq * L.D;
  const double bytes = 2.0 * qn * 2 + 2.0 * nb * block_bytes;
  return {"attention", fmt::format("prefill {} {} T={}", L.name, fp8 ? "fp8" : "bf16", T), bytes, flops, us};
}

std::vector<KernelCase> attention_cases(const KernelBenchEnv& env) {
  std::vector<KernelCase> out;
  for (const bool fp8 : {false, true})
    for (const int ctx : {512, 4096})
      for (const int B : {1, 16, 64}) {
        const std::vector<KernelCase> s = decode_cases(kSliding, fp8, B, ctx, env);
        const std::vector<KernelCase> g = decode_cases(kGlobal, fp8, B, ctx, env);
        out.insert(out.end(), s.begin(), s.end());
        out.insert(out.end(), g.begin(), g.end());
        if (s.size() != g.size()) continue;  // one shape filtered out (QUENCH_BENCH_CASE)
        // The 12B's attention share of one decode step: 40 sliding + 8 global layers (attention
        // alone: fused / split+combine; with q/k/v post-processing: 2 launches / folded). Lines
        // are paired by position: decode_cases returns the same kinds in the same order.
        for (size_t i = 0; i < s.size() && i < g.size(); ++i) {
          if (s[i].name.find("probe") != std::string::npos) continue;
          const char* kind = i == 0 ? "" : s[i].name.find("split+combine") != std::string::npos ? " split+combine"
                                       : s[i].name.find("folded") != std::string::npos        ? " qkv+attention folded"
                                                                                               : " qkv+attention (2 launches)";
          out.push_back({"attention", fmt::format("decode 48 layers {} B={} ctx={}{}", fp8 ? "fp8" : "bf16", B, ctx, kind),
                         40 * s[i].bytes + 8 * g[i].bytes, 40 * s[i].flops + 8 * g[i].flops,
                         40 * s[i].us + 8 * g[i].us});
        }
      }
  for (const bool fp8 : {false, true}) {
    if (!wanted(fmt::format("prefill sliding {} T=2048", fp8 ? "fp8" : "bf16")) ||
        !wanted(fmt::format("prefill global {} T=2048", fp8 ? "fp8" : "bf16")))
      continue;
    const KernelCase s = prefill_case(kSliding, fp8, 2048, env), g = prefill_case(kGlobal, fp8, 2048, env);
    out.push_back(s);
    out.push_back(g);
    out.push_back({"attention", fmt::format("prefill 48 layers (40 sliding + 8 global) {} T=2048", fp8 ? "fp8" : "bf16"),
                   40 * s.bytes + 8 * g.bytes, 40 * s.flops + 8 * g.flops, 40 * s.us + 8 * g.us});
  }
  return out;
}

const bool registered = register_kernel_bench("attention", attention_cases);

}  // namespace
}  // namespace quench::cli
#endif  // QUENCH_HAVE_CUDA
