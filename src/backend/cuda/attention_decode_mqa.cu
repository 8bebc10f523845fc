// quench/backend/cuda/attention_decode_mqa.cu: single-launch decode attention for layers whose 16
// query heads share one KV head (the 12B's global layers: 16 x 512, one KV head, k_eq_v), on the
// tensor cores with the 16 heads as the mma's M, so each K/V tile is read once for all heads.
//
// One CTA per (split, KV head, token); the splits of one (KV head, token) are a cluster and merge
// through distributed shared memory at the end (attention_decode_cluster.cuh). A CTA walks its
// keys in tiles of kBN = 16, loaded by cp.async into a 3-stage (bf16; FP8: 4-stage) ring. Warp w
// owns head dims [128 w, 128 w + 128): it computes the partial scores Q[:, dims] K[:, dims]^T
// (mma m16n8k16, fp32), the warps' partials are summed through shared memory (in warp order, so
// every warp holds bit-identical scores), then each warp runs the same online softmax (fp32,
// base 2, scale 1.0: gemma4-architecture.md §2.4; k_scale for FP8) and accumulates P V for its
// own 128 output columns (P from registers as the A operand, Dao 2023 FlashAttention-2's
// register reuse; V by ldmatrix.trans).
// K fragments are read straight from shared memory with one 16-byte (bf16) or 8-byte (FP8) load
// per 32 dims: the contraction order of the head dims is permuted identically in Q and K (thread
// quad lane c takes dims 8c..8c+7 of each 32), which the sum does not see. FP8 caches use the
// fp16 mma (E4M3 widens to fp16 exactly; the probabilities P are rounded to fp16, finer than
// bf16); V tiles are widened to fp16 in shared memory once per tile for ldmatrix.
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <utility>

#include "backend/cuda/attention_decode.h"
#include "backend/cuda/attention_decode_cluster.cuh"
#include "backend/cuda/attention_mma.cuh"
#include "backend/cuda/attention_qkv_fold.cuh"
#include "backend/cuda/cuda_utils.h"
#include "backend/cuda/pdl.cuh"

namespace quench::cuda::detail {
namespace {

using namespace quench::cuda::mma;

constexpr int kRows = 16;       // query heads per KV head = the mma's M
constexpr int kBN = 16;         // keys per tile
constexpr int kWarpDims = 128;  // head dims (contraction and output columns) per warp
constexpr float kLog2e = 1.4426950408889634f;

struct MqaArgs {
  const bf16* q;
  bf16* out;
  const int32_t* pos;
  const int32_t* seq;
  const int32_t* table;
  int max_blocks;
  const void* k;
  const void* v;
  float k_scale, v_scale;
  int Hq, Hkv, window, bs, bs_shift;
  QkvFold fold;  // QKV kernels: the projections instead of q
};

/// Shared-memory geometry (bytes) of one instance; DEEP: a deeper ring for launches of at most
/// one CTA per SM (few tokens: more bytes in flight per CTA instead of more CTAs).
template <int D, bool FP8, bool DEEP>
struct MqaCfg {
  static constexpr int NW = D / kWarpDims, NT = 32 * NW;
  // K rows padded so the 8 keys x 4 lanes of a fragment load hit distinct banks.
  static constexpr int KROW = FP8 ? D + 32 : 2 * D + 64;
  // b16 V rows padded by 16 bytes: ldmatrix.trans rows land in distinct banks.
  static constexpr int VROW = 2 * D + 16;
  static constexpr int VSTAGE_ROW = FP8 ? D : VROW;
  static constexpr int NS = DEEP ? (FP8 ? 8 : 6) : (FP8 ? 4 : 3);
  static constexpr int kKBytes = kBN * KROW;
  static constexpr int kStage = kKBytes + kBN * VSTAGE_ROW;
  static constexpr int kVh = FP8 ? kBN * VROW : 0;  // the widened fp16 V tile
  static constexpr int kMain = NS * kStage + kVh;
  static constexpr int kComb = kRows * D * 4;        // fp32 accumulators for the merge (aliases the ring)
  static constexpr int kSxOff = kMain > kComb ? kMain : kComb;
  static constexpr int kSx = NW * 2 * 4 * 32 * 4;    // partial scores, [warp][n][i][lane]
  static constexpr size_t smem = static_cast<size_t>(kSxOff) + kSx + kRows * 2 * 4;
  static_assert(D % kWarpDims == 0 && NW >= 2, "head_dim 256 or 512");
  static_assert(kKBytes % 16 == 0 && kStage % 16 == 0, "16-byte aligned stages");
};

__device__ __forceinline__ uint32_t e4m3x2_to_f16x2(uint32_t pair) {
  const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(pair & 0xffffu), __NV_E4M3);
  return static_cast<uint32_t>(h.x) | (static_cast<uint32_t>(h.y) << 16);
}
__device__ __forceinline__ uint32_t pack_f16x2(float lo, float hi) {
  const __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}
__device__ __forceinline__ uint32_t bf16x2_to_f16x2(uint32_t w) {
  return pack_f16x2(__uint_as_float(w << 16), __uint_as_float(w & 0xffff0000u));
}

/// cp.async of keys kt..kt+kBN-1 (< ke; others zero-filled) of KV head kvh into one ring stage:
/// K rows at KROW, V rows at VSTAGE_ROW bytes.
template <int D, bool FP8, bool DEEP>
__device__ __forceinline__ void load_tile(uint8_t* stage, const MqaArgs& a, const int32_t* tab, int kvh, int kt,
                                          int ke) {
  using C = MqaCfg<D, FP8, DEEP>;
  constexpr int E = FP8 ? 1 : 2;
  constexpr int CH = D * E / 16;  // 16-byte chunks per row
  const uint32_t kdst = smem_addr(stage), vdst = kdst + C::kKBytes;
  const uint8_t* kg = static_cast<const uint8_t*>(a.k);
  const uint8_t* vg = static_cast<const uint8_t*>(a.v);
#pragma unroll 4
  for (int i = threadIdx.x; i < kBN * CH; i += C::NT) {
    const int key = i / CH, ch = i % CH;
    const int kp = kt + key;
    bool ok = kp < ke;
    size_t off = 0;
    if (ok) {
      const int bi = a.bs_shift >= 0 ? (kp >> a.bs_shift) : kp / a.bs;
      const int blk = tab[bi];
      ok = blk >= 0;
      off = ((static_cast<size_t>(blk) * a.bs + (kp - bi * a.bs)) * a.Hkv + kvh) * (D * E) + ch * 16;
    }
    cp_async16(kdst + key * C::KROW + ch * 16, ok ? kg + off : kg, ok);
    cp_async16(vdst + key * C::VSTAGE_ROW + ch * 16, ok ? vg + off : vg, ok);
  }
}

/// Grid (splits, Hkv, T), clusters of (splits, 1, 1); block = D / 128 warps.
/// QKV: the kernel does qkv_norm_rope_store's work for its token first — the split holding
/// position pos writes the new K/V row into the cache before its first tile load (a barrier and
/// a proxy fence order the two), every CTA normalises and rotates its 16 query rows from
/// a.fold.qp into the last ring stage (bf16, or fp16 for FP8 caches) — instead of reading a.q.
template <int D, bool FP8, bool DEEP, bool QKV = false>
__global__ void __launch_bounds__(MqaCfg<D, FP8, DEEP>::NT) decode_mqa_kernel(const MqaArgs a) {
  using C = MqaCfg<D, FP8, DEEP>;
  extern __shared__ __align__(128) uint8_t smem[];
  float* Sx = reinterpret_cast<float*>(smem + C::kSxOff);
  float* ml_s = Sx + C::kSx / 4;
  float* comb = reinterpret_cast<float*>(smem);  // after the key loop only
  uint8_t* Vh = smem + C::NS * C::kStage;

  const int split = blockIdx.x, kvh = blockIdx.y, t = blockIdx.z, splits = gridDim.x;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane >> 2, c = lane & 3;
  // Token metadata is never written by the kernel this one may overlap under PDL (kernels.h).
  const int pos = a.pos[t], sq = a.seq[t];
  int kb, ke;
  decode_split_range(pos, a.window, split, splits, kBN, kb, ke);
  const int ntiles = kb < ke ? (ke - kb + kBN - 1) / kBN : 0;
  const int32_t* tab = a.table + static_cast<size_t>(sq) * a.max_blocks;
  constexpr int HALF = D / 2;
  const bool pair_lane = 8 * lane < HALF;  // QKV: this lane rotates pairs (8 lane + i, 8 lane + i + D/2)
  float rc[8], rs[8];
  if constexpr (QKV) {
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      rc[i] = 1.0f;
      rs[i] = 0.0f;
      if (pair_lane) {
        float sv, cv;  // scalars: sincosf's out-pointers must not pin the arrays to local memory
        sincosf(static_cast<float>(pos) * a.fold.inv_freq[8 * lane + i], &sv, &cv);
        rs[i] = sv;
        rc[i] = cv;
      }
    }
  }
  const bool owner = QKV && kb <= pos && pos < ke;  // CTA-uniform: this split writes the new K/V
  {
    // Before waiting on the previous kernel: L2 prefetch of the first NS-1 tiles' K/V lines (old
    // positions; a prefetch moves nothing into registers, and the new row is rewritten in L2).
    constexpr int E = FP8 ? 1 : 2, LINES = D * E / 128;  // 128-byte lines per row
    const int nkeys = min(ke - kb, (C::NS - 1) * kBN);
    for (int i = tid; i < nkeys * 2 * LINES; i += C::NT) {
      const int key = i / (2 * LINES), r = i % (2 * LINES);
      const int kp = kb + key;
      const int bi = a.bs_shift >= 0 ? (kp >> a.bs_shift) : kp / a.bs;
      const int blk = tab[bi];
      if (blk < 0) continue;
      const size_t off = ((static_cast<size_t>(blk) * a.bs + (kp - bi * a.bs)) * a.Hkv + kvh) * (D * E);
      prefetch_l2(static_cast<const char*>(r < LINES ? a.k : a.v) + off + (r % LINES) * 128);
    }
  }
  pdl_wait();  // q and the new token's K/V come from the previous kernel

  auto prologue = [&] {
#pragma unroll
    for (int i = 0; i < C::NS - 1; ++i) {
      if (i < ntiles) load_tile<D, FP8, DEEP>(smem + i * C::kStage, a, tab, kvh, kb + i * kBN, ke);
      cp_async_commit();
    }
  };
  if (!owner) prologue();
  // QKV: query rows staged as 16-bit values [kRows][D] in the last ring stage (free until the
  // first loop iteration's load).
  uint16_t* qs = reinterpret_cast<uint16_t*>(smem + (C::NS - 1) * C::kStage);
  if constexpr (QKV) {
    static_assert(kRows * D * 2 <= C::kStage, "query staging fits one stage");
    // One row of D values: lo = elements 8 lane .. +8, hi = the same + D/2; returns 1 / rms.
    auto load_row = [&](const float* src, float (&lo)[8], float (&hi)[8]) {
#pragma unroll
      for (int i = 0; i < 8; ++i) lo[i] = hi[i] = 0.0f;
      if (pair_lane) {
        load_f32x8(src + 8 * lane, lo);
        load_f32x8(src + HALF + 8 * lane, hi);
      }
      float ss = 0.0f;
#pragma unroll
      for (int i = 0; i < 8; ++i) ss += lo[i] * lo[i] + hi[i] * hi[i];
      return rsqrtf(fold_warp_sum(ss) / D + a.fold.eps);
    };
    // lo, hi <- rope(x * inv * w) (NeoX pairs within the lane).
    auto norm_rope = [&](float (&lo)[8], float (&hi)[8], float inv, const float* w) {
      float wl[8], wh[8];
      if (pair_lane) {
        load_f32x8(w + 8 * lane, wl);
        load_f32x8(w + HALF + 8 * lane, wh);
      }
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const float x0 = pair_lane ? lo[i] * inv * wl[i] : 0.0f, x1 = pair_lane ? hi[i] * inv * wh[i] : 0.0f;
        lo[i] = x0 * rc[i] - x1 * rs[i];
        hi[i] = x1 * rc[i] + x0 * rs[i];
      }
    };
    if (owner && warp < 2) {
      // Warp 0: K = rope(rmsnorm(k, k_norm)); warp 1: V = rmsnorm_noweight(v) (§2.4).
      float lo[8], hi[8];
      const float inv = load_row((warp == 0 ? a.fold.kp : a.fold.vp) + (static_cast<size_t>(t) * a.Hkv + kvh) * D, lo, hi);
      if (warp == 0) {
        norm_rope(lo, hi, inv, a.fold.k_norm);
      } else {
#pragma unroll
        for (int i = 0; i < 8; ++i) lo[i] *= inv, hi[i] *= inv;
      }
      const int bi = pos / a.bs, blk = tab[bi];
      if (pair_lane && blk >= 0) {
        using CacheT = std::conditional_t<FP8, uint8_t, bf16>;
        CacheT* dst = static_cast<CacheT*>(const_cast<void*>(warp == 0 ? a.k : a.v)) +
                      ((static_cast<size_t>(blk) * a.bs + (pos - bi * a.bs)) * a.Hkv + kvh) * D + 8 * lane;
        const float inv_scale = 1.0f / (warp == 0 ? a.k_scale : a.v_scale);
        store_cache8<CacheT>(dst, lo, inv_scale);
        store_cache8<CacheT>(dst + HALF, hi, inv_scale);
      }
      fold_fence();
    }
    for (int r = warp; r < kRows; r += C::NW) {
      float lo[8], hi[8];
      const float inv = load_row(a.fold.qp + (static_cast<size_t>(t) * a.Hq + kvh * kRows + r) * D, lo, hi);
      norm_rope(lo, hi, inv, a.fold.q_norm);
      if (pair_lane) {
        uint32_t wl[4], wh[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          // q_out is bf16; FP8 caches take it as fp16 (exact for bf16 values in range).
          const float l0 = __bfloat162float(__float2bfloat16(lo[2 * i])), l1 = __bfloat162float(__float2bfloat16(lo[2 * i + 1]));
          const float h0 = __bfloat162float(__float2bfloat16(hi[2 * i])), h1 = __bfloat162float(__float2bfloat16(hi[2 * i + 1]));
          wl[i] = FP8 ? pack_f16x2(l0, l1) : pack_bf16x2(l0, l1);
          wh[i] = FP8 ? pack_f16x2(h0, h1) : pack_bf16x2(h0, h1);
        }
        *reinterpret_cast<uint4*>(qs + r * D + 8 * lane) = make_uint4(wl[0], wl[1], wl[2], wl[3]);
        *reinterpret_cast<uint4*>(qs + r * D + HALF + 8 * lane) = make_uint4(wh[0], wh[1], wh[2], wh[3]);
      }
    }
    __syncthreads();  // staged q (and the owner's cache row) visible to every thread
  }
  if (owner) prologue();

  // Q as A fragments for this warp's 8 k-steps (dims permuted as the K loads: lane quad c holds
  // dims 32 s + 8c .. +8 of group s; k-step 2s takes the first 4, 2s + 1 the last 4).
  uint32_t qf[8][4];
  {
    const bf16* qrow = a.q + (static_cast<size_t>(t) * a.Hq + kvh * kRows) * D + warp * kWarpDims + 8 * c;
    const uint16_t* qsrow = qs + warp * kWarpDims + 8 * c;
#pragma unroll
    for (int s = 0; s < 4; ++s) {
      uint4 lo, hi;
      if constexpr (QKV) {
        lo = *reinterpret_cast<const uint4*>(qsrow + g * D + 32 * s);
        hi = *reinterpret_cast<const uint4*>(qsrow + (g + 8) * D + 32 * s);
      } else {
        lo = __ldg(reinterpret_cast<const uint4*>(qrow + static_cast<size_t>(g) * D + 32 * s));
        hi = __ldg(reinterpret_cast<const uint4*>(qrow + static_cast<size_t>(g + 8) * D + 32 * s));
      }
      if constexpr (FP8 && !QKV) {
        lo = make_uint4(bf16x2_to_f16x2(lo.x), bf16x2_to_f16x2(lo.y), bf16x2_to_f16x2(lo.z), bf16x2_to_f16x2(lo.w));
        hi = make_uint4(bf16x2_to_f16x2(hi.x), bf16x2_to_f16x2(hi.y), bf16x2_to_f16x2(hi.z), bf16x2_to_f16x2(hi.w));
      }
      qf[2 * s][0] = lo.x;
      qf[2 * s][1] = hi.x;
      qf[2 * s][2] = lo.y;
      qf[2 * s][3] = hi.y;
      qf[2 * s + 1][0] = lo.z;
      qf[2 * s + 1][1] = hi.z;
      qf[2 * s + 1][2] = lo.w;
      qf[2 * s + 1][3] = hi.w;
    }
  }

  constexpr int NB = kWarpDims / 8;  // output n-tiles per warp
  float acc[NB][4];
#pragma unroll
  for (int n = 0; n < NB; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;  // rows g and g + 8
  const float sl2 = a.k_scale * kLog2e;
  // ldmatrix.x4.trans row address of this lane inside a V tile: key (lane & 7) + 8 ((lane >> 3) & 1),
  // columns 8 (lane >> 4) of each 16-column step.
  const uint32_t v_lane = ((lane & 7) + ((lane >> 3) & 1) * 8) * C::VROW + (warp * kWarpDims + (lane >> 4) * 8) * 2;

  for (int j = 0; j < ntiles; ++j) {
    cp_async_wait<C::NS - 2>();
    __syncthreads();  // tile j visible to all; every warp is done with tile j - 1 (its stage is free)
    {
      const int nt = j + C::NS - 1;
      if (nt < ntiles) load_tile<D, FP8, DEEP>(smem + (nt % C::NS) * C::kStage, a, tab, kvh, kb + nt * kBN, ke);
      cp_async_commit();
    }
    const uint8_t* st = smem + (j % C::NS) * C::kStage;
    const int kt = kb + j * kBN;
    if constexpr (FP8) {
      // Widen the V tile to fp16 (visible after the score barrier below).
      const uint8_t* v8 = st + C::kKBytes;
      for (int i = tid; i < kBN * D / 8; i += C::NT) {
        const int key = i / (D / 8), ch = i % (D / 8);
        const uint2 raw = *reinterpret_cast<const uint2*>(v8 + key * D + ch * 8);
        *reinterpret_cast<uint4*>(Vh + key * C::VROW + ch * 16) =
            make_uint4(e4m3x2_to_f16x2(raw.x), e4m3x2_to_f16x2(raw.x >> 16), e4m3x2_to_f16x2(raw.y),
                       e4m3x2_to_f16x2(raw.y >> 16));
      }
    }
    // Partial scores over this warp's dims: n-tile n holds keys kt + 8n + column.
    float s[2][4];
#pragma unroll
    for (int n = 0; n < 2; ++n) {
      s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
      const uint8_t* krow = st + (n * 8 + g) * C::KROW;
#pragma unroll
      for (int gs = 0; gs < 4; ++gs) {
        uint32_t b[4];
        if constexpr (FP8) {
          const uint2 raw = *reinterpret_cast<const uint2*>(krow + warp * kWarpDims + 32 * gs + 8 * c);
          b[0] = e4m3x2_to_f16x2(raw.x);
          b[1] = e4m3x2_to_f16x2(raw.x >> 16);
          b[2] = e4m3x2_to_f16x2(raw.y);
          b[3] = e4m3x2_to_f16x2(raw.y >> 16);
          mma_f16_16816(s[n], qf[2 * gs][0], qf[2 * gs][1], qf[2 * gs][2], qf[2 * gs][3], b[0], b[1]);
          mma_f16_16816(s[n], qf[2 * gs + 1][0], qf[2 * gs + 1][1], qf[2 * gs + 1][2], qf[2 * gs + 1][3], b[2], b[3]);
        } else {
          const uint4 raw = *reinterpret_cast<const uint4*>(krow + (warp * kWarpDims + 32 * gs + 8 * c) * 2);
          mma_bf16_16816(s[n], qf[2 * gs][0], qf[2 * gs][1], qf[2 * gs][2], qf[2 * gs][3], raw.x, raw.y);
          mma_bf16_16816(s[n], qf[2 * gs + 1][0], qf[2 * gs + 1][1], qf[2 * gs + 1][2], qf[2 * gs + 1][3], raw.z,
                         raw.w);
        }
      }
    }
    // Sum the warps' partials (fixed warp order: identical scores in every warp).
    {
      float* mine = Sx + warp * (2 * 4 * 32);
#pragma unroll
      for (int n = 0; n < 2; ++n)
#pragma unroll
        for (int i = 0; i < 4; ++i) mine[(n * 4 + i) * 32 + lane] = s[n][i];
      __syncthreads();
#pragma unroll
      for (int n = 0; n < 2; ++n)
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          float x = 0.0f;
#pragma unroll
          for (int w = 0; w < C::NW; ++w) x += Sx[w * (2 * 4 * 32) + (n * 4 + i) * 32 + lane];
          const int key = kt + n * 8 + 2 * c + (i & 1);
          s[n][i] = key < ke ? x * sl2 : -INFINITY;
        }
    }
    // Online softmax (row g: elements 0, 1; row g + 8: 2, 3); key kt is always valid.
    float mx0 = fmaxf(m0, fmaxf(fmaxf(s[0][0], s[0][1]), fmaxf(s[1][0], s[1][1])));
    float mx1 = fmaxf(m1, fmaxf(fmaxf(s[0][2], s[0][3]), fmaxf(s[1][2], s[1][3])));
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
    const float al0 = exp2f(m0 - mx0), al1 = exp2f(m1 - mx1);
    m0 = mx0;
    m1 = mx1;
#pragma unroll
    for (int n = 0; n < 2; ++n) {
      s[n][0] = exp2f(s[n][0] - mx0);
      s[n][1] = exp2f(s[n][1] - mx0);
      s[n][2] = exp2f(s[n][2] - mx1);
      s[n][3] = exp2f(s[n][3] - mx1);
    }
    l0 = l0 * al0 + (s[0][0] + s[0][1] + s[1][0] + s[1][1]);
    l1 = l1 * al1 + (s[0][2] + s[0][3] + s[1][2] + s[1][3]);
#pragma unroll
    for (int n = 0; n < NB; ++n) {
      acc[n][0] *= al0;
      acc[n][1] *= al0;
      acc[n][2] *= al1;
      acc[n][3] *= al1;
    }
    // O[:, warp's columns] += P V.
    uint32_t pa[4];
    if constexpr (FP8) {
      pa[0] = pack_f16x2(s[0][0], s[0][1]);
      pa[1] = pack_f16x2(s[0][2], s[0][3]);
      pa[2] = pack_f16x2(s[1][0], s[1][1]);
      pa[3] = pack_f16x2(s[1][2], s[1][3]);
    } else {
      pa[0] = pack_bf16x2(s[0][0], s[0][1]);
      pa[1] = pack_bf16x2(s[0][2], s[0][3]);
      pa[2] = pack_bf16x2(s[1][0], s[1][1]);
      pa[3] = pack_bf16x2(s[1][2], s[1][3]);
    }
    const uint32_t vb = smem_addr(FP8 ? static_cast<const void*>(Vh) : static_cast<const void*>(st + C::kKBytes)) + v_lane;
#pragma unroll
    for (int n2 = 0; n2 < NB / 2; ++n2) {
      uint32_t b0, b1, b2, b3;
      ldmatrix_x4_trans(b0, b1, b2, b3, vb + n2 * 32);
      if constexpr (FP8) {
        mma_f16_16816(acc[2 * n2], pa[0], pa[1], pa[2], pa[3], b0, b1);
        mma_f16_16816(acc[2 * n2 + 1], pa[0], pa[1], pa[2], pa[3], b2, b3);
      } else {
        mma_bf16_16816(acc[2 * n2], pa[0], pa[1], pa[2], pa[3], b0, b1);
        mma_bf16_16816(acc[2 * n2 + 1], pa[0], pa[1], pa[2], pa[3], b2, b3);
      }
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // the ring is free: it becomes the merge buffer

  l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
  l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
#pragma unroll
  for (int n = 0; n < NB; ++n) {
    const int col = warp * kWarpDims + 8 * n + 2 * c;
    *reinterpret_cast<float2*>(comb + g * D + col) = make_float2(acc[n][0], acc[n][1]);
    *reinterpret_cast<float2*>(comb + (g + 8) * D + col) = make_float2(acc[n][2], acc[n][3]);
  }
  if (warp == 0 && c == 0) {
    ml_s[2 * g] = m0;
    ml_s[2 * g + 1] = l0;
    ml_s[2 * (g + 8)] = m1;
    ml_s[2 * (g + 8) + 1] = l1;
  }
  cluster_merge_splits<kRows, D, C::NT>(comb, ml_s, a.v_scale,
                                        a.out + (static_cast<size_t>(t) * a.Hq + kvh * kRows) * D);
}

template <int D, bool FP8, bool DEEP, bool QKV>
bool launch_mqa_cfg(const MqaArgs& a, int T, int span, cudaStream_t stream) {
  using C = MqaCfg<D, FP8, DEEP>;
  auto kernel = decode_mqa_kernel<D, FP8, DEEP, QKV>;
  static int per_sm = 0;
  static int cap_seen = [&] {
    prepare_cluster_kernel(kernel, C::smem);
    QUENCH_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, C::NT, C::smem));
    per_sm = std::max(per_sm, 1);
    return kMaxDecodeCluster;
  }();
  // One wave of CTAs; at least two tiles per split.
  auto splits_for = [&](int cap) {
    return decode_cluster_splits(T * a.Hkv, span, 2 * kBN, per_sm * decode_sm_count(), cap);
  };
  return launch_with_cluster_fallback(cap_seen, splits_for, [&](int splits) {
    return try_launch_clustered(kernel, dim3(splits, a.Hkv, T), dim3(C::NT), dim3(splits, 1, 1), C::smem, stream, a);
  });
}

/// Few (token, KV head) units (<= SMs / 16: at most one CTA per SM even at 16 splits): the deep
/// ring; otherwise the 2-CTA-per-SM ring.
template <int D, bool FP8, bool QKV>
bool launch_mqa_q(const MqaArgs& a, int T, int span, cudaStream_t stream) {
  if (T * a.Hkv * kMaxDecodeCluster <= decode_sm_count()) return launch_mqa_cfg<D, FP8, true, QKV>(a, T, span, stream);
  return launch_mqa_cfg<D, FP8, false, QKV>(a, T, span, stream);
}

template <int D, bool FP8>
bool launch_mqa(const MqaArgs& a, bool qkv, int T, int span, cudaStream_t stream) {
  return qkv ? launch_mqa_q<D, FP8, true>(a, T, span, stream) : launch_mqa_q<D, FP8, false>(a, T, span, stream);
}

}  // namespace

int decode_sm_count() {
  static const int sms = [] {
    int dev = 0, n = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) {
      (void)cudaGetLastError();
      n = 132;
    }
    return std::max(n, 1);
  }();
  return sms;
}

bool launch_decode_mqa_fused(const bf16* q, const QkvFold* fold, int T, int Hq, int D, int window, TokenMeta meta,
                             BlockTables tables, const KvLayerView& cache, int max_context, bf16* out,
                             cudaStream_t stream) {
  if (T > kFusedDecodeMaxTokens || Hq != kRows * cache.num_heads || !(D == 256 || D == 512)) return false;
  // H200 runs 4-5: the single launch wins while few units leave SMs idle (B=1 ctx 512 11.9 vs 21.7 us)
  // and loses to split + combine once T * Hkv * 16 > SMs (B=16 26.2 vs 22.7, B=64 53.6 vs 43.2).
  if (T * cache.num_heads * kMaxDecodeCluster > decode_sm_count()) return false;
  MqaArgs a{};
  a.q = q;
  if (fold != nullptr) a.fold = *fold;
  const bool qkv = fold != nullptr;
  a.out = out;
  a.pos = meta.pos;
  a.seq = meta.seq;
  a.table = tables.table;
  a.max_blocks = tables.max_blocks;
  a.k = cache.k;
  a.v = cache.v;
  a.k_scale = cache.fp8 ? cache.k_scale : 1.0f;
  a.v_scale = cache.fp8 ? cache.v_scale : 1.0f;
  a.Hq = Hq;
  a.Hkv = cache.num_heads;
  a.window = window;
  a.bs = cache.block_size;
  a.bs_shift = -1;
  for (int s = 0; s < 31; ++s)
    if ((1 << s) == cache.block_size) a.bs_shift = s;
  const int span = window > 0 ? std::min(window, max_context) : max_context;
  if (D == 512)
    return cache.fp8 ? launch_mqa<512, true>(a, qkv, T, span, stream) : launch_mqa<512, false>(a, qkv, T, span, stream);
  return cache.fp8 ? launch_mqa<256, true>(a, qkv, T, span, stream) : launch_mqa<256, false>(a, qkv, T, span, stream);
}

}  // namespace quench::cuda::detail
