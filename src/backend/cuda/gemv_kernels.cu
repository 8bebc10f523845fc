// quench/backend/cuda/gemv_kernels.cu: skinny GEMMs (M <= 8 activation rows) for decode, for
// bf16, FP8 E4M3 (per-tensor scale) and NVFP4 weights, plus the fused launches the runner uses
// (several Linears on one input; gate/up with GELU).
//
// Decode reads every weight byte once, so the kernel is a stream over W (gemv_formats.cuh says
// how each format is decoded in registers, never in memory). Work split:
//   * a block (8 warps) owns RT tiles of 16 weight rows over the whole K; each warp takes every
//     8th 16-byte piece of those rows (lanes 4g..4g+3 read rows g and g + 8 of a tile, 64 bytes
//     contiguous per row per load instruction); U pieces per lane are loaded before the first
//     use, so 4 * 16 bytes x (rows per lane) are in flight per lane;
//   * the dot products run on the tensor cores (mma.m16n8k16, bf16 in, fp32 accumulate) with the
//     weight rows as the MMA's 16 rows and the M <= 8 activation rows as its 8 columns — the
//     CUDA cores only decode (FP8 at M = 8 would need 128 FMA/clk/SM in fp32, the whole SM);
//   * the 8 warps' partial sums meet in shared memory; one thread per (row, m) writes y.
// Activations are read through L1 (every block reads all of x); weights bypass L1. Launched
// without programmatic dependent launch.
#include <algorithm>
#include <atomic>
#include <string>
#include <utility>

#include "backend/cuda/cuda_utils.h"
#include "backend/cuda/gemv_args.cuh"
#include "backend/cuda/gemv_formats.cuh"
#include "backend/cuda/gemv_ring.h"
#include "backend/cuda/gemv_variant.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/pdl.cuh"

namespace quench::cuda {
namespace {

using namespace gemv_detail;

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;

/// RT tiles of 16 rows x all of K per block. Plain (GATEUP = false): block b belongs to the job
/// whose tile range holds it, its tiles are RT consecutive 16-row tiles of that job. GATEUP: job 0
/// is gate and job 1 up; tiles 0..RT/2-1 are gate rows, RT/2..RT-1 the same rows of up.
template <class F, int RT, int U, bool GATEUP>
__device__ __forceinline__ void gemv_body(const LaunchArgs& L) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  constexpr int kRowsPerTileSet = GATEUP ? RT / 2 * 16 : RT * 16;

  int job = 0, tile = blockIdx.x;
  if (!GATEUP) {
    while (job + 1 < L.njobs && tile >= L.tile_end[job]) ++job;
    if (job > 0) tile -= L.tile_end[job - 1];
  }
  const int row0 = tile * kRowsPerTileSet;  // first row of the block (in its job)
  const int K = L.K, M = L.M;

  const uint8_t* wr[RT][2];
  const uint8_t* sr[RT][2];
#pragma unroll
  for (int r = 0; r < RT; ++r) {
    const JobArgs& J = L.job[GATEUP ? (r < RT / 2 ? 0 : 1) : job];
    const int rbase = row0 + 16 * (GATEUP ? r % (RT / 2) : r);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int n = min(rbase + g + 8 * h, J.N - 1);  // rows past N repeat the last (discarded)
      wr[r][h] = J.w + static_cast<size_t>(n) * F::row_bytes(K);
      sr[r][h] = J.s + static_cast<size_t>(n) * static_cast<size_t>(K / 16);
    }
  }

  const int P = K / F::kPieceK;  // pieces per row
  const int slot = warp * 4 + t; // this lane's first piece
  const bool has_x = g < M;      // lane group g supplies activation row g (MMA column g)
  const bf16* xg = L.x + static_cast<size_t>(has_x ? g : 0) * K;

  float acc[RT][4];
#pragma unroll
  for (int r = 0; r < RT; ++r) acc[r][0] = acc[r][1] = acc[r][2] = acc[r][3] = 0.0f;

  // L2 prefetch: thread i < 16 RT owns row i of the block and asks the L2 for that row's chunk
  // (the 32 U pieces one loop iteration loads) kPrefetchAhead iterations ahead of the register
  // loads. The register budget caps what loads alone keep in flight (~64 KB per SM, measured
  // ~60% of bandwidth on the H200); prefetches add DRAM requests without holding registers and
  // turn the loads into L2 hits.
  // Measured on the H200 (run 2): with kPrefetchAhead = 2 every large shape got slower (LM head
  // 95% -> 76% of bandwidth, NVFP4 gate+up+GELU 62% -> 39%), so it is off (0) until tuned.
  constexpr int kChunk = 32 * U, kPrefetchAhead = 0;
  const uint8_t* pf_w = nullptr;
  const uint8_t* pf_s = nullptr;
  if (threadIdx.x < RT * 16) {
    const int r = threadIdx.x / 16;
    const JobArgs& J = L.job[GATEUP ? (r < RT / 2 ? 0 : 1) : job];
    const int n = min(row0 + 16 * (GATEUP ? r % (RT / 2) : r) + threadIdx.x % 16, J.N - 1);
    pf_w = J.w + static_cast<size_t>(n) * F::row_bytes(K);
    pf_s = J.s + static_cast<size_t>(n) * static_cast<size_t>(K / 16);
  }
  auto prefetch = [&](int chunk) {
    const int p0 = chunk * kChunk;
    if (pf_w == nullptr || p0 >= P) return;
    const int p1 = min(P, p0 + kChunk);
    prefetch_l2(pf_w + static_cast<size_t>(p0) * F::kPieceBytes, pf_w + static_cast<size_t>(p1) * F::kPieceBytes);
    if constexpr (F::kScaleBytes > 0)
      prefetch_l2(pf_s + static_cast<size_t>(p0) * F::kScaleBytes, pf_s + static_cast<size_t>(p1) * F::kScaleBytes);
  };
#pragma unroll
  for (int c = 0; c < kPrefetchAhead; ++c) prefetch(c);

  for (int base = 0, it = 0; base < P; base += kChunk, ++it) {
    if constexpr (kPrefetchAhead > 0) prefetch(it + kPrefetchAhead);
    typename F::Piece w[U][RT][2];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int p = base + slot + 32 * u;
#pragma unroll
      for (int r = 0; r < RT; ++r)
#pragma unroll
        for (int h = 0; h < 2; ++h) w[u][r][h] = p < P ? F::load(wr[r][h], sr[r][h], p) : F::zero();
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int p = base + slot + 32 * u;
      const bool xv = has_x && p < P;
      uint4 X[F::kUnits];
#pragma unroll
      for (int j = 0; j < F::kUnits; ++j)
        X[j] = xv ? ld_shared_input16(xg + static_cast<size_t>(p) * F::kPieceK + 8 * j) : make_uint4(0, 0, 0, 0);
#pragma unroll
      for (int r = 0; r < RT; ++r) {
        const typename F::Ready r0 = F::prepare(w[u][r][0]), r1 = F::prepare(w[u][r][1]);
        [&]<int... J>(std::integer_sequence<int, J...>) {
          (
              [&] {
                uint32_t a0[4], a1[4], b[4];
                F::template unit_rt<J>(r0, a0, L.e2m1);
                F::template unit_rt<J>(r1, a1, L.e2m1);
                F::template xunit<J>(X[J], b);
                mma_bf16_16816(acc[r], a0[0], a1[0], a0[1], a1[1], b[0], b[1]);
                mma_bf16_16816(acc[r], a0[2], a1[2], a0[3], a1[3], b[2], b[3]);
              }(),
              ...);
        }(std::make_integer_sequence<int, F::kUnits>{});
      }
    }
  }

  // Cross-warp reduction: red[warp][row in block][m].
  __shared__ float red[kWarps][RT * 16][9];
#pragma unroll
  for (int r = 0; r < RT; ++r) {
    red[warp][16 * r + g][2 * t] = acc[r][0];
    red[warp][16 * r + g][2 * t + 1] = acc[r][1];
    red[warp][16 * r + g + 8][2 * t] = acc[r][2];
    red[warp][16 * r + g + 8][2 * t + 1] = acc[r][3];
  }
  __syncthreads();
  const int m = threadIdx.x / kRowsPerTileSet, rl = threadIdx.x % kRowsPerTileSet;
  if (m >= M) return;
  const int n = row0 + rl;
  if (GATEUP) {
    if (n >= L.job[0].N) return;
    float gs = 0.0f, us = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      gs += red[w][rl][m];
      us += red[w][rl + kRowsPerTileSet][m];
    }
    gs *= L.job[0].out_scale;
    us *= L.job[1].out_scale;
    L.act[static_cast<size_t>(m) * L.job[0].N + n] = __float2bfloat16(gelu_tanh(gs) * us);
  } else {
    const JobArgs& J = L.job[job];
    if (n >= J.N) return;
    float s = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) s += red[w][rl][m];
    J.y[static_cast<size_t>(m) * J.N + n] = s * J.out_scale;
  }
}

/// The kernel, register budget left to ptxas (bf16, FP8: it picks 42..54, no spills).
template <class F, int RT, int U, bool GATEUP>
__global__ void __launch_bounds__(kThreads) gemv_kernel(const __grid_constant__ LaunchArgs L) {
  gemv_body<F, RT, U, GATEUP>(L);
}
/// The kernel allowed up to 128 registers (NVFP4: ptxas' own choice of 64 spills the decode;
/// bf16/FP8 with U = 8: under its own budget ptxas serialises the 16 loads instead of keeping
/// them in flight).
template <class F, int RT, int U, bool GATEUP>
__global__ void __launch_bounds__(kThreads, 2) gemv_kernel_2blocks(const __grid_constant__ LaunchArgs L) {
  gemv_body<F, RT, U, GATEUP>(L);
}
/// NVFP4 at 3 blocks per SM (<= 80 registers; ptxas spills 4-28 bytes): 24 warps and 1.5x the
/// loads in flight per SM (set_gemv_register_blocks(3); an experiment for bench-kernels).
template <class F, int RT, int U, bool GATEUP>
__global__ void __launch_bounds__(kThreads, 3) gemv_kernel_3blocks(const __grid_constant__ LaunchArgs L) {
  gemv_body<F, RT, U, GATEUP>(L);
}

std::atomic<int> g_reg_blocks{0};  // set_gemv_register_blocks (0: the auto choice's)
thread_local int t_auto_reg_blocks = 2;  // the auto choice for the launch being dispatched

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

/// U = pieces per row a lane loads before the first use: RT * U = 4 (128 bytes per lane in
/// flight), or 8 for bf16/FP8 launches with too few blocks to fill the SMs (fewer than 3 per SM).
template <class F, int RT, bool GATEUP, int U = (RT >= 4 ? 1 : 4 / RT)>
void launch(LaunchArgs& a, int blocks, cudaStream_t stream) {
  // Plain launches (no PDL: run 5's PDL version raced, its x loads were hoisted above the wait).
  if constexpr (F::kWideRegs) {
    const int forced = g_reg_blocks.load(std::memory_order_relaxed);
    if ((forced > 0 ? forced : t_auto_reg_blocks) == 3)
      gemv_kernel_3blocks<F, RT, U, GATEUP><<<blocks, kThreads, 0, stream>>>(a);
    else
      gemv_kernel_2blocks<F, RT, U, GATEUP><<<blocks, kThreads, 0, stream>>>(a);
  } else if constexpr (RT * U > 4)
    gemv_kernel_2blocks<F, RT, U, GATEUP><<<blocks, kThreads, 0, stream>>>(a);
  else
    gemv_kernel<F, RT, U, GATEUP><<<blocks, kThreads, 0, stream>>>(a);
  QUENCH_CUDA_LAUNCH_CHECK();
}

/// Plain launch of a.njobs jobs (job fields and K/M/x already set): picks the tiles per block and
/// the loads per lane, and fills the tile map. H200 run 1 (bench-kernels): bandwidth follows the
/// bytes the resident lanes hold in flight per SM (~64 KB: 60-65%, ~120 KB: ~91%), so
///   * bf16/FP8 (42-60 registers, up to 5 blocks per SM): two 16-row tiles per block when that
///     still gives >= 2 blocks per SM (LM head 95%, gate/up 91% in run 1); with fewer than 3
///     blocks per SM, U = 8 pieces per lane (256 bytes in flight per lane, 2 blocks per SM
///     allowed 128 registers: k/v 2048 rows 39% -> 48%, down 65% -> 71% in run 2);
///   * NVFP4 (108-124 registers: 2 blocks per SM whatever the tiling): two tiles per block when
///     that still leaves >= 2 blocks per SM (halves the activation reads).
template <class F>
void launch_plain(LaunchArgs& a, cudaStream_t stream) {
  int tiles16 = 0;
  for (int j = 0; j < a.njobs; ++j) tiles16 += (a.job[j].N + 15) / 16;
  const int sms = sm_count();
  const int rt = tiles16 >= 4 * sms ? 2 : 1;
  int blocks = 0;
  for (int j = 0; j < a.njobs; ++j) {
    blocks += (a.job[j].N + 16 * rt - 1) / (16 * rt);
    a.tile_end[j] = blocks;
  }
  if (rt == 2)
    launch<F, 2, false>(a, blocks, stream);
  else if (!F::kWideRegs && blocks < 3 * sms)
    launch<F, 1, false, F::kWideRegs ? 4 : 8>(a, blocks, stream);  // (NVFP4 never takes this branch)
  else
    launch<F, 1, false>(a, blocks, stream);
}

template <class F>
void launch_gate_up(LaunchArgs& a, cudaStream_t stream) {
  const int N = a.job[0].N;
  const int half = (N + 31) / 32 >= 2 * sm_count() ? 2 : 1;  // tiles per matrix per block
  const int blocks = (N + 16 * half - 1) / (16 * half);
  if (half == 2)
    launch<F, 4, true>(a, blocks, stream);
  else
    launch<F, 2, true>(a, blocks, stream);
}

const char* format_name(GemvFormat f) {
  switch (f) {
    case GemvFormat::kBF16: return "bf16";
    case GemvFormat::kFP8: return "fp8";
    case GemvFormat::kNVFP4: return "nvfp4";
  }
  return "?";
}

/// Shape checks shared by every entry point; `what` names the caller in messages.
void check_shape(const char* what, GemvFormat f, int N, int K, int M) {
  if (M < 1 || M > kGemvMaxRows)
    throw InvalidArgument(std::string(what) + ": M = " + std::to_string(M) + " activation rows; expected 1.." +
                          std::to_string(kGemvMaxRows));
  if (N < 1 || K < 1) throw InvalidArgument(std::string(what) + ": empty weight [" + std::to_string(N) + ", " +
                                            std::to_string(K) + "]");
  const int mult = f == GemvFormat::kBF16 ? 8 : 16;
  if (K % mult)
    throw InvalidArgument(std::string(what) + ": K = " + std::to_string(K) + " for " + format_name(f) +
                          " weights; expected a multiple of " + std::to_string(mult));
}

JobArgs to_args(const GemvJob& j) {
  JobArgs a;
  a.w = static_cast<const uint8_t*>(j.W);
  a.s = j.scales;
  a.N = j.N;
  a.y = j.y;
  a.out_scale = j.format == GemvFormat::kNVFP4 ? j.scale * FmtNvfp4<16>::kOutFactor
                : j.format == GemvFormat::kFP8 ? j.scale
                                               : 1.0f;
  return a;
}

std::atomic<GemvKernel> g_kernel{GemvKernel::kAuto};

/// What kAuto runs for a launch: the ring kernel (with a warp grouping, 0 = picked per launch) or
/// the register kernel (NVFP4 compiled for 2 or 3 blocks per SM).
struct AutoChoice {
  bool ring = false;
  int ring_group_warps = 0;
  int reg_blocks = 2;
};

/// kAuto's rule, from H200 runs 4-5 (bench-kernels, every 12B shape, M = 1, 2, 4, 8; run 5 with
/// the ring's 128-byte-line copies): the ring for bf16 (q+k+v 97% vs 84%, gate+up+GELU 99% vs
/// 92%, down 95% vs 87%, LM head 101% vs 97-100%), for NVFP4 gate+up+GELU (64% vs 59% at M = 1,
/// 60% vs 58% at M = 8) and NVFP4 single Linears at M = 1 (down 51% vs 46-49%); the register
/// kernel for FP8 (q+k+v 84% vs 64%) and NVFP4 single Linears at M >= 2 (down M = 4: 34% vs 49%).
/// The ring is taken only where it can stage x (use_ring).
AutoChoice auto_choice(GemvFormat f, bool gate_up, int K, int M) {
  (void)K;
  AutoChoice c;
  c.ring = f == GemvFormat::kBF16 || (f == GemvFormat::kNVFP4 && (gate_up || M == 1));
  return c;
}

/// Ring or register kernel for this launch (forced by set_gemv_kernel, else auto_choice); the
/// ring only where it applies (ring_supports) and, under kAuto, where it can stage x.
bool use_ring(GemvFormat f, int K, int M, bool gate_up, LaunchArgs& a) {
  const GemvKernel k = g_kernel.load(std::memory_order_relaxed);
  const AutoChoice c = auto_choice(f, gate_up, K, M);
  t_auto_reg_blocks = c.reg_blocks;
  a.group_warps_hint = k == GemvKernel::kAuto ? c.ring_group_warps : 0;
  if (k == GemvKernel::kRegisters || !ring_supports(f, K, a)) return false;
  if (k == GemvKernel::kRing) return true;
  return c.ring && ring_stages_x(f, K, M);
}

template <bool GATEUP>
void dispatch_format(GemvFormat f, int K, LaunchArgs& a, cudaStream_t stream) {
  if (use_ring(f, K, a.M, GATEUP, a)) {
    launch_ring(f, GATEUP, a, stream);
    return;
  }
  switch (f) {
    case GemvFormat::kBF16:
      GATEUP ? launch_gate_up<FmtBf16>(a, stream) : launch_plain<FmtBf16>(a, stream);
      return;
    case GemvFormat::kFP8:
      GATEUP ? launch_gate_up<FmtFp8>(a, stream) : launch_plain<FmtFp8>(a, stream);
      return;
    case GemvFormat::kNVFP4:
      if (K % 32 == 0)
        GATEUP ? launch_gate_up<FmtNvfp4<16>>(a, stream) : launch_plain<FmtNvfp4<16>>(a, stream);
      else
        GATEUP ? launch_gate_up<FmtNvfp4<8>>(a, stream) : launch_plain<FmtNvfp4<8>>(a, stream);
      return;
  }
}

}  // namespace

void set_gemv_kernel(GemvKernel k) { g_kernel.store(k); }
void set_gemv_register_blocks(int blocks) {
  if (blocks != 0 && blocks != 2 && blocks != 3)
    throw InvalidArgument("set_gemv_register_blocks: " + std::to_string(blocks) + "; expected 0 (auto), 2 or 3");
  g_reg_blocks.store(blocks);
}
GemvKernel gemv_kernel() { return g_kernel.load(std::memory_order_relaxed); }

void gemv_multi(const GemvJob* jobs, int njobs, int K, const bf16* x, int M, cudaStream_t stream) {
  if (njobs < 1 || njobs > kGemvMaxJobs)
    throw InvalidArgument("gemv_multi: " + std::to_string(njobs) + " jobs; expected 1.." +
                          std::to_string(kGemvMaxJobs));
  LaunchArgs a;
  a.njobs = njobs;
  a.K = K;
  a.M = M;
  a.x = x;
  for (int j = 0; j < njobs; ++j) {
    if (jobs[j].format != jobs[0].format)
      throw InvalidArgument("gemv_multi: job " + std::to_string(j) + " is " + format_name(jobs[j].format) +
                            ", job 0 is " + format_name(jobs[0].format) + "; one launch takes one format");
    check_shape("gemv_multi", jobs[j].format, jobs[j].N, K, M);
    a.job[j] = to_args(jobs[j]);
  }
  dispatch_format<false>(jobs[0].format, K, a, stream);
}

void gemv_gate_up_gelu(const GemvJob& gate, const GemvJob& up, int K, const bf16* x, int M, bf16* act,
                       cudaStream_t stream) {
  if (gate.format != up.format || gate.N != up.N)
    throw InvalidArgument(std::string("gemv_gate_up_gelu: gate (") + format_name(gate.format) + ", N " +
                          std::to_string(gate.N) + ") and up (" + format_name(up.format) + ", N " +
                          std::to_string(up.N) + ") must have the same format and shape");
  check_shape("gemv_gate_up_gelu", gate.format, gate.N, K, M);
  LaunchArgs a;
  a.njobs = 2;
  a.K = K;
  a.M = M;
  a.x = x;
  a.act = act;
  a.job[0] = to_args(gate);
  a.job[1] = to_args(up);
  dispatch_format<true>(gate.format, K, a, stream);
}

void gemv_bf16(const bf16* W, int N, int K, const bf16* x, int M, float* y, cudaStream_t stream) {
  const GemvJob j{GemvFormat::kBF16, W, nullptr, 1.0f, N, y};
  gemv_multi(&j, 1, K, x, M, stream);
}

void gemv_fp8(const uint8_t* W, float scale, int N, int K, const bf16* x, int M, float* y, cudaStream_t stream) {
  const GemvJob j{GemvFormat::kFP8, W, nullptr, scale, N, y};
  gemv_multi(&j, 1, K, x, M, stream);
}

void gemv_nvfp4(const uint8_t* Wq, const uint8_t* scales, float global_scale, int N, int K, const bf16* x, int M,
                float* y, cudaStream_t stream) {
  const GemvJob j{GemvFormat::kNVFP4, Wq, scales, global_scale, N, y};
  gemv_multi(&j, 1, K, x, M, stream);
}

}  // namespace quench::cuda
