// quench/backend/cuda/gemv_ring.cu: the decode GEMV (M <= 8 activation rows) with the weights
// staged through shared memory instead of registers, so that the bytes in flight per SM are set by
// the ring's size and not by the decode's register budget.
//
// Why (H200, bench/kernel-notes.md): the register-streaming kernel (gemv_kernels.cu) keeps its
// loads in registers; NVFP4 decoding needs 110-124 registers/thread, so 2 blocks (~64 KB of loads)
// fit per SM and bandwidth stopped near 55-60% (it tracked bytes in flight: 64 KB ~ 60-65%,
// 120 KB ~ 91%). Here every warp owns an S-stage ring in shared memory filled by cp.async
// (16-byte copies that hold no registers): 16 warps x S stages x 2 KB = 128-192 KB per SM.
//
// Work split:
//   * one persistent block (16 warps) per SM; block b owns the rows [b R / G, (b+1) R / G) of the
//     launch (R = sum of the jobs' N, gate/up: N), cut into tiles of 16 MMA rows (plain: 16
//     consecutive rows, which may straddle two jobs; gate/up: 8 rows of gate then the same 8 rows
//     of up, so one lane holds both sums of an output). Row-granular ranges keep the bytes per SM
//     balanced to one row (tile-granular ones lose up to 9% on the 12B shapes);
//   * a *span* is 128 bytes of each of a tile's 16 rows (plus the 16 scale bytes of each row for
//     NVFP4); the 16 warps form 16 / GW groups of GW warps (GW = 1, 2, 4, 8, 16 picked per launch
//     so that the busiest warp streams the fewest spans: 12B gate/up 1, q+k+v 4, down/o 8, k/v
//     16); group q takes tiles q, q + 16 / GW, ... and its warp w takes spans w, w + GW, ... of
//     each; one ring stage holds one span;
//   * loads: copy instruction i (0..3) takes tile rows 4i .. 4i + 3, lane L row 4i + L / 8 and
//     16-byte piece L % 8, so each instruction reads 4 whole 128-byte lines (run 4: the first
//     mapping, 16 rows x 32 bytes per instruction, streamed bf16 at 82% where the register
//     kernel's 64-byte runs reach 100%); lanes L < 16 also copy row L's 16 scale bytes. Stores are
//     swizzled (piece p of row r at slot p ^ h(r), h(r) = 2 (r % 4) + r % 2) so that the
//     MMA-fragment reads below are free of bank conflicts;
//   * compute: lane (g = lane / 4, t = lane % 4) reads pieces 2t, 2t + 1 of rows g and g + 8,
//     decodes them as gemv_formats.cuh says (NVFP4 block scales through a 256-entry table of
//     bf16x2 multipliers built once per block) and feeds the bf16 m16n8k16 MMA with the
//     activations as the 8 columns — exactly the register kernel's numerics. x is copied once per
//     block into shared memory already permuted into B-fragment order (one 16-byte load per MMA
//     pair, no permutes in the loop) when it fits next to >= 3 stages, else read through L1;
//   * S stages per warp ring (2..6) at run time: as many as fit in 227 KB next to x;
//   * after each tile: GW = 1: the warp's MMA accumulators are the tile's sums, written straight
//     from registers; else the group's partial sums meet in shared memory (double-buffered by tile
//     parity: one named barrier per tile per group) and the group's threads write y / act.
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
#include "backend/cuda/gemv_variant.h"
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
  static constexpr int kMinStages = 2, kMaxStages = 6;
  static constexpr int kRedBytes = 4 * 2 * kRingWarps * 16 * 9;  ///< float [parity][warp][row][m (8, padded 9)]
  static constexpr int kLutBytes = F::kScaleBytes > 0 ? 256 * 4 : 0;  ///< NVFP4: E4M3 byte -> bf16x2 multiplier
  /// XS: x row m at m * x_row_bytes(K); chunk c (8 k) of span sp = c / (8 kUnits) stored at
  /// 8 kUnits sp + (j kUnits + u) 4 + t for c = (8 sp + 2 t + j) kUnits + u: the 4 lanes t of a
  /// lane group read 64 contiguous bytes, and the 64-byte row padding puts rows g and g + 1 of a
  /// quarter-warp on the other half of the banks (conflict-free, address = base + immediate).
  static constexpr int kUnitsPerSpan = 8 * F::kUnits;
  static __host__ __device__ size_t x_row_bytes(int K) { return static_cast<size_t>(K) * 2 + 64; }
  /// Shared-memory bytes: scale table, reduction, `stages` ring stages per warp, x (x_bytes).
  static constexpr size_t smem_bytes(int stages, size_t x_bytes) {
    return static_cast<size_t>(kLutBytes) + kRedBytes + static_cast<size_t>(kRingWarps) * stages * kStageBytes +
           x_bytes;
  }
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

/// bar.sync on barrier `id` (1..15; 0 is __syncthreads) for `threads` threads (a multiple of 32).
__device__ __forceinline__ void named_barrier(int id, int threads) {
  asm volatile("bar.sync %0, %1;" ::"r"(id), "r"(threads) : "memory");
}

/// cp.async.wait_group with a run-time stage count (the instruction takes an immediate).
__device__ __forceinline__ void cp_async_wait_stages(int stages) {
  switch (stages) {
    case 2: cp_async_wait<1>(); break;
    case 3: cp_async_wait<2>(); break;
    case 4: cp_async_wait<3>(); break;
    case 5: cp_async_wait<4>(); break;
    default: cp_async_wait<5>(); break;
  }
}

/// 4 * byte k of v (k a compile-time constant after unrolling): the scale table's byte offset.
__device__ __forceinline__ uint32_t byte_x4(uint32_t v, int k) {
  return (k == 0 ? v << 2 : v >> (8 * k - 2)) & 0x3fcu;
}

/// bf16x2 (v, v) with v = fp32(E4M3 byte b) * 2^119 (exact: 4 significant bits, <= 448 * 2^119),
/// the multiplier FmtNvfp4::prepare builds; here once per block into a 256-entry table.
__device__ __forceinline__ uint32_t scale_multiplier(uint32_t b) {
  const float v = e4m3_to_f32(b) * 0x1p119f;
  return pack_bf16x2(v, v);
}

template <class F, bool GATEUP, bool XS>
__global__ void __launch_bounds__(kRingThreads, 1) gemv_ring_kernel(const __grid_constant__ LaunchArgs L) {
  using G = RingGeom<F>;
  constexpr int TR = GATEUP ? 8 : 16;  // output rows per tile
  constexpr bool kNv = G::kScaleSpan > 0;
  extern __shared__ __align__(16) uint8_t smem[];

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int K = L.K, M = L.M, S = L.stages;
  const size_t rb = F::row_bytes(K), sb = static_cast<size_t>(K / 16);
  const int SP = static_cast<int>(rb / kSpan);  // spans per row
  const int R0 = static_cast<int>(static_cast<long long>(blockIdx.x) * L.rows_total / gridDim.x);
  const int R1 = static_cast<int>(static_cast<long long>(blockIdx.x + 1) * L.rows_total / gridDim.x);
  const int nt = (R1 - R0 + TR - 1) / TR;  // tiles of this block
  // Warp groups: GW warps share a tile (its spans split among them), NG groups take the block's
  // tiles round-robin.
  const int GW = L.group_warps, NG = kRingWarps / GW, group = warp / GW, wg = warp % GW;
  const int ntg = group < nt ? (nt - group + NG - 1) / NG : 0;   // tiles of this warp's group
  const int nsw = wg < SP ? (SP - wg + GW - 1) / GW : 0;         // spans per tile, this warp
  // Shared memory: [scale table | reduction | rings (16 warps x S stages) | x (XS)]; the table
  // first so that its address is a constant.
  uint32_t* lut = reinterpret_cast<uint32_t*>(smem);
  float* red = reinterpret_cast<float*>(smem + G::kLutBytes);
  uint8_t* rings = smem + G::kLutBytes + G::kRedBytes;
  uint8_t* ring = rings + static_cast<size_t>(warp) * S * G::kStageBytes;
  uint8_t* xs = rings + static_cast<size_t>(kRingWarps) * S * G::kStageBytes;  // XS: x, see RingGeom

  // ---- producer: instruction i copies tile rows 4i .. 4i + 3, lane L row 4i + L / 8, piece
  // L % 8 (a whole 128-byte line per row per instruction: 4 L2 requests of 128 bytes instead of
  // 16 of 32); lanes L < 16 also copy the 16 scale bytes of row L. -------------------------
  const int prow0 = lane >> 3, ppiece = lane & 7;
  int p_k = 0, p_s = 0;               // next (group tile index, span index) to request
  const uint8_t* pw[4];               // this lane's weight rows 4i + prow0 in that tile (nullptr: none)
  const uint8_t* ps = nullptr;        // the scale row of tile row `lane` (lanes < 16)
  auto row_ptrs = [&](int ti, int r, const uint8_t*& w, const uint8_t** sp) {
    w = nullptr;
    int job, n;
    if (GATEUP) {
      job = r < 8 ? 0 : 1;
      n = R0 + ti * TR + (r & 7);
      if (n >= R1) return;
    } else {
      const int row = R0 + ti * TR + r;
      if (row >= R1) return;
      locate(L, row, job, n);
    }
    w = L.job[job].w + static_cast<size_t>(n) * rb;
    if (sp != nullptr) *sp = L.job[job].s + static_cast<size_t>(n) * sb;
  };
  auto set_rows = [&](int k) {
#pragma unroll
    for (int i = 0; i < 4; ++i) pw[i] = nullptr;
    ps = nullptr;
    if (k >= ntg) return;
    const int ti = group + NG * k;
#pragma unroll
    for (int i = 0; i < 4; ++i) row_ptrs(ti, 4 * i + prow0, pw[i], nullptr);
    if constexpr (kNv) {
      const uint8_t* w_unused;
      if (lane < 16) {
        row_ptrs(ti, lane, w_unused, &ps);
        if (w_unused == nullptr) ps = nullptr;
      }
    }
  };
  const uint32_t ring_s = smem_addr(ring);
  uint32_t doff[4];  // shared offsets of this lane's 4 pieces in a stage (swizzled)
#pragma unroll
  for (int i = 0; i < 4; ++i) doff[i] = (4 * i + prow0) * kSpan + 16 * (ppiece ^ swz(4 * i + prow0));
  auto issue = [&](int slot) {
    if (p_k < ntg) {
      const size_t soff = static_cast<size_t>(wg + GW * p_s) * kSpan + 16 * ppiece;
      const uint32_t dst = ring_s + slot * G::kStageBytes;
#pragma unroll
      for (int i = 0; i < 4; ++i)
        if (pw[i] != nullptr) cp_async16(dst + doff[i], pw[i] + soff);
      if constexpr (kNv)
        if (ps != nullptr)
          cp_async16(dst + 16 * kSpan + lane * G::kScaleSpan,
                     ps + static_cast<size_t>(wg + GW * p_s) * G::kScaleSpan);
      if (++p_s == nsw) {
        p_s = 0;
        set_rows(++p_k);
      }
    }
    cp_async_commit();  // one group per stage, empty past the end: wait_group counts stay exact
  };
  if (nsw > 0) {
    set_rows(0);
    for (int s = 0; s < S; ++s) issue(s);
  }
  if constexpr (kNv)
    for (int i = threadIdx.x; i < 256; i += kRingThreads) lut[i] = scale_multiplier(i);
  gemv_launch_dependents();
  pdl_wait();  // x and y belong to the previous kernels from here on

  // Lanes of group g >= M feed MMA column g with a copy of row M - 1: those columns are discarded.
  const int xrow = min(g, M - 1);
  const bf16* xg = L.x + static_cast<size_t>(xrow) * K;
  const size_t xrb = G::x_row_bytes(K);
  if constexpr (XS) {
    // x -> shared memory once per block, each 8-k chunk already in the format's B-fragment order.
    const int chunks = K / 8;
    for (int i = threadIdx.x; i < M * chunks; i += kRingThreads) {
      const int m = i / chunks, c = i - m * chunks;
      const uint4 v = ld_dep16(L.x + static_cast<size_t>(m) * K + 8 * c);
      uint32_t b[4];
      F::template xunit<0>(v, b);
      const int sp = c / G::kUnitsPerSpan, r = c - sp * G::kUnitsPerSpan;  // r = (2t + j) kUnits + u
      const int tt = r / (2 * F::kUnits), jj = (r / F::kUnits) & 1, uu = r % F::kUnits;
      const int pc = sp * G::kUnitsPerSpan + (jj * F::kUnits + uu) * 4 + tt;
      *reinterpret_cast<uint4*>(xs + m * xrb + 16 * pc) = make_uint4(b[0], b[1], b[2], b[3]);
    }
  }
  if constexpr (XS || kNv) __syncthreads();  // x and the scale table are in place

  // ---- consumer ------------------------------------------------------------------------------
  const int woff00 = g * kSpan + 16 * ((2 * t) ^ swz(g)), woff01 = g * kSpan + 16 * ((2 * t + 1) ^ swz(g));
  const int woff10 = (g + 8) * kSpan + 16 * ((2 * t) ^ swz(g + 8));
  const int woff11 = (g + 8) * kSpan + 16 * ((2 * t + 1) ^ swz(g + 8));
  int slot = 0;
  for (int k = 0; k < ntg; ++k) {
    const int ti = group + NG * k;
    // Four accumulator sets (piece j x first/second MMA of a unit): chains of 4 dependent MMAs per
    // stage instead of 16; summed once per tile.
    float acc4[4][4] = {};
    for (int s = 0; s < nsw; ++s) {
      cp_async_wait_stages(S);
      __syncwarp();  // every lane's copies of this stage are complete and visible
      const uint8_t* st = ring + slot * G::kStageBytes;
      uint4 w[2][2];
      uint32_t sc[2] = {0, 0};
      w[0][0] = lds128(st + woff00);
      w[0][1] = lds128(st + woff01);
      w[1][0] = lds128(st + woff10);
      w[1][1] = lds128(st + woff11);
      if constexpr (kNv) {
        sc[0] = lds32(st + 16 * kSpan + g * G::kScaleSpan + 4 * t);
        sc[1] = lds32(st + 16 * kSpan + (g + 8) * G::kScaleSpan + 4 * t);
      }
      __syncwarp();  // the whole warp has read the slot: refill it
      issue(slot);
      slot = slot + 1 == S ? 0 : slot + 1;

      const int span = wg + GW * s;
      const int c0 = (span * (kSpan / F::kPieceBytes) + 2 * t) * F::kUnits;  // first x chunk of this lane
      const uint8_t* xst = xs + xrow * xrb + 16 * (span * G::kUnitsPerSpan + t);  // XS: + 64 (j kUnits + u)
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        uint4 X[F::kUnits];
#pragma unroll
        for (int u = 0; u < F::kUnits; ++u) {
          if constexpr (XS) {
            X[u] = lds128(xst + 64 * (j * F::kUnits + u));
          } else {
            const uint4 v = ld_dep16(xg + 8 * (c0 + j * F::kUnits + u));
            uint32_t b[4];
            F::template xunit<0>(v, b);
            X[u] = make_uint4(b[0], b[1], b[2], b[3]);
          }
        }
        typename F::Ready r0, r1;
        if constexpr (kNv) {
          const typename F::Piece p0 = F::make(w[0][j], 0), p1 = F::make(w[1][j], 0);
#pragma unroll
          for (int i = 0; i < 4; ++i) {
            r0.w[i] = p0.w[i];
            r1.w[i] = p1.w[i];
          }
          const uint8_t* lb = reinterpret_cast<const uint8_t*>(lut);
          r0.m[0] = lds32(lb + byte_x4(sc[0], 2 * j));
          r0.m[1] = lds32(lb + byte_x4(sc[0], 2 * j + 1));
          r1.m[0] = lds32(lb + byte_x4(sc[1], 2 * j));
          r1.m[1] = lds32(lb + byte_x4(sc[1], 2 * j + 1));
        } else {
          r0 = F::prepare(F::make(w[0][j], 0));
          r1 = F::prepare(F::make(w[1][j], 0));
        }
        [&]<int... J>(std::integer_sequence<int, J...>) {
          (
              [&] {
                uint32_t a0[4], a1[4];
                F::template unit_rt<J>(r0, a0, L.e2m1);
                F::template unit_rt<J>(r1, a1, L.e2m1);
                mma_bf16_16816(acc4[2 * j], a0[0], a1[0], a0[1], a1[1], X[J].x, X[J].y);
                mma_bf16_16816(acc4[2 * j + 1], a0[2], a1[2], a0[3], a1[3], X[J].z, X[J].w);
              }(),
              ...);
        }(std::make_integer_sequence<int, F::kUnits>{});
      }
    }

    float acc[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[i] = (acc4[0][i] + acc4[1][i]) + (acc4[2][i] + acc4[3][i]);
    if (GW == 1) {
      // The warp holds the whole tile: lane (g, t) has rows g, g + 8 x columns 2t, 2t + 1.
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int m = 2 * t + c;
        if (m >= M) continue;
        if (GATEUP) {
          const int n = R0 + ti * TR + g;
          if (n < R1) {
            const float gs = acc[c] * L.job[0].out_scale, us = acc[2 + c] * L.job[1].out_scale;
            L.act[static_cast<size_t>(m) * L.job[0].N + n] = __float2bfloat16(gelu_tanh(gs) * us);
          }
        } else {
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const int row = R0 + ti * TR + g + 8 * h;
            if (row < R1) {
              int job, n;
              locate(L, row, job, n);
              L.job[job].y[static_cast<size_t>(m) * L.job[job].N + n] = acc[2 * h + c] * L.job[job].out_scale;
            }
          }
        }
      }
      continue;
    }
    // Cross-warp reduction of tile ti in the group: red[group][k % 2][wg][row][m], one named
    // barrier per tile (the parity double buffer makes a second one unnecessary).
    float* gred = red + group * (2 * GW * 144) + (k & 1) * (GW * 144);
    float* rp = gred + wg * 144;
    rp[g * 9 + 2 * t] = acc[0];
    rp[g * 9 + 2 * t + 1] = acc[1];
    rp[(g + 8) * 9 + 2 * t] = acc[2];
    rp[(g + 8) * 9 + 2 * t + 1] = acc[3];
    named_barrier(1 + group, GW * 32);
    for (int i = wg * 32 + lane; i < TR * M; i += GW * 32) {
      const int m = i / TR, r = i % TR;
      if (GATEUP) {
        const int n = R0 + ti * TR + r;
        if (n < R1) {
          float gs = 0.0f, us = 0.0f;
          for (int w = 0; w < GW; ++w) {
            gs += gred[w * 144 + r * 9 + m];
            us += gred[w * 144 + (r + 8) * 9 + m];
          }
          gs *= L.job[0].out_scale;
          us *= L.job[1].out_scale;
          L.act[static_cast<size_t>(m) * L.job[0].N + n] = __float2bfloat16(gelu_tanh(gs) * us);
        }
      } else {
        const int row = R0 + ti * TR + r;
        if (row < R1) {
          float sum = 0.0f;
          for (int w = 0; w < GW; ++w) sum += gred[w * 144 + r * 9 + m];
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

/// Stages for a launch: as many as fit next to x (XS) in the 227 KB a block may use, at most 6
/// (16 warps x 6 x 2 KB = 192 KB in flight per SM); 0 when fewer than kMinStages fit.
template <class F>
int stages_for(size_t x_bytes) {
  using G = RingGeom<F>;
  constexpr size_t kMaxSmem = 227 * 1024;
  for (int s = G::kMaxStages; s >= G::kMinStages; --s)
    if (G::smem_bytes(s, x_bytes) <= kMaxSmem) return s;
  return 0;
}

/// Warps per tile group for a launch: the GW in {1, 2, 4, 8, 16} whose busiest warp streams the
/// fewest spans (tiles of its group x spans of a tile it takes), the smaller GW on ties (fewer
/// barriers). E.g. 12B gate/up (15 tiles of 8 rows per block, 15 spans): 1; down (2 tiles, 60
/// spans): 8; q+k+v bf16 (4 tiles, 60 spans): 4; k/v (1 tile): 16.
int pick_group_warps(int rows_total, int blocks, int tile_rows, int spans) {
  const int rows_max = (rows_total + blocks - 1) / blocks;
  const int tiles = (rows_max + tile_rows - 1) / tile_rows;
  int best = kRingWarps, best_cost = 1 << 30;
  for (int gw = 1; gw <= kRingWarps; gw *= 2) {
    const int ng = kRingWarps / gw;
    const int cost = (tiles + ng - 1) / ng * ((spans + gw - 1) / gw);
    if (cost < best_cost) {
      best_cost = cost;
      best = gw;
    }
  }
  return best;
}

std::atomic<int> g_group_warps{0};  // set_gemv_ring_group_warps (0: pick_group_warps)

template <class F, bool GATEUP, bool XS>
void launch_ring_kernel(LaunchArgs& a, size_t smem, cudaStream_t stream) {
  auto* kernel = &gemv_ring_kernel<F, GATEUP, XS>;
  static std::once_flag once;
  std::call_once(once, [&] {
    QUENCH_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 227 * 1024));
  });
  // One block per SM, at least 4 rows per block.
  const int blocks = std::max(1, std::min(sm_count(), a.rows_total / 4));
  const int forced = g_group_warps.load(std::memory_order_relaxed);
  a.group_warps = forced > 0               ? forced
                  : a.group_warps_hint > 0 ? a.group_warps_hint
                                           : pick_group_warps(a.rows_total, blocks, GATEUP ? 8 : 16,
                                                              static_cast<int>(F::row_bytes(a.K) / kSpan));
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(blocks);
  cfg.blockDim = dim3(kRingThreads);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  const bool default_stream = stream == nullptr || stream == cudaStreamLegacy || stream == cudaStreamPerThread;
  cfg.numAttrs = programmatic_dependent_launch() && !default_stream ? 1 : 0;
  QUENCH_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, a));
}

/// x staged in shared memory when that leaves >= 3 stages, else read through L1.
template <class F, bool GATEUP>
void launch_ring(LaunchArgs& a, cudaStream_t stream) {
  using G = RingGeom<F>;
  const size_t xb = static_cast<size_t>(a.M) * G::x_row_bytes(a.K);
  const int sx = stages_for<F>(xb);
  if (sx >= 3) {
    a.stages = sx;
    launch_ring_kernel<F, GATEUP, true>(a, G::smem_bytes(sx, xb), stream);
  } else {
    a.stages = stages_for<F>(0);
    launch_ring_kernel<F, GATEUP, false>(a, G::smem_bytes(a.stages, 0), stream);
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

}  // namespace

}  // namespace quench::cuda::gemv_detail

namespace quench::cuda {

void set_gemv_ring_group_warps(int gw) {
  if (gw != 0 && gw != 1 && gw != 2 && gw != 4 && gw != 8 && gw != 16)
    throw InvalidArgument("set_gemv_ring_group_warps: " + std::to_string(gw) +
                          "; expected 0 (auto), 1, 2, 4, 8 or 16");
  gemv_detail::g_group_warps.store(gw);
}

}  // namespace quench::cuda

namespace quench::cuda::gemv_detail {

bool ring_supports(GemvFormat f, int K, const LaunchArgs& a) {
  // The ring needs up to 227 KB of shared memory per block (sm_90).
  static const bool big_smem = [] {
    int dev = 0, optin = 0;
    QUENCH_CUDA_CHECK(cudaGetDevice(&dev));
    QUENCH_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    return optin >= 227 * 1024;
  }();
  if (!big_smem) return false;
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

bool ring_stages_x(GemvFormat f, int K, int M) {
  switch (f) {
    case GemvFormat::kBF16: return stages_for<FmtBf16>(M * RingGeom<FmtBf16>::x_row_bytes(K)) >= 3;
    case GemvFormat::kFP8: return stages_for<FmtFp8>(M * RingGeom<FmtFp8>::x_row_bytes(K)) >= 3;
    case GemvFormat::kNVFP4: return stages_for<FmtNvfp4<16>>(M * RingGeom<FmtNvfp4<16>>::x_row_bytes(K)) >= 3;
  }
  return false;
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
