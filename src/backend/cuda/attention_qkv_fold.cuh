// quench/backend/cuda/attention_qkv_fold.cuh: qkv_norm_rope_store's arithmetic (q/k RMS norms
// with weights, the weight-less v norm, NeoX RoPE; gemma4-architecture.md §2.4, §2.5) as device
// pieces the single-launch decode kernels run themselves when they take the projections instead
// of a prepared query (qkv_paged_attention_decode, kernels.h). Same formulas and rounding as
// qkv_rope_kernels.cu: fp32 throughout, angles pos * inv_freq in fp32, the query rounded to bf16,
// cache values stored as bf16 (RNE) or E4M3 of value / scale (RNE, saturating).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cstdint>

#include "backend/cuda/kernels.h"

namespace quench::cuda::detail {

/// The projections and norm / RoPE parameters of one layer's decode step (device pointers).
/// qp fp32 [T, Hq*D], kp / vp fp32 [T, Hkv*D] (vp = kp on k_eq_v layers); q_norm, k_norm fp32
/// [D]; inv_freq fp32 [D/2].
struct QkvFold {
  const float* qp = nullptr;
  const float* kp = nullptr;
  const float* vp = nullptr;
  const float* q_norm = nullptr;
  const float* k_norm = nullptr;
  const float* inv_freq = nullptr;
  float eps = 1e-6f;
};

__device__ __forceinline__ float fold_warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

/// 8 fp32 values (16-byte aligned) -> registers.
__device__ __forceinline__ void load_f32x8(const float* p, float (&x)[8]) {
  const float4 a = *reinterpret_cast<const float4*>(p), b = *reinterpret_cast<const float4*>(p + 4);
  x[0] = a.x, x[1] = a.y, x[2] = a.z, x[3] = a.w, x[4] = b.x, x[5] = b.y, x[6] = b.z, x[7] = b.w;
}

/// Stores 8 values into the cache as the cache's element type (bf16: one 16-byte store; FP8:
/// codes of value * inv_scale, one 8-byte store).
template <typename CacheT>
__device__ __forceinline__ void store_cache8(CacheT* dst, const float (&y)[8], float inv_scale);
template <>
__device__ __forceinline__ void store_cache8<bf16>(bf16* dst, const float (&y)[8], float) {
  uint32_t w[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(y[2 * i], y[2 * i + 1]);
    w[i] = *reinterpret_cast<const uint32_t*>(&h);
  }
  *reinterpret_cast<uint4*>(dst) = make_uint4(w[0], w[1], w[2], w[3]);
}
template <>
__device__ __forceinline__ void store_cache8<uint8_t>(uint8_t* dst, const float (&y)[8], float inv_scale) {
  uint32_t w[2] = {0, 0};
#pragma unroll
  for (int i = 0; i < 8; ++i)
    w[i / 4] |= static_cast<uint32_t>(__nv_cvt_float_to_fp8(y[i] * inv_scale, __NV_SATFINITE, __NV_E4M3)) << (8 * (i % 4));
  *reinterpret_cast<uint2*>(dst) = make_uint2(w[0], w[1]);
}

/// Makes this thread's global writes visible to the cp.async / L2 loads other threads of the CTA
/// issue after the next barrier (cp.async may use the async proxy).
__device__ __forceinline__ void fold_fence() {
  __threadfence_block();
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("fence.proxy.async;" ::: "memory");
#endif
}

}  // namespace quench::cuda::detail
