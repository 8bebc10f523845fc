// quench/backend/cuda/qkv_rope_kernels.cu: q/k norms, weight-less v norm, RoPE (default and
// proportional) and the write of K/V into the paged cache (gemma4-architecture.md §2.4, §2.5).
// Launched with Programmatic Dependent Launch (pdl.cuh): the RoPE angles (position, inv_freq)
// are computed before waiting on the projection GEMV that precedes it in a decode step.
#include <cuda_fp8.h>

#include "backend/cuda/cuda_utils.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/pdl.cuh"

namespace quench::cuda {
namespace {

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <typename T>
__device__ __forceinline__ void store_kv(T* dst, float v, float inv_scale);
template <>
__device__ __forceinline__ void store_kv<bf16>(bf16* dst, float v, float) { *dst = __float2bfloat16(v); }
template <>
__device__ __forceinline__ void store_kv<uint8_t>(uint8_t* dst, float v, float inv_scale) {
  *dst = static_cast<uint8_t>(__nv_cvt_float_to_fp8(v * inv_scale, __NV_SATFINITE, __NV_E4M3));
}

constexpr int kWarpsPerBlock = 4;

/// One warp per (token, head) unit; heads 0..Hq-1 are query heads, Hq..Hq+Hkv-1 KV heads (k and
/// v). Lane l handles the RoPE pairs (j, j + D/2) for j = l + 32 i, i < PPL (coalesced loads; the
/// norms are warp reductions, no block barrier).
template <int PPL, typename CacheT>
__global__ void __launch_bounds__(32 * kWarpsPerBlock)
    qkv_kernel(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v, int T, int Hq,
               int Hkv, int D, const float* __restrict__ q_norm, const float* __restrict__ k_norm,
               const float* __restrict__ inv_freq, float eps, TokenMeta meta, BlockTables tables, KvLayerView cache,
               bf16* __restrict__ q_out) {
  const int unit = blockIdx.x * kWarpsPerBlock + threadIdx.x / 32, lane = threadIdx.x % 32;
  const int H = Hq + Hkv;
  if (unit >= T * H) return;
  const int t = unit / H, head = unit % H, half = D / 2;
  const int pos = meta.pos[t];
  float c[PPL], s[PPL];
#pragma unroll
  for (int i = 0; i < PPL; ++i) {
    const int j = lane + 32 * i;
    c[i] = 1.0f;
    s[i] = 0.0f;
    if (j < half) sincosf(static_cast<float>(pos) * inv_freq[j], &s[i], &c[i]);
  }
  pdl_wait();  // the projections (and, for the cache, nothing older) come from the previous kernel
  if (head < Hq) {
    const float* src = q + (static_cast<size_t>(t) * Hq + head) * D;
    float a[PPL], b[PPL], ss = 0.0f;
#pragma unroll
    for (int i = 0; i < PPL; ++i) {
      const int j = lane + 32 * i;
      a[i] = j < half ? src[j] : 0.0f;
      b[i] = j < half ? src[j + half] : 0.0f;
      ss += a[i] * a[i] + b[i] * b[i];
    }
    const float inv = rsqrtf(warp_sum(ss) / D + eps);
    bf16* dst = q_out + (static_cast<size_t>(t) * Hq + head) * D;
#pragma unroll
    for (int i = 0; i < PPL; ++i) {
      const int j = lane + 32 * i;
      if (j >= half) continue;
      const float x0 = a[i] * inv * q_norm[j], x1 = b[i] * inv * q_norm[j + half];
      dst[j] = __float2bfloat16(x0 * c[i] - x1 * s[i]);
      dst[j + half] = __float2bfloat16(x1 * c[i] + x0 * s[i]);
    }
    return;
  }
  const int h = head - Hq;
  const int seq = meta.seq[t];
  const int block = tables.table[static_cast<size_t>(seq) * tables.max_blocks + pos / cache.block_size];
  if (block < 0) return;
  const size_t slot = static_cast<size_t>(block) * cache.block_size + pos % cache.block_size;
  const size_t off = (slot * cache.num_heads + h) * D;
  const float* ks = k + (static_cast<size_t>(t) * Hkv + h) * D;
  const float* vs = v + (static_cast<size_t>(t) * Hkv + h) * D;
  float ka[PPL], kb[PPL], va[PPL], vb[PPL], kss = 0.0f, vss = 0.0f;
#pragma unroll
  for (int i = 0; i < PPL; ++i) {
    const int j = lane + 32 * i;
    const bool on = j < half;
    ka[i] = on ? ks[j] : 0.0f;
    kb[i] = on ? ks[j + half] : 0.0f;
    va[i] = on ? vs[j] : 0.0f;
    vb[i] = on ? vs[j + half] : 0.0f;
    kss += ka[i] * ka[i] + kb[i] * kb[i];
    vss += va[i] * va[i] + vb[i] * vb[i];
  }
  // K: norm with weight, then RoPE. V: weight-less norm (of the raw k projection on k_eq_v layers).
  const float kinv = rsqrtf(warp_sum(kss) / D + eps), vinv = rsqrtf(warp_sum(vss) / D + eps);
  CacheT* kc = static_cast<CacheT*>(cache.k) + off;
  CacheT* vc = static_cast<CacheT*>(cache.v) + off;
  const float inv_ks = 1.0f / cache.k_scale, inv_vs = 1.0f / cache.v_scale;
#pragma unroll
  for (int i = 0; i < PPL; ++i) {
    const int j = lane + 32 * i;
    if (j >= half) continue;
    const float x0 = ka[i] * kinv * k_norm[j], x1 = kb[i] * kinv * k_norm[j + half];
    store_kv<CacheT>(kc + j, x0 * c[i] - x1 * s[i], inv_ks);
    store_kv<CacheT>(kc + j + half, x1 * c[i] + x0 * s[i], inv_ks);
    store_kv<CacheT>(vc + j, va[i] * vinv, inv_vs);
    store_kv<CacheT>(vc + j + half, vb[i] * vinv, inv_vs);
  }
}

template <int PPL>
void launch_qkv(const float* q, const float* k, const float* v, int T, int Hq, int Hkv, int D, const float* q_norm,
                const float* k_norm, const float* inv_freq, float eps, TokenMeta meta, BlockTables tables,
                KvLayerView cache, bf16* q_out, cudaStream_t stream) {
  const size_t units = static_cast<size_t>(T) * (Hq + Hkv);
  const unsigned blocks = static_cast<unsigned>((units + kWarpsPerBlock - 1) / kWarpsPerBlock);
  if (cache.fp8)
    launch_kernel(qkv_kernel<PPL, uint8_t>, dim3(blocks), dim3(32 * kWarpsPerBlock), stream, q, k, v, T, Hq, Hkv, D,
                  q_norm, k_norm, inv_freq, eps, meta, tables, cache, q_out);
  else
    launch_kernel(qkv_kernel<PPL, bf16>, dim3(blocks), dim3(32 * kWarpsPerBlock), stream, q, k, v, T, Hq, Hkv, D,
                  q_norm, k_norm, inv_freq, eps, meta, tables, cache, q_out);
}

}  // namespace

void qkv_norm_rope_store(const float* q, const float* k, const float* v, int T, int Hq, int Hkv, int D,
                         const float* q_norm, const float* k_norm, const float* inv_freq, float eps, TokenMeta meta,
                         BlockTables tables, KvLayerView cache, bf16* q_out, cudaStream_t stream) {
  if (T == 0) return;
  if (D % 2 || D > 2048) throw InvalidArgument("qkv_norm_rope_store: head_dim must be even and <= 2048");
  const int ppl = (D / 2 + 31) / 32;  // RoPE pairs per lane
  if (ppl <= 1) launch_qkv<1>(q, k, v, T, Hq, Hkv, D, q_norm, k_norm, inv_freq, eps, meta, tables, cache, q_out, stream);
  else if (ppl <= 2) launch_qkv<2>(q, k, v, T, Hq, Hkv, D, q_norm, k_norm, inv_freq, eps, meta, tables, cache, q_out, stream);
  else if (ppl <= 4) launch_qkv<4>(q, k, v, T, Hq, Hkv, D, q_norm, k_norm, inv_freq, eps, meta, tables, cache, q_out, stream);
  else if (ppl <= 8) launch_qkv<8>(q, k, v, T, Hq, Hkv, D, q_norm, k_norm, inv_freq, eps, meta, tables, cache, q_out, stream);
  else if (ppl <= 16) launch_qkv<16>(q, k, v, T, Hq, Hkv, D, q_norm, k_norm, inv_freq, eps, meta, tables, cache, q_out, stream);
  else launch_qkv<32>(q, k, v, T, Hq, Hkv, D, q_norm, k_norm, inv_freq, eps, meta, tables, cache, q_out, stream);
}

}  // namespace quench::cuda
