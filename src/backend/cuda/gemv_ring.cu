// quench/backend/cuda/gemv_ring.cu: the decode GEMV (M <= 8 activation rows) with the weights
// staged through shared memory instead of registers, so that the bytes in flight per SM are set by
// the ring's size and not by the decode's register budget.
//
// Why (H200, bench/kernel-notes.md): the register-streaming kernel (gemv_kernels.cu) keeps its
// loads in registers; NVFP4 decoding needs 110-124 registers/thread, so 2 blocks (~64 KB of loads)
// fit per SM and bandwidth stopped near 55-60% (it tracked bytes in flight: 64 KB ~ 60-65%,
// 120 KB ~ 91%). Here every warp owns an S-stage ring in shared memory filled by cp.async
// (16-byte copies that hold no registers): 16 warps x S stages x 2 KB = 128-160 KB per SM.
//
// Work split:
//   * one persistent block (16 warps) per SM; block b owns the rows [b R / G, (b+1) R / G) of the
//     launch (R = sum of the jobs' N, gate/up: N), cut into tiles of 16 MMA rows (plain: 16
//     consecutive rows, which may straddle two jobs; gate/up: 8 rows of gate then the same 8 rows
//     of up, so one lane holds both sums of an output). Row-granular ranges keep the bytes per SM
//     balanced to one row (tile-granular ones lose up to 9% on the 12B shapes);
//   * a *span* is 128 bytes of each of a tile's 16 rows (plus the 16 scale bytes of each row for
//     NVFP4); warp w takes spans w, w + 16, ... of every tile; one ring stage holds one span;
//   * loads: lane L copies row L / 2, 16-byte pieces 2i + L % 2 (i = 0..3): each instruction
//     reads whole 32-byte sectors; even lanes also copy the row's scale bytes. Stores are swizzled
//     (piece p of row r at slot p ^ h(r), h(r) = 2 (r % 4) + r % 2) so that both the copies and the
//     MMA-fragment reads below are free of bank conflicts;
//   * compute: lane (g = lane / 4, t = lane % 4) reads pieces 2t, 2t + 1 of rows g and g + 8,
//     decodes them as gemv_formats.cuh says and feeds the bf16 m16n8k16 MMA with the activations
//     (read through L1) as the 8 columns — exactly the register kernel's numerics;
//   * after each tile the 16 warps' partial sums meet in shared memory (double-buffered by tile
//     parity: one __syncthreads per tile) and one thread per (row, m) writes y / act.
// Programmatic dependent launch: the first S stages of weights are requested before
// griddepcontrol.wait (weights are never written by a previous kernel); x is read and y written
// only after it; dependents are released once every block is resident.
#include <atomic>
#include <mutex>
#include <string>
#include <utility>

#include "backend/cuda/cuda_utils.h"
#include "backend/cuda/gemv_args.cuh"
#include "backend/cuda/gemv_formats.cuh"
#include "backend/cuda/gemv_ring.h"
#include "backend/cuda/pdl.cuh"

namespace quench::cuda::gemv_detail {
namespace {

constexpr int kRingWarps = 16;
constexpr int kRingThreads = kRingWarps * 32;
constexpr int kSpan = 128;  ///< bytes of one row per warp stage

/// Stage geometry of a format: 16 rows x 128 bytes of weights, then 16 rows x kScaleSpan bytes.
template <class F>
struct RingGeom {
  static constexpr int kScaleSpan = F::kScaleBytes * (kSpan / F::kPieceBytes);  // NVFP4: 16, else 0
  static constexpr int kStageBytes = 16 * kSpan + 16 * kScaleSpan;
  /// Stages per warp: NVFP4 4 (147 KB: leaves L1 room for x), bf16/FP8 5 (160 KB).
  static constexpr int kStages = F::kScaleBytes > 0 ? 4 : 5;
  static constexpr int kRedFloats = 2 * kRingWarps * 16 * 9;  ///< [parity][warp][row][m (8, padded 9)]
  static constexpr size_t kSmemBytes =
      static_cast<size_t>(kRingWarps) * kStages * kStageBytes + sizeof(float) * kRedFloats;
};

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
/// 16-byte global -> shared copy, bypassing L1 (cp.async.cg, sm_80+).
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(dst), "l"(src) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
/// Waits until at most N of this thread's committed copy groups are still pending.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}
__device__ __forceinline__ uint4 lds128(const uint8_t* p) { return *reinterpret_cast<const uint4*>(p); }
__device__ __forceinline__ uint32_t lds32(const uint8_t* p) { return *reinterpret_cast<const uint32_t*>(p); }
/// Lets the next kernel on the stream (launched with PDL) be scheduled; no-op without PDL.
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
/// Swizzle of tile row r: piece p of the row is stored at slot p ^ swz(r) (see the file header).
__device__ __forceinline__ int swz(int r) { return ((r & 3) << 1) | (r & 1); }

/// Row `row` (0 .. rows_total) of a plain launch -> its job and the row inside it.
__device__ __forceinline__ void locate(const LaunchArgs& L, int row, int& job, int& n) {
  job = 0;
  int base = 0;
#pragma unroll
  for (int i = 0; i + 1 < kGemvMaxJobs; ++i)
    if (i + 1 < L.njobs && row >= L.row_end[i]) {
      job = i + 1;
      base = L.row_end[i];
    }
  n = row - base;
}

template <class F, bool GATEUP>
__global__ void __launch_bounds__(kRingThreads, 1) gemv_ring_kernel(const __grid_constant__ LaunchArgs L) {
  using G = RingGeom<F>;
  constexpr int S = G::kStages;
  constexpr int TR = GATEUP ? 8 : 16;  // output rows per tile
  extern __shared__ __align__(16) uint8_t smem[];

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int K = L.K, M = L.M;
  const size_t rb = F::row_bytes(K), sb = static_cast<size_t>(K / 16);
  const int SP = static_cast<int>(rb / kSpan);  // spans per row
  const int R0 = static_cast<int>(static_cast<long long>(blockIdx.x) * L.rows_total / gridDim.x);
  const int R1 = static_cast<int>(static_cast<long long>(blockIdx.x + 1) * L.rows_total / gridDim.x);
  const int nt = (R1 - R0 + TR - 1) / TR;                                     // tiles of this block
  const int nsw = warp < SP ? (SP - warp + kRingWarps - 1) / kRingWarps : 0;  // spans per tile, this warp
  uint8_t* ring = smem + static_cast<size_t>(warp) * S * G::kStageBytes;
  float* red = reinterpret_cast<float*>(smem + static_cast<size_t>(kRingWarps) * S * G::kStageBytes);

  // ---- producer: lane copies tile row prow, pieces 2i + ppc of each span --------------------
  const int prow = lane >> 1, ppc = lane & 1, pswz = swz(prow);
  int p_ti = 0, p_s = 0;              // next (tile, span index) to request
  const uint8_t* pw = nullptr;        // this lane's weight row in tile p_ti (nullptr: past the range)
  const uint8_t* ps = nullptr;        // its scale row
  auto set_rows = [&](int ti) {
    pw = nullptr;
    if (ti >= nt) return;
    int job, n;
    if (GATEUP) {
      job = prow < 8 ? 0 : 1;
      n = R0 + ti * TR + (prow & 7);
      if (n >= R1) return;
    } else {
      const int row = R0 + ti * TR + prow;
      if (row >= R1) return;
      locate(L, row, job, n);
    }
    pw = L.job[job].w + static_cast<size_t>(n) * rb;
    ps = L.job[job].s + static_cast<size_t>(n) * sb;
  };
  auto issue = [&](int slot) {
    if (p_ti < nt) {
      if (pw != nullptr) {
        const int span = warp + kRingWarps * p_s;
        uint8_t* dst = ring + slot * G::kStageBytes + prow * kSpan;
        const uint8_t* src = pw + static_cast<size_t>(span) * kSpan;
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int p = 2 * i + ppc;
          cp_async16(smem_addr(dst + 16 * (p ^ pswz)), src + 16 * p);
        }
        if constexpr (G::kScaleSpan > 0)
          if (ppc == 0)
            cp_async16(smem_addr(ring + slot * G::kStageBytes + 16 * kSpan + prow * G::kScaleSpan),
                       ps + static_cast<size_t>(span) * G::kScaleSpan);
      }
      if (++p_s == nsw) {
        p_s = 0;
        set_rows(++p_ti);
      }
    }
    cp_async_commit();  // one group per stage, empty past the end: wait_group counts stay exact
  };
  if (nsw > 0) {
    set_rows(0);
#pragma unroll
    for (int s = 0; s < S; ++s) issue(s);
  }
  pdl_launch_dependents();
  pdl_wait();  // x and y belong to the previous kernels from here on

  // ---- consumer ------------------------------------------------------------------------------
  const bool has_x = g < M;  // lane group g supplies activation row g (MMA column g)
  const bf16* xg = L.x + static_cast<size_t>(has_x ? g : 0) * K;
  const int sw0 = swz(g), sw1 = swz(g + 8);
  int slot = 0;
  for (int ti = 0; ti < nt; ++ti) {
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int s = 0; s < nsw; ++s) {
      cp_async_wait<S - 1>();
      __syncwarp();  // every lane's copies of this stage are complete and visible
      const uint8_t* st = ring + slot * G::kStageBytes;
      uint4 w[2][2];
      uint32_t sc[2] = {0, 0};
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        w[0][j] = lds128(st + g * kSpan + 16 * ((2 * t + j) ^ sw0));
        w[1][j] = lds128(st + (g + 8) * kSpan + 16 * ((2 * t + j) ^ sw1));
      }
      if constexpr (G::kScaleSpan > 0) {
        sc[0] = lds32(st + 16 * kSpan + g * G::kScaleSpan + 4 * t);
        sc[1] = lds32(st + 16 * kSpan + (g + 8) * G::kScaleSpan + 4 * t);
      }
      __syncwarp();  // the whole warp has read the slot: refill it
      issue(slot);
      slot = slot + 1 == S ? 0 : slot + 1;

      const int piece0 = (warp + kRingWarps * s) * (kSpan / F::kPieceBytes) + 2 * t;
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const bf16* xp = xg + static_cast<size_t>(piece0 + j) * F::kPieceK;
        uint4 X[F::kUnits];
#pragma unroll
        for (int u = 0; u < F::kUnits; ++u) X[u] = has_x ? ld_shared_input16(xp + 8 * u) : make_uint4(0, 0, 0, 0);
        const typename F::Ready r0 = F::prepare(F::make(w[0][j], sc[0] >> (16 * j)));
        const typename F::Ready r1 = F::prepare(F::make(w[1][j], sc[1] >> (16 * j)));
        [&]<int... J>(std::integer_sequence<int, J...>) {
          (
              [&] {
                uint32_t a0[4], a1[4], b[4];
                F::template unit<J>(r0, a0);
                F::template unit<J>(r1, a1);
                F::template xunit<J>(X[J], b);
                mma_bf16_16816(acc, a0[0], a1[0], a0[1], a1[1], b[0], b[1]);
                mma_bf16_16816(acc, a0[2], a1[2], a0[3], a1[3], b[2], b[3]);
              }(),
              ...);
        }(std::make_integer_sequence<int, F::kUnits>{});
      }
    }

    // Cross-warp reduction of tile ti: red[ti % 2][warp][row][m].
    float* rp = red + (ti & 1) * (kRingWarps * 16 * 9) + warp * (16 * 9);
    rp[g * 9 + 2 * t] = acc[0];
    rp[g * 9 + 2 * t + 1] = acc[1];
    rp[(g + 8) * 9 + 2 * t] = acc[2];
    rp[(g + 8) * 9 + 2 * t + 1] = acc[3];
    __syncthreads();
    if (threadIdx.x < TR * M) {
      const int m = threadIdx.x / TR, r = threadIdx.x % TR;
      const float* rr = red + (ti & 1) * (kRingWarps * 16 * 9);
      if (GATEUP) {
        const int n = R0 + ti * TR + r;
        if (n < R1) {
          float gs = 0.0f, us = 0.0f;
#pragma unroll
          for (int w = 0; w < kRingWarps; ++w) {
            gs += rr[w * 144 + r * 9 + m];
            us += rr[w * 144 + (r + 8) * 9 + m];
          }
          gs *= L.job[0].out_scale;
          us *= L.job[1].out_scale;
          L.act[static_cast<size_t>(m) * L.job[0].N + n] = __float2bfloat16(gelu_tanh(gs) * us);
        }
      } else {
        const int row = R0 + ti * TR + r;
        if (row < R1) {
          float sum = 0.0f;
#pragma unroll
          for (int w = 0; w < kRingWarps; ++w) sum += rr[w * 144 + r * 9 + m];
          int job, n;
          locate(L, row, job, n);
          L.job[job].y[static_cast<size_t>(m) * L.job[job].N + n] = sum * L.job[job].out_scale;
        }
      }
    }
  }
}

int sm_count() {
  static std::atomic<int> cached{0};
  int v = cached.load(std::memory_order_relaxed);
  if (v == 0) {
    int dev = 0;
    QUENCH_CUDA_CHECK(cudaGetDevice(&dev));
    QUENCH_CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev));
    cached.store(v, std::memory_order_relaxed);
  }
  return v;
}

template <class F, bool GATEUP>
void launch_ring(LaunchArgs& a, cudaStream_t stream) {
  using G = RingGeom<F>;
  auto* kernel = &gemv_ring_kernel<F, GATEUP>;
  static std::once_flag once;
  std::call_once(once, [&] {
    QUENCH_CUDA_CHECK(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(G::kSmemBytes)));
  });
  // One block per SM, at least 4 rows per block.
  const int blocks = std::max(1, std::min(sm_count(), a.rows_total / 4));
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(blocks);
  cfg.blockDim = dim3(kRingThreads);
  cfg.dynamicSmemBytes = G::kSmemBytes;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  const bool default_stream = stream == nullptr || stream == cudaStreamLegacy || stream == cudaStreamPerThread;
  cfg.numAttrs = programmatic_dependent_launch() && !default_stream ? 1 : 0;
  QUENCH_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, a));
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

}  // namespace

bool ring_supports(GemvFormat f, int K, const LaunchArgs& a) {
  const size_t rb = f == GemvFormat::kBF16 ? 2 * static_cast<size_t>(K)
                    : f == GemvFormat::kFP8 ? static_cast<size_t>(K)
                                            : static_cast<size_t>(K) / 2;
  if (K <= 0 || rb % kSpan != 0 || !aligned16(a.x)) return false;
  for (int j = 0; j < a.njobs; ++j) {
    if (!aligned16(a.job[j].w)) return false;
    if (f == GemvFormat::kNVFP4 && !aligned16(a.job[j].s)) return false;
  }
  return true;
}

void launch_ring(GemvFormat f, bool gate_up, LaunchArgs& a, cudaStream_t stream) {
  if (gate_up) {
    a.rows_total = a.job[0].N;
  } else {
    int rows = 0;
    for (int j = 0; j < a.njobs; ++j) {
      rows += a.job[j].N;
      a.row_end[j] = rows;
    }
    a.rows_total = rows;
  }
  switch (f) {
    case GemvFormat::kBF16:
      gate_up ? launch_ring<FmtBf16, true>(a, stream) : launch_ring<FmtBf16, false>(a, stream);
      return;
    case GemvFormat::kFP8:
      gate_up ? launch_ring<FmtFp8, true>(a, stream) : launch_ring<FmtFp8, false>(a, stream);
      return;
    case GemvFormat::kNVFP4:
      gate_up ? launch_ring<FmtNvfp4<16>, true>(a, stream) : launch_ring<FmtNvfp4<16>, false>(a, stream);
      return;
  }
}

}  // namespace quench::cuda::gemv_detail
