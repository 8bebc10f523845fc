// quench/backend/cuda/mma_gemm.cu: the weight-only tensor-core GEMM of mma_gemm.h.
//
// Tiling. A block is WARPS (4 or 8) warps; warp w owns MT tiles of 16 W rows (rows row0 +
// (w*MT + t)*16 ..) and all 8*NT tokens of the block's token tile, so each x fragment it builds
// feeds MT W tiles. Full chunks (inside K, aligned rows) are copied without bounds arithmetic,
// from per-thread addresses computed once per block (LoadCtx). K is walked in chunks of 64 bytes of W per row
// (bf16: 32 k, FP8: 64 k, NVFP4: 128 k); lane (g = lane/4, tig = lane%4) of a warp copies and
// later reads the 16 bytes [tig*16, tig*16+16) of its rows g and g+8 of each tile, so W needs no
// shared-memory barrier of its own and is read without bank conflicts. x chunks (and NVFP4 block
// scales) are shared by the block: cp.async into S stages, one __syncthreads per chunk.
//
// The k permutation. A dot product does not change when k is permuted the same way in both
// operands, and mma.sync pairs thread (g, tig)'s A registers with thread (n, tig)'s B registers,
// so any map from (tig, step, register) to physical k works as long as x follows it. Each thread
// takes k in the order its dequantization produces them (Marlin's bit tricks, which yield the
// pairs {k, k+4} for E2M1 nibbles and {k, k+2} for E4M3 bytes) and builds its x fragments with
// the matching byte permutes (prmt). x units of 16 bytes are placed in shared memory so that the
// 8 lanes of one 128-bit shared load hit distinct banks.
//
// Exactness. E2M1 value × 2^-126 comes out of the bit trick as a bf16 (exponent field = the two
// E2M1 exponent bits); times bf16(block scale × 2^118) it is e2m1 × scale × 2^-8 — at most 6
// significant bits, so exact in bf16; the global scale and 2^8 are applied to the fp32 result.
// FP8 gives e4m3 × 2^-120, times bf16 2^120 (exact), the per-tensor scale on the result. So the
// only rounding is the fp32 accumulation of the tensor cores.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cooperative_groups.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

#include "backend/cuda/kernels.h"
#include "backend/cuda/mma_gemm.h"

namespace quench::cuda {
namespace {

enum class Fmt { kBf16, kFp8, kFp4 };

/// Shared-memory layout of one pipeline stage and the chunk geometry of a kernel variant:
/// WARPS warps per block, MT tiles of 16 W rows per warp, NT tiles of 8 tokens per block, and
/// chunks of SUB × 64 contiguous bytes per W row (longer runs per row keep DRAM pages open).
/// MINB blocks per SM is the occupancy the register budget is capped for (__launch_bounds__).
/// WK > 1 splits each chunk along K inside the block: warp w = wk·WR + wr (WR = WARPS / WK warps
/// along rows) owns the MT tiles of row group wr and only sub-chunk wk (SUB == WK), so a block
/// streams SUB × 64 contiguous bytes per row with WR·MT·16 rows; the WK partial sums are added in
/// shared memory before the epilogue.
template <Fmt F_, int MT_, int NT_, int SUB_, int WARPS_, bool XP_ = false, int MINB_ = 0, int WK_ = 1>
struct Tile {
  static constexpr Fmt F = F_;
  /// x units are permuted in shared memory once per chunk (permute_x) into the k order of the
  /// W unpack, so compute_sub reads B fragments with one 128-bit load and no byte permutes
  /// (each warp used to permute every unit itself). Meaningless for bf16 (natural order).
  static constexpr bool XP = XP_ && F_ != Fmt::kBf16;
  static constexpr int MT = MT_, NT = NT_, SUB = SUB_;
  static constexpr int kWarps = WARPS_, kThreads = WARPS_ * 32;
  static constexpr int WK = WK_, WR = WARPS_ / WK_;
  static_assert(WK_ == 1 || (SUB_ == WK_ && WARPS_ % WK_ == 0), "K-split warps own one sub-chunk each");
  /// Blocks per SM the registers are capped for: MINB, or by default two 8-warp blocks (<= 128
  /// registers) / three 4-warp blocks (<= 168).
  static constexpr int kMinBlocks = MINB_ > 0 ? MINB_ : WARPS_ >= 8 ? 2 : 3;
  static constexpr int KS = F == Fmt::kFp4 ? 128 : F == Fmt::kFp8 ? 64 : 32;  ///< k per 64-byte sub-chunk
  static constexpr int KC = KS * SUB;          ///< k per chunk
  static constexpr int U = KS / 32;            ///< 16-byte x units per thread per token per sub-chunk
  static constexpr int BR = WR * MT * 16;      ///< W rows per block
  static constexpr int BT = NT * 8;            ///< tokens per block
  static constexpr int kWBytes = BR * 64 * SUB;
  static constexpr int kScBytes = F == Fmt::kFp4 ? BR * 8 * SUB : 0;
  /// x in shared memory: one row of kXRow bytes per token, no padding. The 8 lanes of one
  /// 128-bit load phase are tokens g, g+1 (4 units each); with rows a multiple of 128 bytes the
  /// odd tokens' 64-byte halves are swapped (unit slot ^ 4), so the phase hits distinct banks.
  static constexpr int kXRow = U * 64 * SUB;
  static constexpr bool kXSwizzle = kXRow % 128 == 0;
  static constexpr int kXBytes = BT * kXRow;
  static constexpr int kStage = kWBytes + kScBytes + kXBytes;
  static constexpr int kRedBytes = kThreads * MT * NT * 16;  ///< accumulators for the cluster reduce
  template <int S>
  static constexpr int smem() { return S * kStage > kRedBytes ? S * kStage : kRedBytes; }
  /// Byte offset in a stage's W tile of the 512 bytes (one 16-byte piece per lane: rows g or
  /// g+8 of the tile) of tile mt, half h, sub-chunk sub of warp `warp`.
  static __device__ __forceinline__ int w_off(int warp, int sub, int mt, int h) {
    return WK == 1 ? (((sub * kWarps + warp) * MT + mt) * 2 + h) * 512 : ((warp * MT + mt) * 2 + h) * 512;
  }
  /// Byte offset in a stage's x tile of 16-byte unit `slot` of token `t`.
  static __device__ __forceinline__ int x_off(int t, int slot) {
    return t * kXRow + (kXSwizzle ? (slot ^ ((t & 1) << 2)) : slot) * 16;
  }
};

/// Linears computed by one launch (same x, K and format; their row blocks are concatenated).
constexpr int kMaxJobs = 4;

struct Job {
  const uint8_t* w;       // W rows, row_bytes each
  const uint8_t* sc;      // NVFP4 block scales [N, K/16]
  float* y;               // [M, N]
  float* partial;         // [splits, M, N] when split-K goes through memory
  int N;
  int rb_begin;           // first row block of this job in the grid
  float out_scale;
};

struct Params {
  Job job[kMaxJobs];
  int njobs;
  const bf16* x;          // [M, K]
  int K, M;
  int row_bytes;          // bytes of one W row
  int nchunks, splits, token_tiles;
  float out_scale;
  int full_chunks;        // chunks [0, full_chunks) lie entirely inside K
  uint32_t fp4_mul_lo, fp4_mul_hi;  // 0x1040, 0x104 (fp4_pair)
  uint32_t fp8_mul_mag, fp8_mul_sign, fp8_mul_hi;  // 16, 256, 2^28 (fp8_pair_even / _odd)
  bool w_aligned16;       // every W row starts 16-byte aligned
  bool sc_aligned4;       // every block-scale chunk starts 4-byte aligned
  bool aligned;           // w_aligned16 and (NVFP4) sc_aligned4: full chunks take the fast path
  bool cluster_reduce;    // splits > 1 reduced inside a cluster of `splits` blocks (no partials)
};

// ---- PTX wrappers --------------------------------------------------------------------------

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
/// 16-byte async copy; bytes past `valid` (0 or 16 here; any 0..16 allowed) are zero-filled.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, int valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(valid));
}
__device__ __forceinline__ void cp_async8(void* dst, const void* src, int valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(valid));
}
__device__ __forceinline__ void cp_async4(void* dst, const void* src, int valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(valid));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
/// griddepcontrol.wait: returns once the kernel this one programmatically depends on has completed
/// and flushed its memory (at once when launched without PDL); before the first read of x.
__device__ __forceinline__ void pdl_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }
/// griddepcontrol.launch_dependents: lets the next kernel on the stream (launched with PDL) be
/// scheduled; it still waits for this grid's completion before reading y.
__device__ __forceinline__ void pdl_launch_dependents() { asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

/// d += a · b, m16n8k16, bf16 inputs, fp32 accumulators (PTX ISA "mma.m16n8k16" fragment layout).
__device__ __forceinline__ void mma_bf16(float* d, const uint32_t* a, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t prmt(uint32_t a, uint32_t b, uint32_t sel) { return __byte_perm(a, b, sel); }

__device__ __forceinline__ uint32_t bf2_mul(uint32_t a, uint32_t b) {
  __nv_bfloat162 r = __hmul2(*reinterpret_cast<const __nv_bfloat162*>(&a), *reinterpret_cast<const __nv_bfloat162*>(&b));
  return *reinterpret_cast<uint32_t*>(&r);
}

/// The E2M1 nibbles at bits 0..3 and 16..19 of `w` (m = 0x1040) or 4..7 and 20..23 (m = 0x104)
/// as a bf16 pair worth e2m1 × 2^-126 each: sign to bit 15, the 3 magnitude bits to the
/// exponent's low 2 bits and the mantissa's top bit. The multiply places both copies of the masked
/// nibble at once (n·2^12 + n·2^6, no overlapping bits so no carries) and runs on the FMA pipe;
/// `m` comes from the kernel parameters so the compiler cannot turn it back into two shifts and an
/// add on the integer pipe, which the unpack saturates (per word: 9 integer + 4 IMAD instead of 16
/// integer instructions). Equal bit for bit to ((w << 12) & 0x80008000) | ((w << 6) & 0x01C001C0).
__device__ __forceinline__ uint32_t fp4_pair(uint32_t w, uint32_t nib_mask, uint32_t m) {
  return ((w & nib_mask) * m) & 0x81C081C0u;
}
/// Runtime multipliers of the unpack (kernel parameters, so the compiler keeps the multiplies on
/// the FMA pipe instead of turning them into shifts and adds on the integer pipe): fp4_pair, and
/// fp8_pair_even / fp8_pair_odd.
struct UnpackMul {
  uint32_t fp4_lo, fp4_hi;              ///< 0x1040, 0x104
  uint32_t fp8_mag, fp8_sign, fp8_hi;  ///< 16, 256, 2^28
};

/// The E4M3 bytes 0 and 2 of `w` as a bf16 pair worth e4m3 × 2^-120 each: sign to bit 15, the 7
/// exponent/mantissa bits to bits 4..10 (two IMADs, two masks). Equal bit for bit to
/// ((w << 8) & 0x80008000) | ((w << 4) & 0x07F007F0).
__device__ __forceinline__ uint32_t fp8_pair_even(uint32_t w, const UnpackMul& m) {
  return (w & 0x007F007Fu) * m.fp8_mag + (w & 0x00800080u) * m.fp8_sign;
}
/// The E4M3 bytes 1 and 3 of `w` likewise (mask, IMAD.HI as a right shift by 4, mask-or). Equal
/// bit for bit to (w & 0x80008000) | ((w >> 4) & 0x07F007F0).
__device__ __forceinline__ uint32_t fp8_pair_odd(uint32_t w, const UnpackMul& m) {
  return (w & 0x80008000u) | __umulhi(w & 0x7F007F00u, m.fp8_hi);
}

__device__ __forceinline__ uint32_t word(const uint4& v, int i) {
  return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

// ---- one chunk: global -> shared ----------------------------------------------------------

/// Per-thread source pointers of a block's tiles, computed once: W and scale rows past N are
/// clamped to row N-1 (their products land in rows that are never stored), x tokens past M are
/// zero-filled.
template <class T>
struct LoadCtx {
  const uint8_t* w;         ///< this lane's 16-byte column of its first W row, chunk 0
  uint32_t woff[T::MT][2];  ///< byte offsets of rows (tile, half) from that row
  const uint8_t* sc;        ///< NVFP4: this lane's 4-byte piece of its first scale row
  uint32_t scoff[T::MT];
  const bf16* x;            ///< this thread's first x unit (token t0, unit u), chunk 0
  int t0, u;                ///< token (in the tile) and 16-byte unit of the first x slot
};

template <class T>
__device__ __forceinline__ LoadCtx<T> make_load_ctx(const Params& p, const Job& jb, int row0, int tok0) {
  constexpr int MT = T::MT;
  const int warp = (threadIdx.x / 32) % T::WR, lane = threadIdx.x % 32, g = lane / 4, tig = lane % 4;
  LoadCtx<T> c;
  const int wr0 = min(row0 + warp * MT * 16 + g, jb.N - 1);
  c.w = jb.w + static_cast<size_t>(wr0) * p.row_bytes + tig * 16;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int h = 0; h < 2; ++h)
      c.woff[mt][h] = static_cast<uint32_t>(min(row0 + (warp * MT + mt) * 16 + h * 8 + g, jb.N - 1) - wr0) *
                      static_cast<uint32_t>(p.row_bytes);
  if constexpr (T::F == Fmt::kFp4) {
    const int sc_row = p.K / 16;
    const int sr0 = min(row0 + warp * MT * 16 + lane / 2, jb.N - 1);
    c.sc = jb.sc + static_cast<size_t>(sr0) * sc_row + (lane % 2) * 4;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
      c.scoff[mt] = static_cast<uint32_t>(min(row0 + (warp * MT + mt) * 16 + lane / 2, jb.N - 1) - sr0) *
                    static_cast<uint32_t>(sc_row);
  } else {
    c.sc = nullptr;
  }
  constexpr int kPerTok = 4 * T::U * T::SUB;
  c.t0 = threadIdx.x / kPerTok;
  c.u = threadIdx.x % kPerTok;
  c.x = p.x + static_cast<size_t>(tok0 + c.t0) * p.K + c.u * 8;
  return c;
}

/// Copies chunk `chunk` of the block's W rows and block scales into stage `st` (no commit).
/// FULL: the chunk lies inside K and every W row / scale row is 16- / 4-byte aligned, so no
/// bounds arithmetic; else bytes past K are zero-filled.
template <class T, bool FULL>
__device__ __forceinline__ void load_chunk_w(const Params& p, const Job& jb, const LoadCtx<T>& c, uint8_t* st,
                                             int chunk) {
  constexpr int MT = T::MT, SUB = T::SUB;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, tig = lane % 4;
  const int wr = warp % T::WR, wk = warp / T::WR;
  // W: each lane its own 16 bytes of rows g and g+8 of each of its tiles, per 64-byte sub-chunk;
  // a row's SUB sub-chunks are contiguous in memory.
#pragma unroll
  for (int sub = 0; sub < SUB; ++sub) {
    if (T::WK > 1 && sub != wk) continue;  // K-split: this warp's sub-chunk only
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int off = (chunk * SUB + sub) * 64;
        const uint8_t* src = c.w + c.woff[mt][h] + off;
        uint8_t* dst = st + T::w_off(warp, sub, mt, h) + lane * 16;
        if constexpr (FULL) {
          cp_async16(dst, src, 16);
        } else {
          const int valid = max(0, min(16, p.row_bytes - off - tig * 16));
          if (p.w_aligned16) {
            cp_async16(dst, valid ? src : jb.w, valid);
          } else {  // NVFP4 with K % 32 != 0: rows are 8-byte aligned
            const int v0 = min(valid, 8), v1 = max(0, valid - 8);
            cp_async8(dst, v0 ? src : jb.w, v0);
            cp_async8(dst + 8, v1 ? src + 8 : jb.w, v1);
          }
        }
      }
    }
  }
  if constexpr (T::F == Fmt::kFp4) {
    // Block scales: 16 rows × 8·SUB bytes per tile; lane copies 4-byte pieces of row lane/2.
    const int sc_row = p.K / 16;
#pragma unroll
    for (int piece = 0; piece < SUB; ++piece)
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        if (T::WK > 1 && piece != wk) continue;
        const int r = lane / 2, part = piece * 2 + lane % 2;
        const int off = chunk * 8 * SUB + piece * 8;  // + (lane % 2) * 4 inside c.sc
        const uint8_t* src = c.sc + c.scoff[mt] + off;
        uint8_t* dst = st + T::kWBytes + ((wr * MT + mt) * 16 + r) * 8 * SUB + part * 4;
        if constexpr (FULL) {
          cp_async4(dst, src, 4);
        } else if (p.sc_aligned4) {
          const int valid = max(0, min(4, sc_row - off - (lane % 2) * 4));
          cp_async4(dst, valid ? src : jb.sc, valid);
        } else {
          uint32_t v = 0;
#pragma unroll
          for (int b = 0; b < 4; ++b)
            if (off + (lane % 2) * 4 + b < sc_row) v |= static_cast<uint32_t>(src[b]) << (8 * b);
          *reinterpret_cast<uint32_t*>(dst) = v;
        }
      }
  }
}

/// Copies chunk `chunk` of the block's x tokens into stage `st` (no commit): BT tokens × 4U·SUB
/// units of 16 bytes; unit u of a token (sub-chunk u / 4U, unit ul within) goes to slot
/// (u / 4U) * 4U + (ul % U) * 4 + ul / U (the order compute_sub reads them in). Tokens past M
/// and (not FULL) k past K are zero-filled.
template <class T, bool FULL>
__device__ __forceinline__ void load_chunk_x(const Params& p, const LoadCtx<T>& c, uint8_t* st, int chunk,
                                             int tok0) {
  constexpr int SUB = T::SUB;
  uint8_t* xs = st + T::kWBytes + T::kScBytes;
  constexpr int kPerTok = 4 * T::U * SUB;
  constexpr int kUnits = T::BT * kPerTok;
  static_assert(T::kThreads % kPerTok == 0, "x units per token must divide the block");
  constexpr int kTokStep = T::kThreads / kPerTok;
  const int sub = c.u / (4 * T::U), ul = c.u % (4 * T::U);
  const int slot = sub * 4 * T::U + (ul % T::U) * 4 + ul / T::U;
  const int k = chunk * T::KC + c.u * 8;
#pragma unroll
  for (int i = 0; i * T::kThreads < kUnits; ++i) {
    const int t = c.t0 + i * kTokStep;
    if (kUnits % T::kThreads == 0 || t < T::BT) {
      const bool ok = tok0 + t < p.M && (FULL || k < p.K);
      const bf16* src = ok ? c.x + static_cast<size_t>(i * kTokStep) * p.K + chunk * T::KC : p.x;
      cp_async16(xs + T::x_off(t, slot), src, ok ? 16 : 0);
    }
  }
}

/// The byte permute that turns a 16-byte x unit (k0..k7, bf16) into the four B registers of
/// two k16 steps in the order of the W unpack: NVFP4 pairs {k, k+4}: (0,4),(1,5) | (2,6),(3,7);
/// FP8 pairs {k, k+2}: (0,2),(1,3) | (4,6),(5,7); bf16 natural.
template <Fmt F>
__device__ __forceinline__ uint4 permute_unit(const uint4& xv) {
  if constexpr (F == Fmt::kFp4)
    return make_uint4(prmt(xv.x, xv.z, 0x5410), prmt(xv.x, xv.z, 0x7632), prmt(xv.y, xv.w, 0x5410),
                      prmt(xv.y, xv.w, 0x7632));
  else if constexpr (F == Fmt::kFp8)
    return make_uint4(prmt(xv.x, xv.y, 0x5410), prmt(xv.x, xv.y, 0x7632), prmt(xv.z, xv.w, 0x5410),
                      prmt(xv.z, xv.w, 0x7632));
  else
    return xv;
}

/// Permutes every x unit of stage `st` in place (T::XP): each thread the units it copied in
/// load_chunk (same slots), after the barrier that made the chunk visible and before the one
/// that lets the warps read it.
template <class T>
__device__ __forceinline__ void permute_x(uint8_t* st, const LoadCtx<T>& c) {
  uint8_t* xs = st + T::kWBytes + T::kScBytes;
  constexpr int kPerTok = 4 * T::U * T::SUB;
  constexpr int kUnits = T::BT * kPerTok;
  constexpr int kTokStep = T::kThreads / kPerTok;
  const int sub = c.u / (4 * T::U), ul = c.u % (4 * T::U);
  const int slot = sub * 4 * T::U + (ul % T::U) * 4 + ul / T::U;
#pragma unroll
  for (int i = 0; i * T::kThreads < kUnits; ++i) {
    const int t = c.t0 + i * kTokStep;
    if (kUnits % T::kThreads == 0 || t < T::BT) {
      uint4* u = reinterpret_cast<uint4*>(xs + T::x_off(t, slot));
      *u = permute_unit<T::F>(*u);
    }
  }
}

// ---- one chunk: shared -> tensor cores ----------------------------------------------------

/// This lane's byte offsets in a stage's x tile for even and odd groups c of 4 units (64 bytes):
/// off[c & 1] + c * 64 + 8j * kXRow = T::x_off(8j + g, c * 4 + tig) (the swizzle flips bit 2 of
/// the slot for odd tokens, i.e. moves the lane one group up or down by c's parity); the rest of
/// the offset is a compile-time constant.
struct XLane {
  int off[2];
};

template <class T>
__device__ __forceinline__ XLane make_x_lane() {
  const int lane = threadIdx.x % 32, g = lane / 4, tig = lane % 4;
  XLane xl;
  xl.off[0] = T::x_off(g, tig);
  xl.off[1] = T::x_off(g, 4 + tig) - 64;
  return xl;
}

/// One 64-byte sub-chunk of every W row of the warp's tiles times the block's x tokens.
template <class T>
__device__ __forceinline__ void compute_sub(const uint8_t* st, int sub, const XLane& xl, const UnpackMul& m,
                                            float (&acc)[T::MT][T::NT][4]) {
  constexpr Fmt F = T::F;
  constexpr int MT = T::MT, NT = T::NT;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, tig = lane % 4;
  const int wr = warp % T::WR;
  uint4 wv[MT][2];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int h = 0; h < 2; ++h)
      wv[mt][h] = *reinterpret_cast<const uint4*>(st + T::w_off(warp, sub, mt, h) + lane * 16);

  // NVFP4: scales of blocks 2tig, 2tig+1 of rows g, g+8 as bf16 pairs {s·2^118, s·2^118}.
  uint32_t sc[MT][2][2];
  if constexpr (F == Fmt::kFp4) {
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const uint16_t s2 = *reinterpret_cast<const uint16_t*>(
            st + T::kWBytes + ((wr * MT + mt) * 16 + g + 8 * h) * 8 * T::SUB + sub * 8 + tig * 2);
        // E4M3 pair -> half2 (exact, one cvt) -> fp32 × 2^118 (exact) -> bf16 pair {s, s}.
        const __half2_raw hr = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(s2), __NV_E4M3);
        const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&hr));
        const float f0 = f.x * 0x1p118f, f1 = f.y * 0x1p118f;
        const __nv_bfloat162 b0 = __floats2bfloat162_rn(f0, f0);
        const __nv_bfloat162 b1 = __floats2bfloat162_rn(f1, f1);
        sc[mt][h][0] = *reinterpret_cast<const uint32_t*>(&b0);
        sc[mt][h][1] = *reinterpret_cast<const uint32_t*>(&b1);
      }
  }
  const __nv_bfloat162 fp8_bias2 = __float2bfloat162_rn(0x1p120f);
  const uint32_t fp8_bias = *reinterpret_cast<const uint32_t*>(&fp8_bias2);

  const uint8_t* xs = st + T::kWBytes + T::kScBytes;
#pragma unroll
  for (int q = 0; q < T::U; ++q) {  // one 16-byte x unit = two k16 steps
    uint32_t b[NT][2][2];
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      // = xs + T::x_off(8 * j + g, c * 4 + tig) for unit group c = sub * U + q, the lane part
      // hoisted (XLane).
      const uint4 xv = *reinterpret_cast<const uint4*>(xs + xl.off[(sub * T::U + q) & 1] + j * 8 * T::kXRow +
                                                       (sub * T::U + q) * 64);
      if constexpr (T::XP) {  // already in the unpack's order (permute_x)
        b[j][0][0] = xv.x;
        b[j][0][1] = xv.y;
        b[j][1][0] = xv.z;
        b[j][1][1] = xv.w;
      } else if constexpr (F == Fmt::kFp4) {  // A pairs {k, k+4}: x pairs (0,4),(1,5) | (2,6),(3,7)
        b[j][0][0] = prmt(xv.x, xv.z, 0x5410);
        b[j][0][1] = prmt(xv.x, xv.z, 0x7632);
        b[j][1][0] = prmt(xv.y, xv.w, 0x5410);
        b[j][1][1] = prmt(xv.y, xv.w, 0x7632);
      } else if constexpr (F == Fmt::kFp8) {  // A pairs {k, k+2}: x pairs (0,2),(1,3) | (4,6),(5,7)
        b[j][0][0] = prmt(xv.x, xv.y, 0x5410);
        b[j][0][1] = prmt(xv.x, xv.y, 0x7632);
        b[j][1][0] = prmt(xv.z, xv.w, 0x5410);
        b[j][1][1] = prmt(xv.z, xv.w, 0x7632);
      } else {  // natural order
        b[j][0][0] = xv.x;
        b[j][0][1] = xv.y;
        b[j][1][0] = xv.z;
        b[j][1][1] = xv.w;
      }
    }
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      uint32_t a[2][4];  // [step][a0..a3]: a0/a2 row g, a1/a3 row g+8
      if constexpr (F == Fmt::kFp4) {
        const uint32_t w0 = word(wv[mt][0], q), w1 = word(wv[mt][1], q);
        const uint32_t v0 = w0 >> 8, v1 = w1 >> 8;  // nibbles 2, 3, 6, 7 at the places of 0, 1, 4, 5
        const uint32_t s0 = sc[mt][0][q / 2], s1 = sc[mt][1][q / 2];
        // pair i = {nibble i, nibble i+4}; step 0 takes pairs 0 and 1, step 1 pairs 2 and 3.
        a[0][0] = bf2_mul(fp4_pair(w0, 0x000F000Fu, m.fp4_lo), s0);
        a[0][1] = bf2_mul(fp4_pair(w1, 0x000F000Fu, m.fp4_lo), s1);
        a[0][2] = bf2_mul(fp4_pair(w0, 0x00F000F0u, m.fp4_hi), s0);
        a[0][3] = bf2_mul(fp4_pair(w1, 0x00F000F0u, m.fp4_hi), s1);
        a[1][0] = bf2_mul(fp4_pair(v0, 0x000F000Fu, m.fp4_lo), s0);
        a[1][1] = bf2_mul(fp4_pair(v1, 0x000F000Fu, m.fp4_lo), s1);
        a[1][2] = bf2_mul(fp4_pair(v0, 0x00F000F0u, m.fp4_hi), s0);
        a[1][3] = bf2_mul(fp4_pair(v1, 0x00F000F0u, m.fp4_hi), s1);
      } else if constexpr (F == Fmt::kFp8) {
#pragma unroll
        for (int s = 0; s < 2; ++s) {
          const uint32_t w0 = word(wv[mt][0], 2 * q + s), w1 = word(wv[mt][1], 2 * q + s);
          a[s][0] = bf2_mul(fp8_pair_even(w0, m), fp8_bias);  // bytes 0, 2
          a[s][1] = bf2_mul(fp8_pair_even(w1, m), fp8_bias);
          a[s][2] = bf2_mul(fp8_pair_odd(w0, m), fp8_bias);  // bytes 1, 3
          a[s][3] = bf2_mul(fp8_pair_odd(w1, m), fp8_bias);
        }
      } else {
#pragma unroll
        for (int s = 0; s < 2; ++s) {
          a[s][0] = word(wv[mt][0], 2 * s);
          a[s][1] = word(wv[mt][1], 2 * s);
          a[s][2] = word(wv[mt][0], 2 * s + 1);
          a[s][3] = word(wv[mt][1], 2 * s + 1);
        }
      }
#pragma unroll
      for (int s = 0; s < 2; ++s)
#pragma unroll
        for (int j = 0; j < NT; ++j) mma_bf16(acc[mt][j], a[s], b[j][s][0], b[j][s][1]);
    }
  }
}

template <class T>
__device__ __forceinline__ void compute_chunk(const uint8_t* st, const XLane& xl, const UnpackMul& m,
                                              float (&acc)[T::MT][T::NT][4]) {
  const int wk = static_cast<int>(threadIdx.x / 32) / T::WR;
#pragma unroll
  for (int sub = 0; sub < T::SUB; ++sub)
    if (T::WK == 1 || sub == wk) compute_sub<T>(st, sub, xl, m, acc);
}

// ---- the kernel ---------------------------------------------------------------------------

template <class T, int S>
__global__ void __launch_bounds__(T::kThreads, T::kMinBlocks) mma_gemm_kernel(const Params p) {
  constexpr int MT = T::MT, NT = T::NT;
  constexpr int kThreads = T::kThreads;
  extern __shared__ __align__(16) uint8_t smem[];
  // Block order: split fastest (a thread-block cluster is `splits` consecutive blocks), then
  // token tile, then row block, so the blocks sharing W rows run together and W is fetched from
  // DRAM once.
  int b = blockIdx.x;
  const int split = b % p.splits;
  b /= p.splits;
  const int tt = b % p.token_tiles;
  const int rb = b / p.token_tiles;
  Job jb = p.job[0];  // the job owning row block rb (constant indices: no local copy of p)
#pragma unroll
  for (int i = 1; i < kMaxJobs; ++i)
    if (i < p.njobs && rb >= p.job[i].rb_begin) jb = p.job[i];
  const int row0 = (rb - jb.rb_begin) * T::BR, tok0 = tt * T::BT;
  const int c_begin = static_cast<int>(static_cast<long long>(p.nchunks) * split / p.splits);
  const int c_end = static_cast<int>(static_cast<long long>(p.nchunks) * (split + 1) / p.splits);
  const int n = c_end - c_begin;
  // Chunks [c_begin, c_full) need no bounds arithmetic (see load_chunk).
  const int c_full = p.aligned ? min(c_end, p.full_chunks) : c_begin;
  const LoadCtx<T> ctx = make_load_ctx<T>(p, jb, row0, tok0);
  const XLane xl = make_x_lane<T>();
  const UnpackMul fm{p.fp4_mul_lo, p.fp4_mul_hi, p.fp8_mul_mag, p.fp8_mul_sign, p.fp8_mul_hi};
  auto load_w = [&](int stage, int chunk) {
    if (chunk < c_full)
      load_chunk_w<T, true>(p, jb, ctx, smem + stage * T::kStage, chunk);
    else
      load_chunk_w<T, false>(p, jb, ctx, smem + stage * T::kStage, chunk);
  };
  auto load_x = [&](int stage, int chunk) {
    if (chunk < c_full)
      load_chunk_x<T, true>(p, ctx, smem + stage * T::kStage, chunk, tok0);
    else
      load_chunk_x<T, false>(p, ctx, smem + stage * T::kStage, chunk, tok0);
  };

  float acc[MT][NT][4];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) acc[mt][j][r] = 0.0f;

  // Prologue. W and its scales are constants: their first S-1 chunks are requested before
  // griddepcontrol.wait, overlapping the tail of the kernel that writes x when launched with PDL
  // (the first commit group then holds all of them plus x of chunk 0; later groups one x chunk).
#pragma unroll
  for (int s = 0; s < S - 1; ++s)
    if (s < n) load_w(s, c_begin + s);
  pdl_wait();
#pragma unroll
  for (int s = 0; s < S - 1; ++s) {
    if (s < n) load_x(s, c_begin + s);
    cp_async_commit();
  }
  for (int i = 0; i < n; ++i) {
    cp_async_wait<S - 2>();
    __syncthreads();  // chunk i visible to all; everyone is done with chunk i-1's stage
    if constexpr (T::XP) {
      permute_x<T>(smem + (i % S) * T::kStage, ctx);
      __syncthreads();
    }
    const int next = i + S - 1;
    if (next < n) {
      load_w(next % S, c_begin + next);
      load_x(next % S, c_begin + next);
    }
    cp_async_commit();
    compute_chunk<T>(smem + (i % S) * T::kStage, xl, fm, acc);
  }
  cp_async_wait<0>();
  pdl_launch_dependents();  // the next kernel may be scheduled; it waits for our completion

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, tig = lane % 4;
  if constexpr (T::WK > 1) {
    // K-split warps: the WK partial sums of row group wr are added into warp wr (wk = 0), which
    // then stands for the group below (warps wr < WR hold the block's result).
    constexpr int kF4 = MT * NT;
    __syncthreads();  // the pipeline's shared memory is free
    float4* red = reinterpret_cast<float4*>(smem);
    if (warp >= T::WR) {
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int j = 0; j < NT; ++j)
          red[threadIdx.x * kF4 + mt * NT + j] =
              make_float4(acc[mt][j][0], acc[mt][j][1], acc[mt][j][2], acc[mt][j][3]);
    }
    __syncthreads();
    if (warp < T::WR) {
#pragma unroll
      for (int w = 1; w < T::WK; ++w)
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
          for (int j = 0; j < NT; ++j) {
            const float4 v = red[((w * T::WR + warp) * 32 + lane) * kF4 + mt * NT + j];
            acc[mt][j][0] += v.x;
            acc[mt][j][1] += v.y;
            acc[mt][j][2] += v.z;
            acc[mt][j][3] += v.w;
          }
    }
    // The cluster path's first barrier orders these reads before red is overwritten.
    if (!(p.splits > 1 && p.cluster_reduce)) __syncthreads();
  }
  if (p.splits > 1 && p.cluster_reduce) {
    // Split-K inside a thread-block cluster: every block parks its accumulators in its own shared
    // memory; block `rank` sums its slice of the tile over the cluster's blocks (distributed
    // shared memory, fixed order: deterministic) and writes y.
    namespace cg = cooperative_groups;
    cg::cluster_group cluster = cg::this_cluster();
    constexpr int kF4 = MT * NT;  // float4 per thread
    __syncthreads();              // the pipeline's shared memory is free
    float4* red = reinterpret_cast<float4*>(smem);
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int j = 0; j < NT; ++j)
        red[threadIdx.x * kF4 + mt * NT + j] = make_float4(acc[mt][j][0], acc[mt][j][1], acc[mt][j][2], acc[mt][j][3]);
    cluster.sync();  // (threads of warps >= WR wrote slots past kTotal: never read)
    constexpr int kTotal = T::WR * 32 * kF4;  // threads of warps wr < WR hold the block's result
    const int per = (kTotal + p.splits - 1) / p.splits;
    const int e_end = min(kTotal, (split + 1) * per);
    for (int e = split * per + threadIdx.x; e < e_end; e += kThreads) {
      float4 sum = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      for (int q = 0; q < p.splits; ++q) {
        const float4 v = cluster.map_shared_rank(red, q)[e];
        sum.x += v.x;
        sum.y += v.y;
        sum.z += v.z;
        sum.w += v.w;
      }
      const int t = e / kF4, mj = e % kF4, mt = mj / NT, j = mj % NT;
      const int tl = t % 32, tg = tl / 4, tt4 = tl % 4;
      const int row = row0 + ((t / 32) * MT + mt) * 16 + tg;
      const int tok = tok0 + 8 * j + 2 * tt4;
      const float v4[4] = {sum.x, sum.y, sum.z, sum.w};
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int rr = row + (r >= 2 ? 8 : 0), tk = tok + (r & 1);
        if (rr < jb.N && tk < p.M) jb.y[static_cast<size_t>(tk) * jb.N + rr] = v4[r] * jb.out_scale;
      }
    }
    cluster.sync();  // keep this block's shared memory alive until the cluster has read it
    return;
  }
  if (warp >= T::WR) return;  // K-split warps: their sums are in warp wr < WR
  float* out = p.splits > 1 ? jb.partial + static_cast<size_t>(split) * p.M * jb.N : jb.y;
  const float scale = p.splits > 1 ? 1.0f : jb.out_scale;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int row = row0 + (warp * MT + mt) * 16 + g + (r >= 2 ? 8 : 0);
        const int tok = tok0 + 8 * j + 2 * tig + (r & 1);
        if (row < jb.N && tok < p.M) out[static_cast<size_t>(tok) * jb.N + row] = acc[mt][j][r] * scale;
      }
}

/// y[i] = scale · Σ_s partial[s][i] over the split-K partial sums.
__global__ void splitk_reduce_kernel(const float* __restrict__ partial, int splits, size_t n, float scale,
                                     float* __restrict__ y) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    float s = 0.0f;
    for (int k = 0; k < splits; ++k) s += partial[static_cast<size_t>(k) * n + i];
    y[i] = s * scale;
  }
}

// ---- planning and dispatch ----------------------------------------------------------------

/// The compiled kernel variants: MT row tiles per warp, NT token tiles of 8, S stages, SUB
/// 64-byte sub-chunks per row per chunk, WARPS warps per block.
struct Variant {
  int mt, nt, stages, sub, warps;
  bool xperm;    ///< x permuted once per chunk in shared memory (Tile::XP)
  int min_blocks;  ///< register cap for this many blocks per SM (0: Tile's default)
  int wk;          ///< warps along K inside the block (Tile::WK)
  constexpr int rows() const { return warps / wk * mt * 16; }  ///< W rows per block
};
constexpr Variant kVariants[] = {
    {2, 2, 4, 1, 8, false, 0, 1}, {1, 2, 4, 2, 8, false, 0, 1},  {2, 4, 4, 1, 8, false, 0, 1},
    {1, 4, 4, 2, 8, false, 0, 1}, {2, 8, 3, 1, 8, false, 0, 1},  {1, 8, 3, 2, 8, false, 0, 1},
    {2, 4, 4, 1, 8, true, 0, 1},  {2, 8, 3, 1, 8, true, 0, 1},   {2, 2, 4, 1, 4, false, 4, 1},
    {2, 2, 6, 1, 8, false, 1, 1}, {2, 2, 4, 1, 16, false, 1, 1}, {2, 2, 3, 4, 8, false, 0, 4},
    {2, 2, 4, 2, 8, false, 0, 2}, {2, 4, 3, 2, 8, true, 0, 2}};
constexpr int kNumVariants = sizeof(kVariants) / sizeof(kVariants[0]);

/// Split-K parts reduced inside one thread-block cluster at most (the portable cluster size).
constexpr int kMaxClusterSplits = 8;

struct Plan {
  int variant = 0;
  int row_blocks = 0, token_tiles = 0, nchunks = 0, splits = 1;
  bool cluster = false;  ///< splits reduced in a cluster (else partials + splitk_reduce_kernel)
  size_t workspace = 0;
};

int sm_count() {
  static int n = [] {
    int dev = 0, v = 0;
    QUENCH_CUDA_CHECK(cudaGetDevice(&dev));
    QUENCH_CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev));
    return v;
  }();
  return n;
}

/// k per 64-byte sub-chunk of a W row.
int k_per_sub(WeightFormat f) { return f == WeightFormat::kNVFP4 ? 128 : f == WeightFormat::kFP8 ? 64 : 32; }

/// Blocks of variant `v` that fit on one SM: the register cap of __launch_bounds__ (Tile::
/// kMinBlocks) or the shared memory (Tile::smem, 228 KB per SM, 1 KB reserved per block).
int blocks_per_sm(WeightFormat f, const Variant& v) {
  const int br = v.rows(), bt = v.nt * 8;
  const int u = k_per_sub(f) / 32;
  const int stage = br * 64 * v.sub + (f == WeightFormat::kNVFP4 ? br * 8 * v.sub : 0) + bt * u * 64 * v.sub;
  const int smem = std::max(v.stages * stage, v.warps * 32 * v.mt * v.nt * 16);
  const int by_smem = (228 * 1024) / (smem + 1024);
  return std::max(1, std::min(v.min_blocks > 0 ? v.min_blocks : v.warps >= 8 ? 2 : 3, by_smem));
}

/// Sum of the row blocks of `n` weights for row tiles of `br` rows.
long long total_row_blocks(const GemmWeight* W, int n, int br) {
  long long rb = 0;
  for (int j = 0; j < n; ++j) rb += (W[j].N + br - 1) / br;
  return rb;
}

/// Default variant by format, M and the call's weights, the fastest of the H200 sweeps of runs 4
/// and 5 (bench-kernels "gemm", CUDA-graph timing; NVFP4 15360x3840 / 3840x15360, run 5):
///   M <= 16: one NVFP4 weight 2x2x6 r1w8 at 1 block/SM (6 stages): 21.9 / 23.1 us (2x2x4 r1w8
///   at 2/SM: 23.4 / 25.3); groups (gate+up) and FP8 2x2x4 r1w8 (gate+up 40.6 us, FP8 29.9);
///   M <= 32: 2x4x4 r1w8 xperm: 35.7 / 34.8 us (others within 1 us);
///   M <= 64: 2x8x3 r1w8 xperm: 57.8 / 51.7 us (gate+up 103 us);
///   M <= 128: one weight whose 256-row blocks fill the GPU 2x4x4 xperm (15360: 91.1 us, 4 token
///   tiles), else 2x8x3 xperm (3840: 85.1 us; gate+up in one launch 2x8x3 161.6 us in run 4 vs
///   176.6 with 2x4x4 xperm in run 5).
/// K-split warps (wk 2, 4: 128-256-byte runs per row), 4-warp blocks at 4/SM and 16-warp blocks
/// were slower everywhere (run 5: e.g. M=16 42.2 / 29.0 / 29.6 / 23.7 us). bf16 (LinearExecutor
/// keeps it on cuBLAS): 128-byte runs per row, 1x2x4 r2w8 up to M = 16 (15360x3840: 33.9 us),
/// 1x4x4 r2w8 above (M=64: 51.1 us).
int default_variant(const GemmWeight* W, int n, int M) {
  if (W[0].format == WeightFormat::kBF16) return M <= 16 ? 1 : 3;
  if (M <= 16) return W[0].format == WeightFormat::kNVFP4 && n == 1 ? 9 : 0;
  if (M <= 32) return 6;
  if (M <= 64) return 7;
  const bool big = total_row_blocks(W, n, 256) * kMaxClusterSplits >= 2LL * sm_count() * 8 / 10;
  return n == 1 && big ? 6 : 7;
}

/// Grid of a call. `splits` > 0 forces the split count along K; 0 doubles it until the grid
/// fills 80% of the resident block slots (blocks_per_sm × SMs: enough W bytes in flight for a
/// memory-bound kernel), keeping >= 2 K chunks per split and at most kMaxClusterSplits, so the
/// reduction stays inside a cluster. Forced counts above kMaxClusterSplits write partial sums to
/// the workspace instead.
Plan make_plan(const GemmWeight* W, int n, int M, int variant, int splits) {
  Plan pl;
  pl.variant = variant;
  const Variant& v = kVariants[variant];
  const int br = v.rows();
  pl.row_blocks = static_cast<int>(total_row_blocks(W, n, br));
  pl.token_tiles = (M + v.nt * 8 - 1) / (v.nt * 8);
  const int kc = k_per_sub(W[0].format) * v.sub;
  pl.nchunks = (W[0].K + kc - 1) / kc;
  if (splits > 0) {
    pl.splits = std::min(splits, pl.nchunks);
  } else {
    const long long base = static_cast<long long>(pl.row_blocks) * pl.token_tiles;
    const long long target = 8LL * sm_count() * blocks_per_sm(W[0].format, v) / 10;
    long long want = 1;  // a power of two (cluster shapes as CUTLASS uses them)
    while (want < kMaxClusterSplits && base * want < target && 2 * want <= pl.nchunks / 2) want *= 2;
    pl.splits = static_cast<int>(want);
  }
  pl.cluster = pl.splits > 1 && pl.splits <= kMaxClusterSplits;
  size_t rows = 0;
  for (int j = 0; j < n; ++j) rows += static_cast<size_t>(W[j].N);
  pl.workspace = pl.splits > 1 && !pl.cluster ? static_cast<size_t>(M) * rows * sizeof(float) * pl.splits : 0;
  return pl;
}

int find_variant(const MmaGemmTiling& t) {
  for (int i = 0; i < kNumVariants; ++i)
    if (kVariants[i].mt == t.mt && kVariants[i].nt == t.nt && kVariants[i].stages == t.stages &&
        kVariants[i].sub == t.sub && kVariants[i].warps == t.warps && kVariants[i].xperm == t.xperm &&
        kVariants[i].min_blocks == t.min_blocks && kVariants[i].wk == std::max(1, t.wk))
      return i;
  throw InvalidArgument("mma_gemm: no compiled variant with mt=" + std::to_string(t.mt) + " nt=" +
                        std::to_string(t.nt) + " stages=" + std::to_string(t.stages) + " sub=" +
                        std::to_string(t.sub) + " warps=" + std::to_string(t.warps) +
                        " xperm=" + std::to_string(t.xperm) + " min_blocks=" + std::to_string(t.min_blocks) +
                        " wk=" + std::to_string(t.wk) +
                        " (see mma_gemm_tilings)");
}

template <Fmt F, int MT, int NT, int S, int SUB, int WARPS, bool XP = false, int MINB = 0, int WK = 1>
void launch_variant(const Params& p, const Plan& pl, cudaStream_t stream) {
  using T = Tile<F, MT, NT, SUB, WARPS, XP, MINB, WK>;
  constexpr int smem = T::template smem<S>();
  static_assert(smem <= 227 * 1024, "shared memory of a variant exceeds the sm_90 limit");
  auto* kernel = mma_gemm_kernel<T, S>;
  static std::once_flag once;
  std::call_once(once, [kernel] {
    QUENCH_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  });
  const long long blocks = static_cast<long long>(pl.row_blocks) * pl.token_tiles * pl.splits;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(static_cast<unsigned>(blocks));
  cfg.blockDim = dim3(T::kThreads);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[2];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = pl.cluster ? static_cast<unsigned>(pl.splits) : 1u;
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  attr[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[1].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  // PDL under pdl.cuh's rule (on, and a created stream). A driver that refuses it together with
  // cluster dimensions gets plain launches from then on (decided at the first launch, which the
  // runner makes outside graph capture).
  static bool pdl_refused = false;
  const bool default_stream = stream == nullptr || stream == cudaStreamLegacy || stream == cudaStreamPerThread;
  cfg.numAttrs = programmatic_dependent_launch() && !default_stream && !pdl_refused ? 2 : 1;
  cudaError_t err = cudaLaunchKernelEx(&cfg, kernel, p);
  if (err != cudaSuccess && cfg.numAttrs == 2) {
    (void)cudaGetLastError();
    pdl_refused = true;
    cfg.numAttrs = 1;
    err = cudaLaunchKernelEx(&cfg, kernel, p);
  }
  QUENCH_CUDA_CHECK(err);
}

template <Fmt F>
void launch_format(const Params& p, const Plan& pl, cudaStream_t stream) {
  static_assert(kNumVariants == 14, "one case per entry of kVariants");
  switch (pl.variant) {
    case 0: launch_variant<F, 2, 2, 4, 1, 8>(p, pl, stream); break;
    case 1: launch_variant<F, 1, 2, 4, 2, 8>(p, pl, stream); break;
    case 2: launch_variant<F, 2, 4, 4, 1, 8>(p, pl, stream); break;
    case 3: launch_variant<F, 1, 4, 4, 2, 8>(p, pl, stream); break;
    case 4: launch_variant<F, 2, 8, 3, 1, 8>(p, pl, stream); break;
    case 5: launch_variant<F, 1, 8, 3, 2, 8>(p, pl, stream); break;
    case 6: launch_variant<F, 2, 4, 4, 1, 8, true>(p, pl, stream); break;
    case 7: launch_variant<F, 2, 8, 3, 1, 8, true>(p, pl, stream); break;
    case 8: launch_variant<F, 2, 2, 4, 1, 4, false, 4>(p, pl, stream); break;
    case 9: launch_variant<F, 2, 2, 6, 1, 8, false, 1>(p, pl, stream); break;
    case 10: launch_variant<F, 2, 2, 4, 1, 16, false, 1>(p, pl, stream); break;
    case 11: launch_variant<F, 2, 2, 3, 4, 8, false, 0, 4>(p, pl, stream); break;
    case 12: launch_variant<F, 2, 2, 4, 2, 8, false, 0, 2>(p, pl, stream); break;
    default: launch_variant<F, 2, 4, 3, 2, 8, true, 0, 2>(p, pl, stream); break;
  }
}

void check(const GemmWeight* W, float* const* y, int n, const bf16* x, int M) {
  if (n < 1 || n > kMaxJobs)
    throw InvalidArgument("mma_gemm: " + std::to_string(n) + " weights in one call, expected 1.." +
                          std::to_string(kMaxJobs));
  for (int j = 0; j < n; ++j) {
    const std::string what = "mma_gemm weight " + std::to_string(j) + " (N=" + std::to_string(W[j].N) + ", K=" +
                             std::to_string(W[j].K) + ", M=" + std::to_string(M) + ", format " +
                             std::string(weight_format_name(W[j].format)) + ")";
    if (W[j].N <= 0 || W[j].K <= 0 || M <= 0) throw InvalidArgument(what + ": N, K and M must be positive");
    if (W[j].K % 16) throw InvalidArgument(what + ": K must be a multiple of 16");
    if (W[j].K != W[0].K || W[j].format != W[0].format)
      throw InvalidArgument(what + ": all weights of one call need the K and format of weight 0");
    if (!W[j].data || !x || !y[j]) throw InvalidArgument(what + ": null weight, x or y pointer");
    if (W[j].format == WeightFormat::kNVFP4 && !W[j].block_scales)
      throw InvalidArgument(what + ": NVFP4 weight without block scales");
    if (reinterpret_cast<uintptr_t>(x) % 16 || reinterpret_cast<uintptr_t>(W[j].data) % 16)
      throw InvalidArgument(what + ": x and W must be 16-byte aligned");
  }
}

void run_plan(const GemmWeight* W, float* const* y, int n, const Plan& pl, const bf16* x, int M, void* workspace,
              size_t workspace_bytes, cudaStream_t stream) {
  if (pl.workspace > workspace_bytes || (pl.workspace && !workspace))
    throw InvalidArgument("mma_gemm: workspace of " + std::to_string(workspace_bytes) + " bytes, needs " +
                          std::to_string(pl.workspace) + " (mma_gemm_workspace_bytes)");
  const WeightFormat f = W[0].format;
  const int br = kVariants[pl.variant].rows();
  Params p{};
  p.njobs = n;
  p.x = x;
  p.K = W[0].K;
  p.M = M;
  p.nchunks = pl.nchunks;
  p.splits = pl.splits;
  p.token_tiles = pl.token_tiles;
  p.cluster_reduce = pl.cluster;
  p.row_bytes = f == WeightFormat::kNVFP4 ? p.K / 2 : f == WeightFormat::kFP8 ? p.K : p.K * 2;
  p.w_aligned16 = p.row_bytes % 16 == 0;
  p.sc_aligned4 = (p.K / 16) % 4 == 0;
  p.aligned = p.w_aligned16 && (f != WeightFormat::kNVFP4 || p.sc_aligned4);
  p.full_chunks = p.K / (k_per_sub(f) * kVariants[pl.variant].sub);
  p.fp8_mul_mag = 16u;
  p.fp8_mul_sign = 256u;
  p.fp8_mul_hi = 1u << 28;
  p.fp4_mul_lo = 0x1040u;
  p.fp4_mul_hi = 0x104u;
  float* partial = static_cast<float*>(workspace);
  int rb = 0;
  for (int j = 0; j < n; ++j) {
    Job& jb = p.job[j];
    jb.w = static_cast<const uint8_t*>(W[j].data);
    jb.sc = W[j].block_scales;
    jb.y = y[j];
    jb.N = W[j].N;
    jb.rb_begin = rb;
    rb += (W[j].N + br - 1) / br;
    // NVFP4: the 2^-8 of the in-register dequantization; FP8: the per-tensor scale.
    jb.out_scale = f == WeightFormat::kNVFP4 ? W[j].scale * 256.0f : f == WeightFormat::kFP8 ? W[j].scale : 1.0f;
    jb.partial = pl.workspace ? partial : nullptr;
    if (pl.workspace) partial += static_cast<size_t>(pl.splits) * M * W[j].N;
  }
  switch (f) {
    case WeightFormat::kNVFP4: launch_format<Fmt::kFp4>(p, pl, stream); break;
    case WeightFormat::kFP8: launch_format<Fmt::kFp8>(p, pl, stream); break;
    case WeightFormat::kBF16: launch_format<Fmt::kBf16>(p, pl, stream); break;
  }
  if (pl.splits > 1 && !pl.cluster) {
    for (int j = 0; j < n; ++j) {
      const size_t items = static_cast<size_t>(M) * W[j].N;
      const int blocks = static_cast<int>(std::min<size_t>((items + 255) / 256, 4096));
      splitk_reduce_kernel<<<blocks, 256, 0, stream>>>(p.job[j].partial, pl.splits, items, p.job[j].out_scale, y[j]);
      QUENCH_CUDA_LAUNCH_CHECK();
    }
  }
}

}  // namespace

GemmWeight gemm_weight(const DeviceLinear& W) {
  return GemmWeight{W.format, W.N, W.K, W.data.get(), W.block_scales.get<uint8_t>(), W.scale};
}

std::vector<MmaGemmTiling> mma_gemm_tilings() {
  std::vector<MmaGemmTiling> out;
  for (const Variant& v : kVariants)
    out.push_back({v.mt, v.nt, v.stages, 0, v.sub, v.warps, v.xperm, v.min_blocks, v.wk});
  return out;
}

MmaGemmTiling mma_gemm_tiling(const GemmWeight& W, int M) { return mma_gemm_multi_tiling(&W, 1, M); }

MmaGemmTiling mma_gemm_multi_tiling(const GemmWeight* W, int n, int M) {
  const int v = default_variant(W, n, M);
  const Variant& k = kVariants[v];
  return {k.mt, k.nt, k.stages, make_plan(W, n, M, v, 0).splits, k.sub, k.warps, k.xperm, k.min_blocks, k.wk};
}

MmaGemmTiling mma_gemm_tiling(const GemmWeight& W, int M, const MmaGemmTiling& t) {
  MmaGemmTiling r = t;
  r.splits = make_plan(&W, 1, M, find_variant(t), t.splits).splits;
  return r;
}

size_t mma_gemm_workspace_bytes(const GemmWeight& W, int M) { return mma_gemm_multi_workspace_bytes(&W, 1, M); }
size_t mma_gemm_workspace_bytes(const DeviceLinear& W, int M) { return mma_gemm_workspace_bytes(gemm_weight(W), M); }
size_t mma_gemm_workspace_bytes(const GemmWeight& W, int M, const MmaGemmTiling& t) {
  if (W.N <= 0 || W.K <= 0 || M <= 0) return 0;
  return make_plan(&W, 1, M, find_variant(t), t.splits).workspace;
}
size_t mma_gemm_multi_workspace_bytes(const GemmWeight* W, int n, int M) {
  if (n < 1 || M <= 0) return 0;
  for (int j = 0; j < n; ++j)
    if (W[j].N <= 0 || W[j].K <= 0) return 0;
  return make_plan(W, n, M, default_variant(W, n, M), 0).workspace;
}

// Crossover from the H200 bench-kernels runs (group "gemm"). Run 4 (f4c1d13): NVFP4 15360x3840
// M=16 23.5 us here vs 111 us dequantize + cuBLAS, M=64 58.4 vs 112.6, M=128 91.2 vs 113.5, M=2048
// 1047 vs 429; FP8 M=64 48.9 vs 83.6, M=128 90.1 vs 84.8 (3840x15360: 77.9 vs 89.2); bf16: cuBLAS
// on the stored weight ties or wins at every M (15360x3840 M=16 33.9 vs 30.4 us; q/k/v 4096+2048+
// 2048 in one launch M=16 30.7 vs 31.1 us for three cuBLAS calls, M=64 47.6 vs 29.4; o 3840x4096
// M=16 12.0 vs 12.4, M=64 20.1 vs 10.9). So the quantized formats up to M = 128 (every decode
// batch), bf16 never.
bool mma_gemm_preferred(const GemmWeight& W, int M) {
  if (W.K % 16 || M <= 0) return false;
  switch (W.format) {
    case WeightFormat::kNVFP4:
    case WeightFormat::kFP8: return M <= 128;
    case WeightFormat::kBF16: return false;
  }
  return false;
}
bool mma_gemm_preferred(const DeviceLinear& W, int M) { return mma_gemm_preferred(gemm_weight(W), M); }

void mma_gemm(const GemmWeight& W, const bf16* x, int M, float* y, void* workspace, size_t workspace_bytes,
              cudaStream_t stream) {
  mma_gemm_multi(&W, &y, 1, x, M, workspace, workspace_bytes, stream);
}

void mma_gemm(const GemmWeight& W, const MmaGemmTiling& t, const bf16* x, int M, float* y, void* workspace,
              size_t workspace_bytes, cudaStream_t stream) {
  check(&W, &y, 1, x, M);
  run_plan(&W, &y, 1, make_plan(&W, 1, M, find_variant(t), t.splits), x, M, workspace, workspace_bytes, stream);
}

void mma_gemm(const DeviceLinear& W, const bf16* x, int M, float* y, void* workspace, size_t workspace_bytes,
              cudaStream_t stream) {
  mma_gemm(gemm_weight(W), x, M, y, workspace, workspace_bytes, stream);
}

void mma_gemm_multi(const GemmWeight* W, float* const* y, int n, const bf16* x, int M, void* workspace,
                    size_t workspace_bytes, cudaStream_t stream) {
  check(W, y, n, x, M);
  run_plan(W, y, n, make_plan(W, n, M, default_variant(W, n, M), 0), x, M, workspace, workspace_bytes, stream);
}

}  // namespace quench::cuda
