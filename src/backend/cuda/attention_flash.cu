// quench/backend/cuda/attention_flash.cu: paged attention on the tensor cores (FlashAttention-2
// structure, Dao 2023, "FlashAttention-2", Alg. 1; register-level P reuse as in
// Dao-AILab/flash-attention csrc/flash_attn/src/flash_fwd_kernel.h), for prefill chunks and decode
// steps alike.
//
// A block owns a tile of rows = (query token, query head) pairs that share one KV head (token-major:
// 32 tokens x 2 heads on sliding layers, 4 tokens x 16 heads on the MQA global layers) and walks
// the keys of its sequence in tiles of BN, read from the paged cache through the block table:
//   S = Q K^T (mma m16n8k16, fp32), scale 1.0 (gemma4-architecture.md §2.4; k_scale for FP8),
//   causal / sliding-window mask from each row's position (§2.6), online softmax in fp32 (base 2),
//   O += bf16(P) V (P stays in registers as the A operand).
// Warps split the rows in 16-row groups; for head_dim 512 two warps share a row group, each owning
// 256 output columns and half of the QK^T contraction (partial scores are summed through shared
// memory), so the accumulator stays at 128 fp32 registers per thread.
// Shared memory: Q [BM][D], K [BN][D], V [BN][D] bf16, rows swizzled in 16-byte chunks
// (chunk ^ (row % 8)) so ldmatrix is conflict-free; FP8 caches land in byte staging buffers
// first and are widened to bf16 (exact: every E4M3 value is a bf16 value; the scale is applied to
// the fp32 scores / outputs instead). The cp.async pipeline overlaps the V load with QK^T and the
// next K load with PV (single K and V buffers, as flash_fwd_kernel.h does); the first K and V
// tiles are requested together.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cuda_fp8.h>

#include <cub/block/block_scan.cuh>

#include "backend/cuda/attention_flash.h"
#include "backend/cuda/attention_mma.cuh"
#include "backend/cuda/cuda_utils.h"

namespace quench::cuda::detail {
namespace {

using namespace quench::cuda::mma;

constexpr int kDecodeTokens = 64;         // at or below: one token per tile (decode-shaped steps)
constexpr int kMinKeysPerSplit = 32;      // a split reads at least this many keys (one decode tile)
constexpr size_t kMaxSplitScratch = 64ull << 20;  // split partials of one call, bytes
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

/// Compile-time geometry of one kernel instance (head_dim D, MW row groups of 16).
template <int D, int MW>
struct Cfg {
  static constexpr int DS = D > 256 ? D / 256 : 1;  // warps per row group (split of the head dim)
  static constexpr int DW = D / DS;                 // output columns per warp
  static constexpr int NW = MW * DS;
  static constexpr int NT = NW * 32;
  static constexpr int BM = 16 * MW;                // rows per block
  // keys per tile: decode blocks (MW == 1) take short tiles so that 4-5 blocks fit an SM
  static constexpr int BN = MW == 1 ? (D > 256 ? 16 : 32) : (D > 256 ? 32 : 64);
  static constexpr int NC = D / 8;                  // 16-byte chunks per bf16 row
  static constexpr int SWZ = (NC < 8 ? NC : 8) - 1;
  static constexpr int kQBytes = BM * D * 2, kKBytes = BN * D * 2;
  static constexpr int kSxBytes = DS > 1 ? NW * (BN / 8) * 4 * 32 * 4 : 0;
  static constexpr int kStageBytes = BN * D;        // one FP8 K or V tile
  static constexpr size_t smem(bool fp8) {
    return static_cast<size_t>(kQBytes) + 2 * kKBytes + kSxBytes + (fp8 ? 2 * kStageBytes : 0);
  }
  static_assert(D % 32 == 0 && DW % 16 == 0 && BN % 16 == 0, "tile shape");
};

/// Kernel arguments (passed by value).
struct Params {
  const bf16* q;
  bf16* out;
  const int32_t* pos;
  const int32_t* seq;
  const int32_t* table;
  int max_blocks;
  const void* k;
  const void* v;
  float k_scale, v_scale;
  int T, Hq, Hkv, G, Gt, head_groups, tile_tokens, num_tiles, window, splits;
  int bs, bs_shift;  // block size, log2(block size) or -1
  float* part_acc;
  float* part_ml;
  int num_groups;      // Hkv * head_groups
  const int2* tiles;   // prefill: tile list (first token, count), from build_tiles_kernel
  int* tile_hdr;       // prefill: [0] tiles in the list, [1] work counter
};

/// Index (in 16-byte chunks) of chunk c of row r in a swizzled [rows][D] bf16 tile.
template <int D, int MW>
__device__ __forceinline__ int swz(int r, int c) {
  using C = Cfg<D, MW>;
  return r * C::NC + (c ^ (r & C::SWZ));
}

/// Issues the cp.async copies of keys kt..kt+BN-1 (those < ke with a valid block) of one KV head
/// into `dst`: a swizzled bf16 tile, or for FP8 a plain [BN][D] byte tile. Others are zero-filled.
template <int D, int MW, bool FP8>
__device__ __forceinline__ void load_kv_tile(void* dst, const void* base, int kt, int ke, const int32_t* tab,
                                             const Params& p, int kvh) {
  using C = Cfg<D, MW>;
  constexpr int kElem = FP8 ? 1 : 2;
  constexpr int kChunks = D * kElem / 16;  // 16-byte chunks per key row
  const uint8_t* b = static_cast<const uint8_t*>(base);
  const uint32_t d0 = smem_addr(dst);
#pragma unroll 4
  for (int i = threadIdx.x; i < C::BN * kChunks; i += C::NT) {
    const int key = i / kChunks, c = i % kChunks;
    const int kp = kt + key;
    bool ok = kp < ke;
    size_t off = 0;
    if (ok) {
      const int bi = p.bs_shift >= 0 ? (kp >> p.bs_shift) : kp / p.bs;
      const int blk = tab[bi];
      ok = blk >= 0;
      const size_t slot = static_cast<size_t>(blk) * p.bs + (kp - bi * p.bs);
      off = ((slot * p.Hkv + kvh) * D) * kElem + c * 16;
    }
    const uint32_t dst_off = FP8 ? static_cast<uint32_t>(key * D + c * 16) : static_cast<uint32_t>(swz<D, MW>(key, c) * 16);
    cp_async16(d0 + dst_off, ok ? b + off : b, ok);
  }
}

/// Widens a staged FP8 [BN][D] tile into the swizzled bf16 tile (codes only; scales come later).
template <int D, int MW>
__device__ __forceinline__ void widen_fp8_tile(const uint8_t* src, bf16* dst) {
  using C = Cfg<D, MW>;
  for (int i = threadIdx.x; i < C::BN * C::NC; i += C::NT) {
    const int key = i / C::NC, c = i % C::NC;
    const uint2 raw = *reinterpret_cast<const uint2*>(src + key * D + c * 8);
    uint32_t w[4];
    const uint32_t in[2] = {raw.x, raw.y};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const __nv_fp8x2_storage_t pair = static_cast<__nv_fp8x2_storage_t>((in[j / 2] >> (16 * (j % 2))) & 0xffffu);
      const __half2 h(__nv_cvt_fp8x2_to_halfraw2(pair, __NV_E4M3));
      const float2 f = __half22float2(h);
      w[j] = pack_bf16x2(f.x, f.y);
    }
    *reinterpret_cast<uint4*>(dst + swz<D, MW>(key, c) * 8) = make_uint4(w[0], w[1], w[2], w[3]);
  }
}

/// One work item: query tokens [t0, t_end) x the Gt heads of head group `group`, key split
/// `split`. Leaves no cp.async in flight; may be called again by the same block.
template <int D, int MW, bool FP8>
__device__ __forceinline__ void attend_tile(const Params& p, uint8_t* smem, int t0, int t_end, int group, int split) {
  using C = Cfg<D, MW>;
  constexpr int BN = C::BN, DW = C::DW, NB = BN / 8, DB = DW / 8;
  bf16* Qs = reinterpret_cast<bf16*>(smem);
  bf16* Ks = reinterpret_cast<bf16*>(smem + C::kQBytes);
  bf16* Vs = reinterpret_cast<bf16*>(smem + C::kQBytes + C::kKBytes);
  float* Sx = reinterpret_cast<float*>(smem + C::kQBytes + 2 * C::kKBytes);
  uint8_t* K8 = smem + C::kQBytes + 2 * C::kKBytes + C::kSxBytes;
  uint8_t* V8 = K8 + C::kStageBytes;

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int mw = warp % MW, dsi = warp / MW;
  const int g = lane >> 2, cq = lane & 3;
  const int kvh = group / p.head_groups, hg = group % p.head_groups;
  const int hbase = kvh * p.G + hg * p.Gt;
  const int rows_valid = (t_end - t0) * p.Gt;

  // Q tile (its own cp.async group; the first wait below covers it).
  for (int i = tid; i < C::BM * C::NC; i += C::NT) {
    const int r = i / C::NC, c = i % C::NC;
    const bool ok = r < rows_valid;
    const bf16* src = ok ? p.q + (static_cast<size_t>(t0 + r / p.Gt) * p.Hq + hbase + r % p.Gt) * D + c * 8 : p.q;
    cp_async16(smem_addr(Qs + swz<D, MW>(r, c) * 8), src, ok);
  }
  cp_async_commit();

  const int row0 = mw * 16 + g, row1 = row0 + 8;
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;
  float acc[DB][4];
#pragma unroll
  for (int n = 0; n < DB; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
  const float sl2 = p.k_scale * kLog2e;
  const int d_begin = dsi * DW;
  // ldmatrix row addresses. Every operand's row is lane % 8 modulo 8, so its swizzle mask is
  // lane & SWZ; chunk 8i + j of a row lives at 8i + (j ^ mask): four per-lane offsets (j = 2u + x,
  // u = step % 4) plus compile-time immediates cover all steps.
  uint32_t q_addr[4], k_addr[4], v_addr[4];
  {
    const int msk = lane & C::SWZ;
    const uint32_t qb = smem_addr(Qs) + ((mw * 16 + (lane & 15)) * C::NC + d_begin / 8) * 16;
    const uint32_t kb = smem_addr(Ks) + (((lane & 7) + ((lane >> 4) << 3)) * C::NC + d_begin / 8) * 16;
    const uint32_t vb = smem_addr(Vs) + (((lane & 7) + ((lane >> 3) & 1) * 8) * C::NC + d_begin / 8) * 16;
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      q_addr[u] = qb + ((2 * u + (lane >> 4)) ^ msk) * 16;
      k_addr[u] = kb + ((2 * u + ((lane >> 3) & 1)) ^ msk) * 16;
      v_addr[u] = vb + ((2 * u + (lane >> 4)) ^ msk) * 16;
    }
  }

  // Segments: runs of tile tokens that belong to one sequence (one in the usual case).
  for (int ts = t0; ts < t_end;) {
    const int sq = p.seq[ts];
    int te = ts, lo_min = INT_MAX, lo_max = 0, hi_min = INT_MAX, hi_max = -1;
    for (; te < t_end && p.seq[te] == sq; ++te) {
      const int ps = p.pos[te];
      const int lo = p.window > 0 ? max(0, ps - p.window + 1) : 0;
      lo_min = min(lo_min, lo);
      lo_max = max(lo_max, lo);
      hi_min = min(hi_min, ps);
      hi_max = max(hi_max, ps);
    }
    // This thread's two rows: key range [lo, hi] inside the segment, empty otherwise.
    int rlo0 = INT_MAX, rhi0 = -1, rlo1 = INT_MAX, rhi1 = -1;
    {
      const int ta = t0 + row0 / p.Gt, tb = t0 + row1 / p.Gt;
      if (row0 < rows_valid && ta >= ts && ta < te) {
        rhi0 = p.pos[ta];
        rlo0 = p.window > 0 ? max(0, rhi0 - p.window + 1) : 0;
      }
      if (row1 < rows_valid && tb >= ts && tb < te) {
        rhi1 = p.pos[tb];
        rlo1 = p.window > 0 ? max(0, rhi1 - p.window + 1) : 0;
      }
    }
    const bool all_rows = ts == t0 && te == t_end && rows_valid == C::BM;
    const int span = hi_max - lo_min + 1;
    const int chunk = ((span + p.splits - 1) / p.splits + BN - 1) / BN * BN;
    const int kb = lo_min + split * chunk;
    const int ke = min(hi_max + 1, kb + chunk);
    const int32_t* tab = p.table + static_cast<size_t>(sq) * p.max_blocks;
    ts = te;
    if (kb >= ke) continue;

    // Prologue: the first K and V tiles both in flight (a decode split often has one tile only).
    __syncthreads();  // a previous segment's last PV may still read Vs
    load_kv_tile<D, MW, FP8>(FP8 ? static_cast<void*>(K8) : static_cast<void*>(Ks), p.k, kb, ke, tab, p, kvh);
    cp_async_commit();
    load_kv_tile<D, MW, FP8>(FP8 ? static_cast<void*>(V8) : static_cast<void*>(Vs), p.v, kb, ke, tab, p, kvh);
    cp_async_commit();
    for (int kt = kb; kt < ke; kt += BN) {
      if (kt == kb) {
        cp_async_wait<1>();  // Q and K(kb) landed; V(kb) may still be in flight
      } else {
        cp_async_wait<0>();
      }
      __syncthreads();  // K(kt) (and Q) visible; every warp is done with V of the previous tile
      if constexpr (FP8) {
        widen_fp8_tile<D, MW>(K8, Ks);
        __syncthreads();
      }
      if (kt != kb) {
        load_kv_tile<D, MW, FP8>(FP8 ? static_cast<void*>(V8) : static_cast<void*>(Vs), p.v, kt, ke, tab, p, kvh);
        cp_async_commit();
      }

      // S = Q K^T over this warp's slice of the head dim.
      float s[NB][4];
#pragma unroll
      for (int n = 0; n < NB; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < DW / 16; ++kk) {
        uint32_t a0, a1, a2, a3;
        ldmatrix_x4(a0, a1, a2, a3, q_addr[kk % 4] + (kk / 4) * 128);
#pragma unroll
        for (int n2 = 0; n2 < NB / 2; ++n2) {
          uint32_t b0, b1, b2, b3;
          ldmatrix_x4(b0, b1, b2, b3, k_addr[kk % 4] + (kk / 4) * 128 + n2 * 16 * C::NC * 16);
          mma_bf16_16816(s[2 * n2], a0, a1, a2, a3, b0, b1);
          mma_bf16_16816(s[2 * n2 + 1], a0, a1, a2, a3, b2, b3);
        }
      }
      if constexpr (C::DS > 1) {
        // Sum the partial scores of the warps sharing this row group (same fragment layout).
        float* mine = Sx + warp * (NB * 4 * 32);
#pragma unroll
        for (int n = 0; n < NB; ++n)
#pragma unroll
          for (int i = 0; i < 4; ++i) mine[(n * 4 + i) * 32 + lane] = s[n][i];
        __syncthreads();
#pragma unroll
        for (int o = 1; o < C::DS; ++o) {
          const float* other = Sx + (mw + ((dsi + o) % C::DS) * MW) * (NB * 4 * 32);
#pragma unroll
          for (int n = 0; n < NB; ++n)
#pragma unroll
            for (int i = 0; i < 4; ++i) s[n][i] += other[(n * 4 + i) * 32 + lane];
        }
      }
      // Scale to log2 units and mask (only tiles that are not entirely visible to every row).
      const bool full = all_rows && kt >= lo_max && kt + BN - 1 <= hi_min && kt + BN <= ke;
#pragma unroll
      for (int n = 0; n < NB; ++n)
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          float x = s[n][i] * sl2;
          if (!full) {
            const int key = kt + n * 8 + 2 * cq + (i & 1);
            const int lo = i < 2 ? rlo0 : rlo1, hi = min(i < 2 ? rhi0 : rhi1, ke - 1);
            if (key < lo || key > hi) x = -INFINITY;
          }
          s[n][i] = x;
        }
      // Online softmax (rows row0: elements 0,1; row1: elements 2,3).
      float mx0 = m0, mx1 = m1;
#pragma unroll
      for (int n = 0; n < NB; ++n) {
        mx0 = fmaxf(mx0, fmaxf(s[n][0], s[n][1]));
        mx1 = fmaxf(mx1, fmaxf(s[n][2], s[n][3]));
      }
      mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
      mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
      mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
      mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
      const float base0 = mx0 == -INFINITY ? 0.0f : mx0, base1 = mx1 == -INFINITY ? 0.0f : mx1;
      const float al0 = exp2f(m0 - base0), al1 = exp2f(m1 - base1);
      m0 = mx0;
      m1 = mx1;
      float rs0 = 0.0f, rs1 = 0.0f;
#pragma unroll
      for (int n = 0; n < NB; ++n) {
        s[n][0] = exp2f(s[n][0] - base0);
        s[n][1] = exp2f(s[n][1] - base0);
        s[n][2] = exp2f(s[n][2] - base1);
        s[n][3] = exp2f(s[n][3] - base1);
        rs0 += s[n][0] + s[n][1];
        rs1 += s[n][2] + s[n][3];
      }
      l0 = l0 * al0 + rs0;
      l1 = l1 * al1 + rs1;
#pragma unroll
      for (int n = 0; n < DB; ++n) {
        acc[n][0] *= al0;
        acc[n][1] *= al0;
        acc[n][2] *= al1;
        acc[n][3] *= al1;
      }

      cp_async_wait<0>();
      __syncthreads();  // V(kt) visible; every warp is done reading K(kt)
      if constexpr (FP8) {
        widen_fp8_tile<D, MW>(V8, Vs);
        __syncthreads();
      }
      if (kt + BN < ke) {
        load_kv_tile<D, MW, FP8>(FP8 ? static_cast<void*>(K8) : static_cast<void*>(Ks), p.k, kt + BN, ke, tab, p,
                                 kvh);
        cp_async_commit();
      }
      // O += P V over this warp's output columns.
#pragma unroll
      for (int kk = 0; kk < BN / 16; ++kk) {
        const uint32_t a0 = pack_bf16x2(s[2 * kk][0], s[2 * kk][1]);
        const uint32_t a1 = pack_bf16x2(s[2 * kk][2], s[2 * kk][3]);
        const uint32_t a2 = pack_bf16x2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
        const uint32_t a3 = pack_bf16x2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
        for (int n2 = 0; n2 < DB / 2; ++n2) {
          uint32_t b0, b1, b2, b3;
          ldmatrix_x4_trans(b0, b1, b2, b3, v_addr[n2 % 4] + (n2 / 4) * 128 + kk * 16 * C::NC * 16);
          mma_bf16_16816(acc[2 * n2], a0, a1, a2, a3, b0, b1);
          mma_bf16_16816(acc[2 * n2 + 1], a0, a1, a2, a3, b2, b3);
        }
      }
    }
  }
  cp_async_wait<0>();  // nothing may stay in flight at exit (Q of a block with no keys)

  l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
  l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    const int r = rr ? row1 : row0;
    if (r >= rows_valid) continue;
    const float m = rr ? m1 : m0, l = rr ? l1 : l0;
    const size_t th = static_cast<size_t>(t0 + r / p.Gt) * p.Hq + hbase + r % p.Gt;
    if (p.splits == 1) {
      const float inv = l > 0.0f ? p.v_scale / l : 0.0f;
      bf16* o = p.out + th * D + d_begin + 2 * cq;
#pragma unroll
      for (int n = 0; n < DB; ++n)
        *reinterpret_cast<uint32_t*>(o + n * 8) = pack_bf16x2(acc[n][2 * rr] * inv, acc[n][2 * rr + 1] * inv);
    } else {
      const size_t prow = th * p.splits + split;
      if (l > 0.0f) {
        float* o = p.part_acc + prow * D + d_begin + 2 * cq;
#pragma unroll
        for (int n = 0; n < DB; ++n)
          *reinterpret_cast<float2*>(o + n * 8) = make_float2(acc[n][2 * rr] * p.v_scale, acc[n][2 * rr + 1] * p.v_scale);
      }
      if (dsi == 0 && cq == 0) *reinterpret_cast<float2*>(p.part_ml + prow * 2) = make_float2(m * kLn2, l);
    }
  }
}

/// Decode-shaped steps (MW == 1): one block per (head group, token, split) from the grid, longest
/// contexts first. Prefill-shaped steps (MW > 1): a persistent grid; each block takes the next
/// (tile, head group, split) item from an atomic counter over the tile list build_tiles_kernel
/// wrote (tiles never cross sequences; longest first).
template <int D, int MW, bool FP8>
__global__ void __launch_bounds__(Cfg<D, MW>::NT) flash_attention_kernel(const Params p) {
  extern __shared__ __align__(128) uint8_t smem[];
  if constexpr (MW == 1) {
    const int tile = p.num_tiles - 1 - static_cast<int>(blockIdx.y);
    const int t0 = tile * p.tile_tokens;
    attend_tile<D, MW, FP8>(p, smem, t0, min(p.T, t0 + p.tile_tokens), blockIdx.x, blockIdx.z);
  } else {
    __shared__ int item_s;
    const int per_tile = p.num_groups * p.splits;
    const int n_items = p.tile_hdr[0] * per_tile;
    for (;;) {
      __syncthreads();  // everyone has read the previous item
      if (threadIdx.x == 0) item_s = atomicAdd(p.tile_hdr + 1, 1);
      __syncthreads();
      const int item = item_s;
      if (item >= n_items) break;
      const int2 td = p.tiles[item / per_tile];
      const int r = item % per_tile;
      attend_tile<D, MW, FP8>(p, smem, td.x, td.x + td.y, r / p.splits, r % p.splits);
    }
  }
}

/// Lists the prefill tiles of a step: every run of consecutive tokens of one sequence is cut into
/// tiles of `tt` tokens; tiles[] gets (first token, count) in reverse token order (later tokens
/// see more keys: longest first), hdr[0] = number of tiles, hdr[1] = 0 (the work counter).
/// One block of kScanThreads threads; token chunks per thread joined by block scans.
constexpr int kScanThreads = 1024;
struct MaxOp {
  __device__ int operator()(int a, int b) const { return a > b ? a : b; }
};
__global__ void __launch_bounds__(kScanThreads)
    build_tiles_kernel(const int32_t* __restrict__ seq, int T, int tt, int2* __restrict__ tiles, int* hdr) {
  using Scan = cub::BlockScan<int, kScanThreads>;
  __shared__ typename Scan::TempStorage tmp;
  const int per = (T + kScanThreads - 1) / kScanThreads;
  const int b = min(T, static_cast<int>(threadIdx.x) * per), e = min(T, b + per);
  auto is_start = [&](int t) { return t == 0 || seq[t] != seq[t - 1]; };
  int last_start = -1;
  for (int t = b; t < e; ++t)
    if (is_start(t)) last_start = t;
  int run_start = -1;
  Scan(tmp).ExclusiveScan(last_start, run_start, -1, MaxOp{});
  __syncthreads();
  int count = 0, rs = run_start;
  for (int t = b; t < e; ++t) {
    if (is_start(t)) rs = t;
    if ((t - rs) % tt == 0) ++count;
  }
  int off = 0, total = 0;
  Scan(tmp).ExclusiveSum(count, off, total);
  rs = run_start;
  for (int t = b; t < e; ++t) {
    if (is_start(t)) rs = t;
    if ((t - rs) % tt) continue;
    int n = 1;
    while (n < tt && t + n < T && seq[t + n] == seq[t]) ++n;
    tiles[total - 1 - off++] = make_int2(t, n);
  }
  if (threadIdx.x == 0) {
    hdr[0] = total;
    hdr[1] = 0;
  }
}

int sm_count() {
  static const int sms = [] {
    int dev = 0, n = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess)
      n = 132;
    return std::max(n, 1);
  }();
  return sms;
}

int target_blocks() { return 4 * sm_count(); }

template <int D, int MW, bool FP8>
void launch_instance(const Params& p, dim3 grid, cudaStream_t stream) {
  using C = Cfg<D, MW>;
  auto kernel = flash_attention_kernel<D, MW, FP8>;
  static const int blocks_per_sm = [&] {
    QUENCH_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           static_cast<int>(C::smem(FP8))));
    int n = 0;
    QUENCH_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, C::NT, C::smem(FP8)));
    return std::max(n, 1);
  }();
  if constexpr (MW > 1) {
    // Persistent: as many blocks as fit at once, never more than there are items.
    const long items = static_cast<long>(grid.x) * grid.y * grid.z;
    grid = dim3(static_cast<unsigned>(std::min<long>(items, static_cast<long>(blocks_per_sm) * sm_count())), 1, 1);
  }
  kernel<<<grid, C::NT, C::smem(FP8), stream>>>(p);
  QUENCH_CUDA_LAUNCH_CHECK();
}

template <int D>
void launch_d(int mw, bool fp8, const Params& p, dim3 grid, cudaStream_t stream) {
  if (mw == 1) {
    if (fp8) launch_instance<D, 1, true>(p, grid, stream);
    else launch_instance<D, 1, false>(p, grid, stream);
  } else {
    if (fp8) launch_instance<D, 4, true>(p, grid, stream);
    else launch_instance<D, 4, false>(p, grid, stream);
  }
}

/// Splits for `base` blocks per split over a key span of `span`: enough blocks to fill the GPU,
/// at least kMinKeysPerSplit keys per split, at most kMaxSplitScratch bytes of partials.
int split_count(int base, int span, int T, int Hq, int D) {
  const int want = (target_blocks() + base - 1) / std::max(base, 1);
  const int by_keys = (std::max(span, 1) + kMinKeysPerSplit - 1) / kMinKeysPerSplit;
  const size_t per_split = static_cast<size_t>(T) * Hq * (D + 2) * sizeof(float);
  const int cap = static_cast<int>(std::max<size_t>(1, kMaxSplitScratch / std::max<size_t>(per_split, 1)));
  return std::max(1, std::min({want, by_keys, cap}));
}

}  // namespace

bool flash_supported(int D) { return D == 32 || D == 64 || D == 128 || D == 256 || D == 512; }

FlashPlan plan_flash(int T, int Hq, int Hkv, int D, int window, int max_context) {
  FlashPlan pl;
  const int G = Hq / Hkv;
  pl.mw = T <= kDecodeTokens ? 1 : 4;
  const int BM = 16 * pl.mw;
  pl.Gt = std::min(G, BM);  // heads per tile: the largest divisor of G that fits the rows
  while (G % pl.Gt) --pl.Gt;
  pl.head_groups = G / pl.Gt;
  pl.tile_tokens = T <= kDecodeTokens ? 1 : BM / pl.Gt;
  pl.num_tiles = (T + pl.tile_tokens - 1) / pl.tile_tokens;
  const int span = window > 0 ? std::min(max_context, window + pl.tile_tokens - 1) : max_context;
  pl.splits = split_count(pl.num_tiles * Hkv * pl.head_groups, span, T, Hq, D);
  return pl;
}

size_t flash_tile_ws_bytes(int T) {
  return T <= kDecodeTokens ? 0 : (static_cast<size_t>(T) * sizeof(int2) + 4 * sizeof(int) + 255) / 256 * 256;
}

size_t flash_scratch_bytes(int T, int Hq, int D, int max_context) {
  // Fewest blocks per split any plan can have: one token per tile (decode) or 64 (prefill).
  const int base = T <= kDecodeTokens ? T : (T + 63) / 64;
  const int splits = split_count(base, max_context, T, Hq, D);
  const size_t parts = splits <= 1 ? 0 : static_cast<size_t>(T) * Hq * splits * (D + 2) * sizeof(float);
  return flash_tile_ws_bytes(T) + parts;
}

void launch_flash(const FlashPlan& pl, const bf16* q, int T, int Hq, int D, int window, TokenMeta meta,
                  BlockTables tables, const KvLayerView& cache, SplitParts parts, void* tile_ws, bf16* out,
                  cudaStream_t stream) {
  if (pl.mw == 1 && launch_decode_gqa(pl, q, T, Hq, D, window, meta, tables, cache, parts, out, stream)) return;
  Params p{};
  p.q = q;
  p.out = out;
  p.pos = meta.pos;
  p.seq = meta.seq;
  p.table = tables.table;
  p.max_blocks = tables.max_blocks;
  p.k = cache.k;
  p.v = cache.v;
  p.k_scale = cache.fp8 ? cache.k_scale : 1.0f;
  p.v_scale = cache.fp8 ? cache.v_scale : 1.0f;
  p.T = T;
  p.Hq = Hq;
  p.Hkv = cache.num_heads;
  p.G = Hq / cache.num_heads;
  p.Gt = pl.Gt;
  p.head_groups = pl.head_groups;
  p.tile_tokens = pl.tile_tokens;
  p.num_tiles = pl.num_tiles;
  p.window = window;
  p.splits = pl.splits;
  p.bs = cache.block_size;
  p.bs_shift = -1;
  for (int s = 0; s < 31; ++s)
    if ((1 << s) == cache.block_size) p.bs_shift = s;
  p.part_acc = parts.acc;
  p.part_ml = parts.ml;
  p.num_groups = cache.num_heads * pl.head_groups;
  if (pl.mw > 1) {
    if (tile_ws == nullptr) throw InvalidArgument("paged_attention: scratch missing (see attention_scratch_bytes)");
    p.tiles = static_cast<const int2*>(tile_ws);
    p.tile_hdr = reinterpret_cast<int*>(static_cast<int2*>(tile_ws) + T);
    build_tiles_kernel<<<1, kScanThreads, 0, stream>>>(meta.seq, T, pl.tile_tokens, static_cast<int2*>(tile_ws),
                                                       p.tile_hdr);
    QUENCH_CUDA_LAUNCH_CHECK();
  }
  if (pl.num_tiles > 65535 || pl.splits > 65535)
    throw InvalidArgument("paged_attention: too many query tokens for one call (at most 65535 tiles)");
  const dim3 grid(p.num_groups, pl.num_tiles, pl.splits);
  switch (D) {
    case 32: launch_d<32>(pl.mw, cache.fp8, p, grid, stream); break;
    case 64: launch_d<64>(pl.mw, cache.fp8, p, grid, stream); break;
    case 128: launch_d<128>(pl.mw, cache.fp8, p, grid, stream); break;
    case 256: launch_d<256>(pl.mw, cache.fp8, p, grid, stream); break;
    case 512: launch_d<512>(pl.mw, cache.fp8, p, grid, stream); break;
    default: throw InvalidArgument("paged_attention: tensor-core path needs head_dim 32, 64, 128, 256 or 512");
  }
}

}  // namespace quench::cuda::detail
