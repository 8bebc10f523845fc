// quench/backend/cuda/mma_gemm_dequant.cu: FP8 / NVFP4 weight -> bf16 [N, K] for the cuBLAS path
// above the mma_gemm crossover (prefill). Memory-bound: each thread reads one 16-byte unit
// (NVFP4: two 16-element blocks = 16 bytes of codes + 2 scale bytes; FP8: 16 codes) and writes
// its 16 or 32 bf16 as 16-byte stores, so a warp reads and writes contiguous runs.
//
// Values: bf16_rn(fl32(e2m1 · fl32(scale · weight_scale_2))) and bf16_rn(fl32(e4m3 · scale)): the
// fp32 values of io/dequant.h (ModelOpt's order: the block scale times the global scale first,
// nvfp4-modelopt-format.md §3), rounded once to bf16.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <string>

#include "backend/cuda/mma_gemm.h"

namespace quench::cuda {
namespace {

__device__ __forceinline__ float e4m3_to_f32(uint32_t b) {
  const __half_raw h = __nv_cvt_fp8_to_halfraw(static_cast<__nv_fp8_storage_t>(b), __NV_E4M3);
  return __half2float(__half(h));
}

__device__ __forceinline__ uint32_t pack_bf16(float a, float b) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(a, b);
  return *reinterpret_cast<const uint32_t*>(&v);
}

/// E2M1 magnitudes by the 3 low bits of a code.
__device__ __forceinline__ float e2m1(uint32_t code) {
  const uint32_t m = code & 7u;
  // 0, 0.5, 1, 1.5, 2, 3, 4, 6: m < 4 -> m / 2; else (2 + (m & 1)) * 2^((m/2) & 1).
  const float mag = m < 4 ? 0.5f * static_cast<float>(m) : static_cast<float>((2u + (m & 1u)) << ((m >> 1) & 1u));
  return (code & 8u) ? -mag : mag;
}

/// One thread per two 16-element blocks (16 bytes of codes, 2 scales); the last thread takes a
/// single block when N*K/16 is odd.
__global__ void dequant_nvfp4_kernel(const uint8_t* __restrict__ q, const uint8_t* __restrict__ sc, float g,
                                     size_t blocks, bf16* __restrict__ out) {
  // Work in pairs of 16-element blocks when both exist; blocks are contiguous in memory in the
  // same order as the scales ([N, K/16] row-major equals [N*K/16] flat).
  const size_t pairs = (blocks + 1) / 2;
  for (size_t p = blockIdx.x * size_t(blockDim.x) + threadIdx.x; p < pairs; p += size_t(gridDim.x) * blockDim.x) {
    const size_t b0 = 2 * p;
    const int nb = b0 + 1 < blocks ? 2 : 1;
    uint32_t w[4];
    if (nb == 2) {
      const uint4 v = *reinterpret_cast<const uint4*>(q + b0 * 8);
      w[0] = v.x, w[1] = v.y, w[2] = v.z, w[3] = v.w;
    } else {
      const uint2 v = *reinterpret_cast<const uint2*>(q + b0 * 8);
      w[0] = v.x, w[1] = v.y, w[2] = w[3] = 0;
    }
    for (int h = 0; h < nb; ++h) {
      const float t = e4m3_to_f32(sc[b0 + h]) * g;  // fl32(scale · g)
      uint32_t o[8];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const uint32_t word = w[2 * h + i];
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const uint32_t byte = (word >> (8 * j)) & 0xffu;
          o[4 * i + j] = pack_bf16(e2m1(byte & 15u) * t, e2m1(byte >> 4) * t);
        }
      }
      uint4* dst = reinterpret_cast<uint4*>(out + (b0 + h) * 16);
      dst[0] = make_uint4(o[0], o[1], o[2], o[3]);
      dst[1] = make_uint4(o[4], o[5], o[6], o[7]);
    }
  }
}

/// One thread per 16 FP8 codes.
__global__ void dequant_fp8_kernel(const uint8_t* __restrict__ w, float scale, size_t units, bf16* __restrict__ out) {
  for (size_t u = blockIdx.x * size_t(blockDim.x) + threadIdx.x; u < units; u += size_t(gridDim.x) * blockDim.x) {
    const uint4 v = *reinterpret_cast<const uint4*>(w + u * 16);
    const uint32_t in[4] = {v.x, v.y, v.z, v.w};
    uint32_t o[8];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const uint32_t b = in[i] >> (16 * j);
        o[2 * i + j] = pack_bf16(e4m3_to_f32(b & 0xffu) * scale, e4m3_to_f32((b >> 8) & 0xffu) * scale);
      }
    uint4* dst = reinterpret_cast<uint4*>(out + u * 16);
    dst[0] = make_uint4(o[0], o[1], o[2], o[3]);
    dst[1] = make_uint4(o[4], o[5], o[6], o[7]);
  }
}

int grid_for(size_t items, int threads) {
  const size_t b = (items + threads - 1) / threads;
  return static_cast<int>(std::max<size_t>(1, std::min<size_t>(b, 132 * 16)));
}

}  // namespace

void dequant_weight_to_bf16(const GemmWeight& W, bf16* out, cudaStream_t stream) {
  const std::string what = "dequant_weight_to_bf16 (N=" + std::to_string(W.N) + ", K=" + std::to_string(W.K) + ")";
  if (W.N <= 0 || W.K <= 0 || W.K % 16) throw InvalidArgument(what + ": K must be a positive multiple of 16");
  if (!W.data || !out) throw InvalidArgument(what + ": null weight or output");
  if (reinterpret_cast<uintptr_t>(W.data) % 16 || reinterpret_cast<uintptr_t>(out) % 16)
    throw InvalidArgument(what + ": weight and output must be 16-byte aligned");
  const size_t nk = static_cast<size_t>(W.N) * W.K;
  switch (W.format) {
    case WeightFormat::kNVFP4: {
      if (!W.block_scales) throw InvalidArgument(what + ": NVFP4 weight without block scales");
      const size_t blocks = nk / 16;
      dequant_nvfp4_kernel<<<grid_for((blocks + 1) / 2, 256), 256, 0, stream>>>(
          static_cast<const uint8_t*>(W.data), W.block_scales, W.scale, blocks, out);
      break;
    }
    case WeightFormat::kFP8:
      dequant_fp8_kernel<<<grid_for(nk / 16, 256), 256, 0, stream>>>(static_cast<const uint8_t*>(W.data), W.scale,
                                                                     nk / 16, out);
      break;
    case WeightFormat::kBF16:
      throw InvalidArgument(what + ": the weight is bf16 already");
  }
  QUENCH_CUDA_LAUNCH_CHECK();
}

}  // namespace quench::cuda
