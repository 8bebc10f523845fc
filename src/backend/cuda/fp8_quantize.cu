// quench/backend/cuda/fp8_quantize.cu: bf16 activations -> FP8 E4M3 with a static per-tensor
// scale (fp8_gemm.h), one 16-byte load and one 8-byte store per thread.
#include <cuda_fp8.h>

#include <cmath>
#include <string>

#include "backend/cuda/fp8_gemm.h"

namespace quench::cuda {
namespace {

__device__ __forceinline__ uint8_t to_e4m3(float v) {
  return static_cast<uint8_t>(__nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3));
}

/// Thread i converts x[8i .. 8i+8) (n8 = n / 8 such groups); the last n % 8 values go to thread 0
/// of the tail launch (`tail` = n8 * 8 .. n).
__global__ void quantize_fp8_kernel(const bf16* __restrict__ x, size_t n8, size_t n, float inv,
                                    uint8_t* __restrict__ out) {
  const size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (i < n8) {
    const uint4 u = reinterpret_cast<const uint4*>(x)[i];
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&u);
    uint32_t lo = 0, hi = 0;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const float2 f = __bfloat1622float2(h[j]);
      const uint32_t pair = uint32_t(to_e4m3(f.x * inv)) | (uint32_t(to_e4m3(f.y * inv)) << 8);
      if (j < 2) lo |= pair << (16 * j);
      else hi |= pair << (16 * (j - 2));
    }
    reinterpret_cast<uint2*>(out)[i] = make_uint2(lo, hi);
  } else if (i == n8) {
    for (size_t k = n8 * 8; k < n; ++k) out[k] = to_e4m3(__bfloat162float(x[k]) * inv);
  }
}

}  // namespace

void quantize_fp8_e4m3(const bf16* x, size_t n, float scale, uint8_t* out, cudaStream_t stream) {
  if (!(scale > 0.0f) || !std::isfinite(scale))
    throw InvalidArgument("quantize_fp8_e4m3: scale must be finite and > 0, got " + std::to_string(scale));
  if (n == 0) return;
  if ((reinterpret_cast<uintptr_t>(x) & 15u) || (reinterpret_cast<uintptr_t>(out) & 7u))
    throw InvalidArgument("quantize_fp8_e4m3: x must be 16-byte and out 8-byte aligned");
  const size_t n8 = n / 8, threads = n8 + 1;  // one extra thread takes the tail
  const unsigned blocks = static_cast<unsigned>((threads + 255) / 256);
  quantize_fp8_kernel<<<blocks, 256, 0, stream>>>(x, n8, n, 1.0f / scale, out);
  QUENCH_CUDA_LAUNCH_CHECK();
}

}  // namespace quench::cuda
