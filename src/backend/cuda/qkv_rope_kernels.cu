// quench/backend/cuda/qkv_rope_kernels.cu: q/k norms, weight-less v norm, RoPE (default and
// proportional) and the write of K/V into the paged cache (gemma4-architecture.md §2.4, §2.5).
#include <cuda_fp8.h>

#include "backend/cuda/cuda_utils.h"
#include "backend/cuda/kernels.h"

namespace quench::cuda {
namespace {

__device__ float block_sum_small(float v, float* red) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  float s = 0.0f;
  const int nw = (blockDim.x + 31) / 32;
  for (int i = 0; i < nw; ++i) s += red[i];
  return s;
}

template <typename T>
__device__ __forceinline__ void store_kv(T* dst, float v, float inv_scale);
template <>
__device__ __forceinline__ void store_kv<bf16>(bf16* dst, float v, float) { *dst = __float2bfloat16(v); }
template <>
__device__ __forceinline__ void store_kv<uint8_t>(uint8_t* dst, float v, float inv_scale) {
  *dst = static_cast<uint8_t>(__nv_cvt_float_to_fp8(v * inv_scale, __NV_SATFINITE, __NV_E4M3));
}

/// One block per (token, head); threads = D/2 rounded up to a warp: thread j handles the RoPE
/// pair (j, j + D/2). Heads 0..Hq-1 are query heads; Hq..Hq+Hkv-1 are KV heads (k and v).
template <typename CacheT>
__global__ void qkv_kernel(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                           int Hq, int Hkv, int D, const float* __restrict__ q_norm, const float* __restrict__ k_norm,
                           const float* __restrict__ inv_freq, float eps, TokenMeta meta, BlockTables tables,
                           KvLayerView cache, bf16* __restrict__ q_out) {
  __shared__ float red[32];
  const int t = blockIdx.x, head = blockIdx.y, j = threadIdx.x, half = D / 2;
  const bool active = j < half;
  const int pos = meta.pos[t];
  float c = 1.0f, s = 0.0f;
  if (active) {
    const float ang = static_cast<float>(pos) * inv_freq[j];
    c = cosf(ang);
    s = sinf(ang);
  }
  if (head < Hq) {
    const float* src = q + (static_cast<size_t>(t) * Hq + head) * D;
    const float a = active ? src[j] : 0.0f, b = active ? src[j + half] : 0.0f;
    const float inv = rsqrtf(block_sum_small(a * a + b * b, red) / D + eps);
    if (active) {
      const float x0 = a * inv * q_norm[j], x1 = b * inv * q_norm[j + half];
      bf16* dst = q_out + (static_cast<size_t>(t) * Hq + head) * D;
      dst[j] = __float2bfloat16(x0 * c - x1 * s);
      dst[j + half] = __float2bfloat16(x1 * c + x0 * s);
    }
    return;
  }
  const int h = head - Hq;
  const int seq = meta.seq[t];
  const int block = tables.table[static_cast<size_t>(seq) * tables.max_blocks + pos / cache.block_size];
  const size_t slot = static_cast<size_t>(block) * cache.block_size + pos % cache.block_size;
  const size_t off = (slot * cache.num_heads + h) * D;
  // K: norm with weight, then RoPE.
  const float* ks = k + (static_cast<size_t>(t) * Hkv + h) * D;
  const float ka = active ? ks[j] : 0.0f, kb = active ? ks[j + half] : 0.0f;
  const float kinv = rsqrtf(block_sum_small(ka * ka + kb * kb, red) / D + eps);
  // V: weight-less norm (of the raw k projection on k_eq_v layers).
  const float* vs = v + (static_cast<size_t>(t) * Hkv + h) * D;
  const float va = active ? vs[j] : 0.0f, vb = active ? vs[j + half] : 0.0f;
  const float vinv = rsqrtf(block_sum_small(va * va + vb * vb, red) / D + eps);
  if (!active || block < 0) return;
  CacheT* kc = static_cast<CacheT*>(cache.k) + off;
  CacheT* vc = static_cast<CacheT*>(cache.v) + off;
  const float x0 = ka * kinv * k_norm[j], x1 = kb * kinv * k_norm[j + half];
  const float inv_ks = 1.0f / cache.k_scale, inv_vs = 1.0f / cache.v_scale;
  store_kv<CacheT>(kc + j, x0 * c - x1 * s, inv_ks);
  store_kv<CacheT>(kc + j + half, x1 * c + x0 * s, inv_ks);
  store_kv<CacheT>(vc + j, va * vinv, inv_vs);
  store_kv<CacheT>(vc + j + half, vb * vinv, inv_vs);
}

}  // namespace

void qkv_norm_rope_store(const float* q, const float* k, const float* v, int T, int Hq, int Hkv, int D,
                         const float* q_norm, const float* k_norm, const float* inv_freq, float eps, TokenMeta meta,
                         BlockTables tables, KvLayerView cache, bf16* q_out, cudaStream_t stream) {
  if (T == 0) return;
  if (D % 2 || D > 2048) throw InvalidArgument("qkv_norm_rope_store: head_dim must be even and <= 2048");
  const int threads = ((D / 2 + 31) / 32) * 32;
  dim3 grid(T, Hq + Hkv);
  if (cache.fp8)
    qkv_kernel<uint8_t><<<grid, threads, 0, stream>>>(q, k, v, Hq, Hkv, D, q_norm, k_norm, inv_freq, eps, meta,
                                                      tables, cache, q_out);
  else
    qkv_kernel<bf16><<<grid, threads, 0, stream>>>(q, k, v, Hq, Hkv, D, q_norm, k_norm, inv_freq, eps, meta, tables,
                                                   cache, q_out);
  QUENCH_CUDA_LAUNCH_CHECK();
}

}  // namespace quench::cuda
