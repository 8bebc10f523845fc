// quench/backend/cuda/norm_kernels.cu: embedding lookup, RMSNorm and the fused residual ends.
#include "backend/cuda/cuda_utils.h"
#include "backend/cuda/kernels.h"

namespace quench::cuda {
namespace {

constexpr int kNormThreads = 256;

/// Block-wide sum of one float per thread (blockDim.x multiple of 32, <= 1024).
__device__ float block_sum(float v) {
  __shared__ float warp_sums[32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();  // warp_sums may still be read by a previous call
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  const int nwarps = blockDim.x / 32;
  float s = lane < nwarps ? warp_sums[lane] : 0.0f;
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  return s;
}

__global__ void embed_kernel(const int32_t* ids, const bf16* table, int H, float scale, float* x) {
  const int t = blockIdx.x;
  const bf16* row = table + static_cast<size_t>(ids[t]) * H;
  float* out = x + static_cast<size_t>(t) * H;
  for (int i = threadIdx.x; i < H; i += blockDim.x) out[i] = __bfloat162float(row[i]) * scale;
}

__global__ void rmsnorm_kernel(const float* x, int x_stride, const float* w, int H, float eps, bf16* out) {
  const int t = blockIdx.x;
  const float* row = x + static_cast<size_t>(t) * x_stride;
  float ss = 0.0f;
  for (int i = threadIdx.x; i < H; i += blockDim.x) ss += row[i] * row[i];
  const float inv = rsqrtf(block_sum(ss) / H + eps);
  bf16* o = out + static_cast<size_t>(t) * H;
  for (int i = threadIdx.x; i < H; i += blockDim.x) {
    const float v = row[i] * inv;
    o[i] = __float2bfloat16(w ? v * w[i] : v);
  }
}

__global__ void residual_post_norm_kernel(float* x, const float* y, const float* w_post, float scalar, int H,
                                          float eps, const float* w_next, bf16* next) {
  const int t = blockIdx.x;
  float* xr = x + static_cast<size_t>(t) * H;
  const float* yr = y + static_cast<size_t>(t) * H;
  float ss = 0.0f;
  for (int i = threadIdx.x; i < H; i += blockDim.x) ss += yr[i] * yr[i];
  const float inv = rsqrtf(block_sum(ss) / H + eps);
  float ss2 = 0.0f;
  for (int i = threadIdx.x; i < H; i += blockDim.x) {
    const float v = (xr[i] + yr[i] * inv * w_post[i]) * scalar;
    xr[i] = v;
    ss2 += v * v;
  }
  if (!w_next) return;
  const float inv2 = rsqrtf(block_sum(ss2) / H + eps);
  bf16* o = next + static_cast<size_t>(t) * H;
  for (int i = threadIdx.x; i < H; i += blockDim.x) o[i] = __float2bfloat16(xr[i] * inv2 * w_next[i]);
}

}  // namespace

void embed(const int32_t* ids, int T, const bf16* table, int H, float scale, float* x, cudaStream_t stream) {
  if (T == 0) return;
  embed_kernel<<<T, kNormThreads, 0, stream>>>(ids, table, H, scale, x);
  QUENCH_CUDA_LAUNCH_CHECK();
}

void rmsnorm_to_bf16(const float* x, int x_stride, const float* w, int T, int H, float eps, bf16* out,
                     cudaStream_t stream) {
  if (T == 0) return;
  rmsnorm_kernel<<<T, kNormThreads, 0, stream>>>(x, x_stride, w, H, eps, out);
  QUENCH_CUDA_LAUNCH_CHECK();
}

void residual_post_norm(float* x, const float* y, const float* w_post, float scalar, int T, int H, float eps,
                        const float* w_next, bf16* next, cudaStream_t stream) {
  if (T == 0) return;
  residual_post_norm_kernel<<<T, kNormThreads, 0, stream>>>(x, y, w_post, scalar, H, eps, w_next, next);
  QUENCH_CUDA_LAUNCH_CHECK();
}

}  // namespace quench::cuda
