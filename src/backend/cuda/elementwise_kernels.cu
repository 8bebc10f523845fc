// quench/backend/cuda/elementwise_kernels.cu: GeGLU activation, final-logit softcap, argmax.
#include <cfloat>

#include "backend/cuda/cuda_utils.h"
#include "backend/cuda/kernels.h"

namespace quench::cuda {
namespace {

/// PyTorch gelu(approximate="tanh"): 0.5 u (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3))).
__device__ __forceinline__ float gelu_tanh(float u) {
  constexpr float kAlpha = 0.7978845608028654f;  // sqrt(2/pi)
  return 0.5f * u * (1.0f + tanhf(kAlpha * (u + 0.044715f * u * u * u)));
}

__global__ void gelu_mul_kernel(const float* gate, int gs, const float* up, int us, int I, bf16* act) {
  const int t = blockIdx.y;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < I; i += gridDim.x * blockDim.x)
    act[static_cast<size_t>(t) * I + i] =
        __float2bfloat16(gelu_tanh(gate[static_cast<size_t>(t) * gs + i]) * up[static_cast<size_t>(t) * us + i]);
}

__global__ void softcap_kernel(float* v, size_t n, float cap) {
  const float inv = 1.0f / cap;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    v[i] = cap * tanhf(v[i] * inv);
}

__global__ void argmax_kernel(const float* logits, int V, int32_t* out) {
  const float* row = logits + static_cast<size_t>(blockIdx.x) * V;
  float best = -FLT_MAX;
  int idx = 0x7fffffff;
  for (int i = threadIdx.x; i < V; i += blockDim.x) {
    const float v = row[i];
    if (v > best) { best = v; idx = i; }
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float ob = __shfl_xor_sync(0xffffffffu, best, o);
    const int oi = __shfl_xor_sync(0xffffffffu, idx, o);
    if (ob > best || (ob == best && oi < idx)) { best = ob; idx = oi; }
  }
  __shared__ float sb[32];
  __shared__ int si[32];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) { sb[warp] = best; si[warp] = idx; }
  __syncthreads();
  if (warp == 0) {
    const int nw = blockDim.x / 32;
    best = lane < nw ? sb[lane] : -FLT_MAX;
    idx = lane < nw ? si[lane] : 0x7fffffff;
    for (int o = 16; o > 0; o >>= 1) {
      const float ob = __shfl_xor_sync(0xffffffffu, best, o);
      const int oi = __shfl_xor_sync(0xffffffffu, idx, o);
      if (ob > best || (ob == best && oi < idx)) { best = ob; idx = oi; }
    }
    if (lane == 0) out[blockIdx.x] = idx;
  }
}

}  // namespace

void gelu_tanh_mul(const float* gate, int gate_stride, const float* up, int up_stride, int T, int I, bf16* act,
                   cudaStream_t stream) {
  if (T == 0) return;
  dim3 grid((I + 255) / 256 < 64 ? (I + 255) / 256 : 64, T);
  gelu_mul_kernel<<<grid, 256, 0, stream>>>(gate, gate_stride, up, up_stride, I, act);
  QUENCH_CUDA_LAUNCH_CHECK();
}

void softcap(float* logits, size_t n, float cap, cudaStream_t stream) {
  if (cap <= 0.0f || n == 0) return;
  const int blocks = static_cast<int>((n + 255) / 256 < 4096 ? (n + 255) / 256 : 4096);
  softcap_kernel<<<blocks, 256, 0, stream>>>(logits, n, cap);
  QUENCH_CUDA_LAUNCH_CHECK();
}

void argmax_rows(const float* logits, int R, int V, int32_t* out, cudaStream_t stream) {
  if (R == 0) return;
  argmax_kernel<<<R, 1024, 0, stream>>>(logits, V, out);
  QUENCH_CUDA_LAUNCH_CHECK();
}

}  // namespace quench::cuda

namespace quench::cuda {
namespace {
__global__ void gather_rows_kernel(const bf16* in, const int32_t* rows, int H, bf16* out) {
  const bf16* src = in + static_cast<size_t>(rows[blockIdx.x]) * H;
  bf16* dst = out + static_cast<size_t>(blockIdx.x) * H;
  for (int i = threadIdx.x; i < H; i += blockDim.x) dst[i] = src[i];
}
}  // namespace

void gather_rows_bf16(const bf16* in, const int32_t* rows, int R, int H, bf16* out, cudaStream_t stream) {
  if (R == 0) return;
  gather_rows_kernel<<<R, 256, 0, stream>>>(in, rows, H, out);
  QUENCH_CUDA_LAUNCH_CHECK();
}
}  // namespace quench::cuda
