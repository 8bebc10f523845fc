// quench/backend/cuda/elementwise_kernels.cu: GeGLU activation, final-logit softcap, argmax
// (two stages: many blocks per row, then one block per row; softcap optionally fused in).
#include <algorithm>
#include <climits>
#include <cstdint>

#include "backend/cuda/cuda_utils.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/pdl.cuh"

namespace quench::cuda {
namespace {

/// Lets PDL-launched dependents be scheduled now (they still wait for this grid's completion
/// before reading); no effect on successors launched without PDL.
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/// PyTorch gelu(approximate="tanh"): 0.5 u (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3))).
__device__ __forceinline__ float gelu_tanh(float u) {
  constexpr float kAlpha = 0.7978845608028654f;  // sqrt(2/pi)
  return 0.5f * u * (1.0f + tanhf(kAlpha * (u + 0.044715f * u * u * u)));
}

__global__ void gelu_mul_kernel(const float* gate, int gs, const float* up, int us, int I, bf16* act) {
  pdl_wait();
  pdl_launch_dependents();
  const int t = blockIdx.y;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < I; i += gridDim.x * blockDim.x)
    act[static_cast<size_t>(t) * I + i] =
        __float2bfloat16(gelu_tanh(gate[static_cast<size_t>(t) * gs + i]) * up[static_cast<size_t>(t) * us + i]);
}

/// gelu_mul_kernel with 16-byte loads of gate/up and 8-byte stores of act (I, strides % 4 == 0).
__global__ void gelu_mul_vec4_kernel(const float* gate, int gs, const float* up, int us, int I, bf16* act) {
  pdl_wait();
  pdl_launch_dependents();
  const int t = blockIdx.y;
  const float4* g4 = reinterpret_cast<const float4*>(gate + static_cast<size_t>(t) * gs);
  const float4* u4 = reinterpret_cast<const float4*>(up + static_cast<size_t>(t) * us);
  uint2* a4 = reinterpret_cast<uint2*>(act + static_cast<size_t>(t) * I);
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < I / 4; i += gridDim.x * blockDim.x) {
    const float4 g = g4[i], u = u4[i];
    __nv_bfloat162 lo = __floats2bfloat162_rn(gelu_tanh(g.x) * u.x, gelu_tanh(g.y) * u.y);
    __nv_bfloat162 hi = __floats2bfloat162_rn(gelu_tanh(g.z) * u.z, gelu_tanh(g.w) * u.w);
    uint2 o;
    o.x = *reinterpret_cast<uint32_t*>(&lo);
    o.y = *reinterpret_cast<uint32_t*>(&hi);
    a4[i] = o;
  }
}

__global__ void softcap_kernel(float* v, size_t n, float cap) {
  pdl_wait();
  pdl_launch_dependents();
  const float inv = 1.0f / cap;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    v[i] = cap * tanhf(v[i] * inv);
}

/// (value, index) pair order of argmax: larger value first, lower index on equal values; NaN
/// never wins (comparisons with NaN are false).
__device__ __forceinline__ void argmax_take(float& best, int& idx, float v, int i) {
  if (v > best || (v == best && i < idx)) {
    best = v;
    idx = i;
  }
}

/// Warp-wide argmax; every lane gets the winner.
__device__ __forceinline__ void argmax_warp(float& best, int& idx) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ob = __shfl_xor_sync(0xffffffffu, best, o);
    const int oi = __shfl_xor_sync(0xffffffffu, idx, o);
    argmax_take(best, idx, ob, oi);
  }
}

/// Block-wide argmax (blockDim.x a multiple of 32); the result is valid in thread 0.
__device__ __forceinline__ void argmax_block(float& best, int& idx) {
  __shared__ float sb[32];
  __shared__ int si[32];
  argmax_warp(best, idx);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0) {
    sb[warp] = best;
    si[warp] = idx;
  }
  __syncthreads();
  if (warp == 0) {
    const int nw = blockDim.x >> 5;
    best = lane < nw ? sb[lane] : -INFINITY;
    idx = lane < nw ? si[lane] : INT_MAX;
    argmax_warp(best, idx);
  }
}

constexpr int kArgmaxThreads = 256;
constexpr int kArgmaxVecPerThread = 4;  // float4 loads in flight per thread (64 B: ~128 KB per SM)
constexpr int kArgmaxChunk = kArgmaxThreads * kArgmaxVecPerThread * 4;  // logits per stage-1 block

/// The value argmax compares: the soft-capped logit when cap > 0, computed exactly as
/// softcap_kernel does (so the winner equals argmax over softcap()'s output).
__device__ __forceinline__ float capped(float v, float cap, float inv) { return cap > 0.0f ? cap * tanhf(v * inv) : v; }

/// Stage 1: block (c, r) reduces logits[r, c*chunk .. (c+1)*chunk) to one (value, index) pair.
template <bool kVec4>
__global__ void argmax_partial_kernel(const float* logits, int V, float cap, float2* partials) {
  pdl_wait();
  pdl_launch_dependents();
  const int r = blockIdx.y, c = blockIdx.x;
  const float* row = logits + static_cast<size_t>(r) * V;
  const float inv = cap > 0.0f ? 1.0f / cap : 0.0f;
  const int base = c * kArgmaxChunk;
  float best = -INFINITY;
  int idx = INT_MAX;
  if constexpr (kVec4) {
    float4 q[kArgmaxVecPerThread];
#pragma unroll
    for (int k = 0; k < kArgmaxVecPerThread; ++k) {
      const int i = base + (threadIdx.x + k * kArgmaxThreads) * 4;
      q[k] = i < V ? *reinterpret_cast<const float4*>(row + i) : make_float4(-INFINITY, -INFINITY, -INFINITY, -INFINITY);
    }
#pragma unroll
    for (int k = 0; k < kArgmaxVecPerThread; ++k) {
      const int i = base + (threadIdx.x + k * kArgmaxThreads) * 4;
      if (i < V) {
        argmax_take(best, idx, capped(q[k].x, cap, inv), i);
        argmax_take(best, idx, capped(q[k].y, cap, inv), i + 1);
        argmax_take(best, idx, capped(q[k].z, cap, inv), i + 2);
        argmax_take(best, idx, capped(q[k].w, cap, inv), i + 3);
      }
    }
  } else {
    for (int i = base + threadIdx.x; i < min(V, base + kArgmaxChunk); i += kArgmaxThreads)
      argmax_take(best, idx, capped(row[i], cap, inv), i);
  }
  argmax_block(best, idx);
  if (threadIdx.x == 0) partials[static_cast<size_t>(r) * gridDim.x + c] = make_float2(best, __int_as_float(idx));
}

/// Stage 2: block r reduces the `chunks` partial pairs of row r to out[r] (0 when every logit is NaN).
__global__ void argmax_final_kernel(const float2* partials, int chunks, int32_t* out) {
  pdl_wait();
  pdl_launch_dependents();
  const float2* p = partials + static_cast<size_t>(blockIdx.x) * chunks;
  float best = -INFINITY;
  int idx = INT_MAX;
  for (int c = threadIdx.x; c < chunks; c += blockDim.x) argmax_take(best, idx, p[c].x, __float_as_int(p[c].y));
  argmax_block(best, idx);
  if (threadIdx.x == 0) out[blockIdx.x] = idx == INT_MAX ? 0 : idx;
}

}  // namespace

void gelu_tanh_mul(const float* gate, int gate_stride, const float* up, int up_stride, int T, int I, bf16* act,
                   cudaStream_t stream) {
  if (T == 0) return;
  const bool vec4 = I % 4 == 0 && gate_stride % 4 == 0 && up_stride % 4 == 0 &&
                    ((reinterpret_cast<uintptr_t>(gate) | reinterpret_cast<uintptr_t>(up)) & 15u) == 0 &&
                    (reinterpret_cast<uintptr_t>(act) & 7u) == 0;
  const int work = vec4 ? I / 4 : I;
  // One row per blockIdx.y; enough blocks per row to fill the chip when T is small.
  const int per_row = std::max(1, std::min((work + 255) / 256, T >= 64 ? 16 : 128));
  const dim3 grid(per_row, T);
  launch_kernel(vec4 ? gelu_mul_vec4_kernel : gelu_mul_kernel, grid, 256, stream, gate, gate_stride, up, up_stride, I,
                act);
}

void softcap(float* logits, size_t n, float cap, cudaStream_t stream) {
  if (cap <= 0.0f || n == 0) return;
  const int blocks = static_cast<int>((n + 255) / 256 < 4096 ? (n + 255) / 256 : 4096);
  launch_kernel(softcap_kernel, blocks, 256, stream, logits, n, cap);
}

size_t argmax_scratch_bytes(int R, int V) {
  return static_cast<size_t>(R) * ((V + kArgmaxChunk - 1) / kArgmaxChunk) * sizeof(float2);
}

void argmax_rows(const float* logits, int R, int V, float cap, int32_t* out, void* scratch, cudaStream_t stream) {
  if (R == 0) return;
  const int chunks = (V + kArgmaxChunk - 1) / kArgmaxChunk;
  float2* partials = static_cast<float2*>(scratch);
  const dim3 grid(chunks, R);
  const bool vec4 = V % 4 == 0 && (reinterpret_cast<uintptr_t>(logits) & 15u) == 0;
  launch_kernel(vec4 ? argmax_partial_kernel<true> : argmax_partial_kernel<false>, grid, kArgmaxThreads, stream, logits,
                V, cap, partials);
  launch_kernel(argmax_final_kernel, R, chunks >= 128 ? 128 : 32, stream, partials, chunks, out);
}

}  // namespace quench::cuda

namespace quench::cuda {
namespace {
__global__ void gather_rows_kernel(const bf16* in, const int32_t* rows, int H, bf16* out) {
  pdl_wait();
  pdl_launch_dependents();
  const bf16* src = in + static_cast<size_t>(rows[blockIdx.x]) * H;
  bf16* dst = out + static_cast<size_t>(blockIdx.x) * H;
  for (int i = threadIdx.x; i < H; i += blockDim.x) dst[i] = src[i];
}
}  // namespace

void gather_rows_bf16(const bf16* in, const int32_t* rows, int R, int H, bf16* out, cudaStream_t stream) {
  if (R == 0) return;
  launch_kernel(gather_rows_kernel, R, 256, stream, in, rows, H, out);
}
}  // namespace quench::cuda
