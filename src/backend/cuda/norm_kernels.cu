// quench/backend/cuda/norm_kernels.cu: embedding lookup, RMSNorm and the fused residual ends.
//
// One block per token row; each thread owns VPT chunks of VEC consecutive floats (VEC = 4: one
// 16-byte load per chunk) and keeps them in registers, so a row is read once and written once:
// every load of the row is issued before the first reduction (several loads in flight per
// thread), the two sums of squares are warp-shuffle + one shared-memory step. At T = 1 the kernel
// is latency-bound (one DRAM round trip + two block reductions); at large T it is bandwidth-bound.
//
// PDL (pdl.cuh): the norm weights do not depend on the previous kernel, so their loads are issued
// before pdl_wait() (with PDL they overlap the previous kernel's tail and the launch, and only the
// L2-resident activations are loaded after it); each kernel then lets its own dependents launch
// (pdl_launch_dependents) so a PDL-launched successor can be scheduled during this kernel — it
// still waits for this kernel's completion before reading. Nothing is written before pdl_wait().
#include <algorithm>
#include <atomic>
#include <string>

#include "backend/cuda/cuda_utils.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/pdl.cuh"

namespace quench::cuda {
namespace {

/// Threads per row block (the kernels' launch bound: <= 128 registers per thread) and chunks
/// per thread at most: rows up to 512 * 8 * 4 = 16384 floats (4096 when H % 4 != 0).
constexpr int kMaxThreadsPerRow = 512;
constexpr int kMaxVpt = 8;

/// Lets the kernels that depend on this one programmatically (PDL) be scheduled now; they still
/// wait (griddepcontrol.wait) for this grid's completion and memory flush before their reads. No
/// effect on successors launched without PDL or without a GPU of compute capability 9.0.
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/// Block-wide sum of one float per thread (blockDim.x a multiple of 32, <= 1024). Every thread
/// gets the total. Safe to call repeatedly (the leading barrier protects the shared slots).
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float warp_sums[32];
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  __syncthreads();
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  const int nwarps = blockDim.x >> 5;
  float s = lane < nwarps ? warp_sums[lane] : 0.0f;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  return s;
}

/// VEC consecutive floats.
template <int VEC>
struct Vec {
  float v[VEC];
};

template <int VEC>
__device__ __forceinline__ Vec<VEC> load_f32(const float* p) {
  Vec<VEC> r;
  if constexpr (VEC == 4) {
    const float4 q = *reinterpret_cast<const float4*>(p);
    r.v[0] = q.x; r.v[1] = q.y; r.v[2] = q.z; r.v[3] = q.w;
  } else {
#pragma unroll
    for (int i = 0; i < VEC; ++i) r.v[i] = p[i];
  }
  return r;
}

template <int VEC>
__device__ __forceinline__ void store_f32(float* p, const Vec<VEC>& r) {
  if constexpr (VEC == 4) {
    *reinterpret_cast<float4*>(p) = make_float4(r.v[0], r.v[1], r.v[2], r.v[3]);
  } else {
#pragma unroll
    for (int i = 0; i < VEC; ++i) p[i] = r.v[i];
  }
}

/// Stores VEC values rounded to bf16 (RNE); VEC = 4 is one 8-byte store.
template <int VEC>
__device__ __forceinline__ void store_bf16(bf16* p, const Vec<VEC>& r) {
  if constexpr (VEC == 4) {
    __nv_bfloat162 a = __floats2bfloat162_rn(r.v[0], r.v[1]);
    __nv_bfloat162 b = __floats2bfloat162_rn(r.v[2], r.v[3]);
    uint2 u;
    u.x = *reinterpret_cast<uint32_t*>(&a);
    u.y = *reinterpret_cast<uint32_t*>(&b);
    *reinterpret_cast<uint2*>(p) = u;
  } else {
#pragma unroll
    for (int i = 0; i < VEC; ++i) p[i] = __float2bfloat16(r.v[i]);
  }
}

/// Loads VEC bf16 values as floats; VEC = 4 is one 8-byte load.
template <int VEC>
__device__ __forceinline__ Vec<VEC> load_bf16(const bf16* p) {
  Vec<VEC> r;
  if constexpr (VEC == 4) {
    const uint2 u = *reinterpret_cast<const uint2*>(p);
    const __nv_bfloat162 a = *reinterpret_cast<const __nv_bfloat162*>(&u.x);
    const __nv_bfloat162 b = *reinterpret_cast<const __nv_bfloat162*>(&u.y);
    const float2 fa = __bfloat1622float2(a), fb = __bfloat1622float2(b);
    r.v[0] = fa.x; r.v[1] = fa.y; r.v[2] = fb.x; r.v[3] = fb.y;
  } else {
#pragma unroll
    for (int i = 0; i < VEC; ++i) r.v[i] = __bfloat162float(p[i]);
  }
  return r;
}

/// 1 / sqrt(mean + eps) with correctly rounded sqrt and division (the CPU reference uses
/// pow(ms, -0.5f); rsqrtf would differ by up to 2 ulp).
__device__ __forceinline__ float inv_rms(float sum_sq, int H, float eps) {
  return 1.0f / sqrtf(sum_sq / static_cast<float>(H) + eps);
}

/// Chunk index j of this thread, and whether it is inside the row (n chunks).
#define QUENCH_ROW_CHUNKS(j) (static_cast<int>(threadIdx.x) + (j) * static_cast<int>(blockDim.x))

template <int VEC, int VPT>
__global__ void __launch_bounds__(kMaxThreadsPerRow)
    embed_kernel(const int32_t* ids, const bf16* table, int H, float scale, float* x, const float* w_next, float eps,
                 bf16* next) {
  const int t = blockIdx.x, n = H / VEC;
  Vec<VEC> wn[VPT];
  if (w_next) {  // the norm weight first: independent of the previous kernel
#pragma unroll
    for (int j = 0; j < VPT; ++j) {
      const int c = QUENCH_ROW_CHUNKS(j);
      if (c < n) wn[j] = load_f32<VEC>(w_next + c * VEC);
    }
  }
  pdl_wait();
  pdl_launch_dependents();
  const bf16* row = table + static_cast<size_t>(ids[t]) * H;
  float* xr = x + static_cast<size_t>(t) * H;
  Vec<VEC> e[VPT];
  float ss = 0.0f;
#pragma unroll
  for (int j = 0; j < VPT; ++j) {
    const int c = QUENCH_ROW_CHUNKS(j);
    if (c < n) {
      e[j] = load_bf16<VEC>(row + c * VEC);
#pragma unroll
      for (int i = 0; i < VEC; ++i) {
        e[j].v[i] *= scale;
        ss += e[j].v[i] * e[j].v[i];
      }
      store_f32<VEC>(xr + c * VEC, e[j]);
    }
  }
  if (!w_next) return;
  const float inv = inv_rms(block_sum(ss), H, eps);
  bf16* o = next + static_cast<size_t>(t) * H;
#pragma unroll
  for (int j = 0; j < VPT; ++j) {
    const int c = QUENCH_ROW_CHUNKS(j);
    if (c < n) {
      Vec<VEC> r;
#pragma unroll
      for (int i = 0; i < VEC; ++i) r.v[i] = e[j].v[i] * inv * wn[j].v[i];
      store_bf16<VEC>(o + c * VEC, r);
    }
  }
}

template <int VEC, int VPT>
__global__ void __launch_bounds__(kMaxThreadsPerRow)
    rmsnorm_kernel(const float* x, int x_stride, const float* w, int H, float eps, bf16* out) {
  const int t = blockIdx.x, n = H / VEC;
  Vec<VEC> wv[VPT];
  if (w) {  // the weight first: independent of the previous kernel
#pragma unroll
    for (int j = 0; j < VPT; ++j) {
      const int c = QUENCH_ROW_CHUNKS(j);
      if (c < n) wv[j] = load_f32<VEC>(w + c * VEC);
    }
  }
  pdl_wait();
  pdl_launch_dependents();
  const float* row = x + static_cast<size_t>(t) * x_stride;
  Vec<VEC> v[VPT];
  float ss = 0.0f;
#pragma unroll
  for (int j = 0; j < VPT; ++j) {
    const int c = QUENCH_ROW_CHUNKS(j);
    if (c < n) {
      v[j] = load_f32<VEC>(row + c * VEC);
#pragma unroll
      for (int i = 0; i < VEC; ++i) ss += v[j].v[i] * v[j].v[i];
    }
  }
  const float inv = inv_rms(block_sum(ss), H, eps);
  bf16* o = out + static_cast<size_t>(t) * H;
#pragma unroll
  for (int j = 0; j < VPT; ++j) {
    const int c = QUENCH_ROW_CHUNKS(j);
    if (c < n) {
      Vec<VEC> r;
      if (w) {
#pragma unroll
        for (int i = 0; i < VEC; ++i) r.v[i] = v[j].v[i] * inv * wv[j].v[i];
      } else {
#pragma unroll
        for (int i = 0; i < VEC; ++i) r.v[i] = v[j].v[i] * inv;
      }
      store_bf16<VEC>(o + c * VEC, r);
    }
  }
}

template <int VEC, int VPT>
__global__ void __launch_bounds__(kMaxThreadsPerRow)
    residual_post_norm_kernel(float* x, const float* y, const float* w_post, float scalar, int H, float eps,
                              const float* w_next, bf16* next) {
  const int t = blockIdx.x, n = H / VEC;
  float* xr = x + static_cast<size_t>(t) * H;
  const float* yr = y + static_cast<size_t>(t) * H;
  Vec<VEC> xv[VPT], yv[VPT], wp[VPT], wn[VPT];
  // Wide rows (32 floats per thread) load w_next late, so the row stays in registers unspilled.
  constexpr bool kEarlyNext = VEC * VPT <= 16;
  float ss = 0.0f;
  // The weight vectors first (independent of the previous kernel), then y and x after the wait:
  // every load of the row is in flight before the first use.
#pragma unroll
  for (int j = 0; j < VPT; ++j) {
    const int c = QUENCH_ROW_CHUNKS(j);
    if (c < n) {
      wp[j] = load_f32<VEC>(w_post + c * VEC);
      if (kEarlyNext && w_next) wn[j] = load_f32<VEC>(w_next + c * VEC);
    }
  }
  pdl_wait();
  pdl_launch_dependents();
#pragma unroll
  for (int j = 0; j < VPT; ++j) {
    const int c = QUENCH_ROW_CHUNKS(j);
    if (c < n) {
      yv[j] = load_f32<VEC>(yr + c * VEC);
      xv[j] = load_f32<VEC>(xr + c * VEC);
    }
  }
#pragma unroll
  for (int j = 0; j < VPT; ++j) {
    if (QUENCH_ROW_CHUNKS(j) < n) {
#pragma unroll
      for (int i = 0; i < VEC; ++i) ss += yv[j].v[i] * yv[j].v[i];
    }
  }
  const float inv = inv_rms(block_sum(ss), H, eps);
  float ss2 = 0.0f;
#pragma unroll
  for (int j = 0; j < VPT; ++j) {
    const int c = QUENCH_ROW_CHUNKS(j);
    if (c < n) {
#pragma unroll
      for (int i = 0; i < VEC; ++i) {
        const float v = (xv[j].v[i] + yv[j].v[i] * inv * wp[j].v[i]) * scalar;
        xv[j].v[i] = v;
        ss2 += v * v;
      }
      store_f32<VEC>(xr + c * VEC, xv[j]);
    }
  }
  if (!w_next) return;
  const float inv2 = inv_rms(block_sum(ss2), H, eps);
  bf16* o = next + static_cast<size_t>(t) * H;
#pragma unroll
  for (int j = 0; j < VPT; ++j) {
    const int c = QUENCH_ROW_CHUNKS(j);
    if (c < n) {
      if (!kEarlyNext) wn[j] = load_f32<VEC>(w_next + c * VEC);
      Vec<VEC> r;
#pragma unroll
      for (int i = 0; i < VEC; ++i) r.v[i] = xv[j].v[i] * inv2 * wn[j].v[i];
      store_bf16<VEC>(o + c * VEC, r);
    }
  }
}

#undef QUENCH_ROW_CHUNKS

/// Launch shape of a row kernel: VPT chunks per thread, `threads` a multiple of 32.
struct RowShape {
  int vpt = 1;
  int threads = 32;
};

/// Rows from which a launch favours bytes in flight per SM (about 128 threads per row, each with
/// up to `many_rows_vpt` chunks in registers: more resident blocks, more loads outstanding) over
/// the latency of a single row (up to kMaxThreadsPerRow threads, fewer chunks each).
constexpr int kManyRows = 256;

/// The shape for T rows of `chunks` chunks. Throws UnsupportedError (naming the kernel and H)
/// beyond kMaxVpt chunks per thread.
RowShape row_shape(int chunks, int T, int many_rows_vpt, const char* what, int H) {
  const int target = T >= kManyRows ? 128 : kMaxThreadsPerRow;
  const int vpt_cap = T >= kManyRows ? many_rows_vpt : kMaxVpt;
  RowShape s;
  while (s.vpt < vpt_cap && (chunks + s.vpt - 1) / s.vpt > target) s.vpt *= 2;
  while (s.vpt < kMaxVpt && (chunks + s.vpt - 1) / s.vpt > kMaxThreadsPerRow) s.vpt *= 2;
  const int per = (chunks + s.vpt - 1) / s.vpt;
  if (per > kMaxThreadsPerRow)
    throw UnsupportedError(std::string("CUDA ") + what + ": hidden size " + std::to_string(H) +
                           " is beyond the row kernel's limit (" + std::to_string(4 * kMaxThreadsPerRow * kMaxVpt) + ")");
  s.threads = std::max(32, (per + 31) / 32 * 32);
  return s;
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

/// Calls f.template operator()<VEC, VPT>() for the shape chosen at run time.
template <int VEC, typename F>
void dispatch_vpt(int vpt, F&& f) {
  switch (vpt) {
    case 1: f.template operator()<VEC, 1>(); break;
    case 2: f.template operator()<VEC, 2>(); break;
    case 4: f.template operator()<VEC, 4>(); break;
    default: f.template operator()<VEC, 8>(); break;
  }
}

template <typename F>
void dispatch_row(bool vec4, int vpt, F&& f) {
  if (vec4)
    dispatch_vpt<4>(vpt, f);
  else
    dispatch_vpt<1>(vpt, f);
}

// On by default: H200 run 2 measured a chain of residual_post_norm launches at 2.03 us per launch
// with PDL and 2.46 us without (T = 1), with bit-identical results (runner test).
std::atomic<bool> g_pdl{true};

}  // namespace

void set_programmatic_dependent_launch(bool on) { g_pdl.store(on); }
bool programmatic_dependent_launch() { return g_pdl.load(std::memory_order_relaxed); }

void embed(const int32_t* ids, int T, const bf16* table, int H, float scale, float* x, cudaStream_t stream) {
  embed_rmsnorm(ids, T, table, H, scale, x, nullptr, 0.0f, nullptr, stream);
}

void embed_rmsnorm(const int32_t* ids, int T, const bf16* table, int H, float scale, float* x, const float* w_next,
                   float eps, bf16* next, cudaStream_t stream) {
  if (T == 0) return;
  const bool vec4 = H % 4 == 0 && aligned16(x) && aligned16(table) && (!w_next || aligned16(w_next)) &&
                    (!next || aligned16(next));
  const RowShape s = row_shape(vec4 ? H / 4 : H, T, 8, "embed", H);
  dispatch_row(vec4, s.vpt, [&]<int VEC, int VPT>() {
    launch_kernel(embed_kernel<VEC, VPT>, T, s.threads, stream, ids, table, H, scale, x, w_next, eps, next);
  });
}

void rmsnorm_to_bf16(const float* x, int x_stride, const float* w, int T, int H, float eps, bf16* out,
                     cudaStream_t stream) {
  if (T == 0) return;
  const bool vec4 = H % 4 == 0 && x_stride % 4 == 0 && aligned16(x) && aligned16(out) && (!w || aligned16(w));
  const RowShape s = row_shape(vec4 ? H / 4 : H, T, 8, "rmsnorm", H);
  dispatch_row(vec4, s.vpt, [&]<int VEC, int VPT>() {
    launch_kernel(rmsnorm_kernel<VEC, VPT>, T, s.threads, stream, x, x_stride, w, H, eps, out);
  });
}

void residual_post_norm(float* x, const float* y, const float* w_post, float scalar, int T, int H, float eps,
                        const float* w_next, bf16* next, cudaStream_t stream) {
  if (T == 0) return;
  const bool vec4 = H % 4 == 0 && aligned16(x) && aligned16(y) && aligned16(w_post) &&
                    (!w_next || (aligned16(w_next) && aligned16(next)));
  // 4 chunks per thread at most for many rows: 8 would need > 128 registers (x, y, w_post, w_next).
  const RowShape s = row_shape(vec4 ? H / 4 : H, T, 4, "residual_post_norm", H);
  dispatch_row(vec4, s.vpt, [&]<int VEC, int VPT>() {
    launch_kernel(residual_post_norm_kernel<VEC, VPT>, T, s.threads, stream, x, y, w_post, scalar, H, eps, w_next,
                  next);
  });
}

}  // namespace quench::cuda
