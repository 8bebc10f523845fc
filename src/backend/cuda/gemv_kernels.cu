// quench/backend/cuda/gemv_kernels.cu: skinny GEMMs (M <= 8 activation rows) for decode, one per
// weight format, plus NVFP4/FP8 -> bf16 dequantization for prefill GEMMs.
//
// Decode is bound by the bytes of W: each warp streams whole rows of W with 16-byte loads
// (several in flight per lane), multiplies them with all M activation rows (read through L1)
// and reduces in fp32. Formats: bf16; FP8 E4M3 with a per-tensor scale; NVFP4 (packed E2M1,
// E4M3 per-16 scale, fp32 global scale; nvfp4-modelopt-format.md §1, §3) dequantized in
// registers, never in memory.
#include <cuda_fp8.h>

#include "backend/cuda/cuda_utils.h"
#include "backend/cuda/kernels.h"

namespace quench::cuda {
namespace {

constexpr int kWarps = 8;            // warps per block; each warp owns rows

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

/// 8 bf16 packed in a uint4 -> 8 floats.
__device__ __forceinline__ void bf16x8_to_f32(const uint4& u, float* f) {
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&u);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 p = __bfloat1622float2(h[i]);
    f[2 * i] = p.x;
    f[2 * i + 1] = p.y;
  }
}

__device__ __forceinline__ float fp8_to_f32(uint8_t b) {
  __half_raw hr = __nv_cvt_fp8_to_halfraw(static_cast<__nv_fp8_storage_t>(b), __NV_E4M3);
  return __half2float(__half(hr));
}

template <int M>
__global__ void __launch_bounds__(kWarps * 32) gemv_bf16_kernel(const bf16* __restrict__ W, int N, int K,
                                                                const bf16* __restrict__ x, float* __restrict__ y) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int n = blockIdx.x * kWarps + warp;
  if (n >= N) return;
  const uint4* wrow = reinterpret_cast<const uint4*>(W + static_cast<size_t>(n) * K);
  const int chunks = K / 8;
  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.0f;
#pragma unroll 4
  for (int c = lane; c < chunks; c += 32) {
    float w[8];
    bf16x8_to_f32(__ldg(wrow + c), w);
#pragma unroll
    for (int m = 0; m < M; ++m) {
      float xv[8];
      bf16x8_to_f32(__ldg(reinterpret_cast<const uint4*>(x + static_cast<size_t>(m) * K) + c), xv);
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[m] = fmaf(w[i], xv[i], acc[m]);
    }
  }
#pragma unroll
  for (int m = 0; m < M; ++m) {
    const float s = warp_sum(acc[m]);
    if (lane == 0) y[static_cast<size_t>(m) * N + n] = s;
  }
}

template <int M>
__global__ void __launch_bounds__(kWarps * 32) gemv_fp8_kernel(const uint8_t* __restrict__ W, float scale, int N,
                                                               int K, const bf16* __restrict__ x,
                                                               float* __restrict__ y) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int n = blockIdx.x * kWarps + warp;
  if (n >= N) return;
  const uint4* wrow = reinterpret_cast<const uint4*>(W + static_cast<size_t>(n) * K);
  const int chunks = K / 16;
  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.0f;
#pragma unroll 2
  for (int c = lane; c < chunks; c += 32) {
    const uint4 raw = __ldg(wrow + c);
    const uint8_t* b = reinterpret_cast<const uint8_t*>(&raw);
    float w[16];
#pragma unroll
    for (int i = 0; i < 16; ++i) w[i] = fp8_to_f32(b[i]) * scale;
#pragma unroll
    for (int m = 0; m < M; ++m) {
      const uint4* xr = reinterpret_cast<const uint4*>(x + static_cast<size_t>(m) * K) + 2 * c;
      float xv[16];
      bf16x8_to_f32(__ldg(xr), xv);
      bf16x8_to_f32(__ldg(xr + 1), xv + 8);
#pragma unroll
      for (int i = 0; i < 16; ++i) acc[m] = fmaf(w[i], xv[i], acc[m]);
    }
  }
#pragma unroll
  for (int m = 0; m < M; ++m) {
    const float s = warp_sum(acc[m]);
    if (lane == 0) y[static_cast<size_t>(m) * N + n] = s;
  }
}

/// E2M1 magnitudes by code (bit 3 = sign).
__device__ __forceinline__ float e2m1_value(uint32_t code, const float* lut) { return lut[code & 15u]; }

template <int M>
__global__ void __launch_bounds__(kWarps * 32) gemv_nvfp4_kernel(const uint8_t* __restrict__ Wq,
                                                                 const uint8_t* __restrict__ scales, float gscale,
                                                                 int N, int K, const bf16* __restrict__ x,
                                                                 float* __restrict__ y) {
  __shared__ float lut[16];
  if (threadIdx.x < 16) {
    const float mag[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
    lut[threadIdx.x] = (threadIdx.x & 8) ? -mag[threadIdx.x & 7] : mag[threadIdx.x & 7];
  }
  __syncthreads();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int n = blockIdx.x * kWarps + warp;
  if (n >= N) return;
  // One unit = one 16-element block: 8 packed bytes (uint2) + 1 scale byte.
  const uint2* wrow = reinterpret_cast<const uint2*>(Wq + static_cast<size_t>(n) * (K / 2));
  const uint8_t* srow = scales + static_cast<size_t>(n) * (K / 16);
  const int units = K / 16;
  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.0f;
#pragma unroll 4
  for (int u = lane; u < units; u += 32) {
    const uint2 raw = __ldg(wrow + u);
    const float s = fp8_to_f32(__ldg(srow + u)) * gscale;
    float w[16];
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const uint32_t word = i < 4 ? raw.x : raw.y;
      const uint32_t byte = (word >> (8 * (i & 3))) & 0xffu;
      w[2 * i] = e2m1_value(byte & 15u, lut);
      w[2 * i + 1] = e2m1_value(byte >> 4, lut);
    }
#pragma unroll
    for (int m = 0; m < M; ++m) {
      const uint4* xr = reinterpret_cast<const uint4*>(x + static_cast<size_t>(m) * K) + 2 * u;
      float xv[16];
      bf16x8_to_f32(__ldg(xr), xv);
      bf16x8_to_f32(__ldg(xr + 1), xv + 8);
      float part = 0.0f;
#pragma unroll
      for (int i = 0; i < 16; ++i) part = fmaf(w[i], xv[i], part);
      acc[m] = fmaf(part, s, acc[m]);
    }
  }
#pragma unroll
  for (int m = 0; m < M; ++m) {
    const float r = warp_sum(acc[m]);
    if (lane == 0) y[static_cast<size_t>(m) * N + n] = r;
  }
}

__global__ void dequant_nvfp4_kernel(const uint8_t* __restrict__ Wq, const uint8_t* __restrict__ scales, float gscale,
                                     size_t blocks, bf16* __restrict__ out) {
  const float mag[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  for (size_t b = blockIdx.x * size_t(blockDim.x) + threadIdx.x; b < blocks; b += size_t(gridDim.x) * blockDim.x) {
    const float s = fp8_to_f32(scales[b]);
    const uint8_t* p = Wq + b * 8;
    bf16* o = out + b * 16;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const uint8_t byte = p[i];
      const uint8_t lo = byte & 15u, hi = byte >> 4;
      o[2 * i] = __float2bfloat16(((lo & 8) ? -mag[lo & 7] : mag[lo & 7]) * s * gscale);
      o[2 * i + 1] = __float2bfloat16(((hi & 8) ? -mag[hi & 7] : mag[hi & 7]) * s * gscale);
    }
  }
}

__global__ void dequant_fp8_kernel(const uint8_t* __restrict__ W, float scale, size_t n, bf16* __restrict__ out) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    out[i] = __float2bfloat16(fp8_to_f32(W[i]) * scale);
}

template <template <int> class Launch, typename... Args>
void dispatch_m(int M, Args... args) {
  switch (M) {
    case 1: Launch<1>::run(args...); break;
    case 2: Launch<2>::run(args...); break;
    case 3: Launch<3>::run(args...); break;
    case 4: Launch<4>::run(args...); break;
    case 5: Launch<5>::run(args...); break;
    case 6: Launch<6>::run(args...); break;
    case 7: Launch<7>::run(args...); break;
    case 8: Launch<8>::run(args...); break;
    default: throw InvalidArgument("gemv: M must be in 1..8");
  }
}

template <int M>
struct LaunchBf16 {
  static void run(const bf16* W, int N, int K, const bf16* x, float* y, cudaStream_t s) {
    gemv_bf16_kernel<M><<<(N + kWarps - 1) / kWarps, kWarps * 32, 0, s>>>(W, N, K, x, y);
  }
};
template <int M>
struct LaunchFp8 {
  static void run(const uint8_t* W, float scale, int N, int K, const bf16* x, float* y, cudaStream_t s) {
    gemv_fp8_kernel<M><<<(N + kWarps - 1) / kWarps, kWarps * 32, 0, s>>>(W, scale, N, K, x, y);
  }
};
template <int M>
struct LaunchNvfp4 {
  static void run(const uint8_t* Wq, const uint8_t* sc, float g, int N, int K, const bf16* x, float* y,
                  cudaStream_t s) {
    gemv_nvfp4_kernel<M><<<(N + kWarps - 1) / kWarps, kWarps * 32, 0, s>>>(Wq, sc, g, N, K, x, y);
  }
};

int grid_for(size_t n) {
  const size_t b = (n + 255) / 256;
  return static_cast<int>(b < 65535 * 8 ? b : 65535 * 8);
}

}  // namespace

void gemv_bf16(const bf16* W, int N, int K, const bf16* x, int M, float* y, cudaStream_t stream) {
  if (K % 8) throw InvalidArgument("gemv_bf16: K must be a multiple of 8");
  dispatch_m<LaunchBf16>(M, W, N, K, x, y, stream);
  QUENCH_CUDA_LAUNCH_CHECK();
}

void gemv_fp8(const uint8_t* W, float scale, int N, int K, const bf16* x, int M, float* y, cudaStream_t stream) {
  if (K % 16) throw InvalidArgument("gemv_fp8: K must be a multiple of 16");
  dispatch_m<LaunchFp8>(M, W, scale, N, K, x, y, stream);
  QUENCH_CUDA_LAUNCH_CHECK();
}

void gemv_nvfp4(const uint8_t* Wq, const uint8_t* scales, float global_scale, int N, int K, const bf16* x, int M,
                float* y, cudaStream_t stream) {
  if (K % 16) throw InvalidArgument("gemv_nvfp4: K must be a multiple of 16");
  dispatch_m<LaunchNvfp4>(M, Wq, scales, global_scale, N, K, x, y, stream);
  QUENCH_CUDA_LAUNCH_CHECK();
}

void dequant_nvfp4_to_bf16(const uint8_t* Wq, const uint8_t* scales, float global_scale, int N, int K, bf16* out,
                           cudaStream_t stream) {
  const size_t blocks = static_cast<size_t>(N) * (K / 16);
  dequant_nvfp4_kernel<<<grid_for(blocks), 256, 0, stream>>>(Wq, scales, global_scale, blocks, out);
  QUENCH_CUDA_LAUNCH_CHECK();
}

void dequant_fp8_to_bf16(const uint8_t* W, float scale, int N, int K, bf16* out, cudaStream_t stream) {
  const size_t n = static_cast<size_t>(N) * K;
  dequant_fp8_kernel<<<grid_for(n), 256, 0, stream>>>(W, scale, n, out);
  QUENCH_CUDA_LAUNCH_CHECK();
}

}  // namespace quench::cuda
