// quench/backend/cuda/attention_decode.cu: decode-shaped paged attention (one query token per
// block) for layers with few query heads per KV head (G <= 4: the 12B's sliding layers have 2),
// on CUDA cores. A 16-row mma tile would be 7/8 padding there, and staging K/V through shared
// memory caps the bytes in flight; here each warp streams whole key rows straight into registers
// (lane l holds elements 8l..8l+7 of a 256-wide row, 16-byte loads), KB keys' K and V rows at once,
// then: scores by warp reduction, online softmax in fp32 (base 2, scale 1.0 — §2.4 of
// gemma4-architecture.md), acc += p * v. The 4 warps of a block take interleaved key batches of the
// block's split and are merged through shared memory at the end. Output convention as the
// tensor-core kernel (attention_flash.cu): bf16 out, or split partials for combine_splits.
//
// The same kernel also runs as the single-launch decode path (launch_decode_gqa_fused): the
// splits of one (token, KV head) form a thread-block cluster and are merged in the kernel through
// distributed shared memory (attention_decode_cluster.cuh), so no combine launch and no scratch.
#include <cuda_fp8.h>

#include <algorithm>
#include <climits>
#include <cmath>

#include "backend/cuda/attention_decode.h"
#include "backend/cuda/attention_decode_cluster.cuh"
#include "backend/cuda/attention_flash.h"
#include "backend/cuda/attention_qkv_fold.cuh"
#include "backend/cuda/cuda_utils.h"
#include "backend/cuda/pdl.cuh"

namespace quench::cuda::detail {
namespace {

constexpr int kWarps = 4;
constexpr int kKeysPerBatch = 8;  // per warp: K and V rows in flight together
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

struct DecodeArgs {
  const bf16* q;
  bf16* out;
  const int32_t* pos;
  const int32_t* seq;
  const int32_t* table;
  int max_blocks;
  const void* k;
  const void* v;
  float k_scale, v_scale;
  int Hq, Hkv, window, splits, bs, bs_shift;
  float* part_acc;
  float* part_ml;
  QkvFold fold;  // QKV kernels: the projections instead of q
};

/// 8 consecutive cache elements as loaded (bf16: one 16-byte load; FP8: one 8-byte load), and
/// their fp32 values (FP8: the codes; scales are applied to scores / outputs).
template <typename CacheT>
struct Raw8;
template <>
struct Raw8<bf16> {
  uint4 r;
  __device__ __forceinline__ void load(const bf16* p) { r = __ldg(reinterpret_cast<const uint4*>(p)); }
  /// L2 load (coherent with this kernel's own cache writes; QKV kernels).
  __device__ __forceinline__ void load_cg(const bf16* p) { r = __ldcg(reinterpret_cast<const uint4*>(p)); }
  __device__ __forceinline__ void zero() { r = make_uint4(0, 0, 0, 0); }
  __device__ __forceinline__ void to_float(float (&x)[8]) const {
    const uint32_t w[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      x[2 * i] = __uint_as_float(w[i] << 16);
      x[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
  }
};
template <>
struct Raw8<uint8_t> {
  uint2 r;
  __device__ __forceinline__ void load(const uint8_t* p) { r = __ldg(reinterpret_cast<const uint2*>(p)); }
  __device__ __forceinline__ void load_cg(const uint8_t* p) { r = __ldcg(reinterpret_cast<const uint2*>(p)); }
  __device__ __forceinline__ void zero() { r = make_uint2(0, 0); }
  __device__ __forceinline__ void to_float(float (&x)[8]) const {
    const uint32_t w[2] = {r.x, r.y};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const __nv_fp8x2_storage_t pair = static_cast<__nv_fp8x2_storage_t>((w[i / 2] >> (16 * (i % 2))) & 0xffffu);
      const float2 f = __half22float2(__half2(__nv_cvt_fp8x2_to_halfraw2(pair, __NV_E4M3)));
      x[2 * i] = f.x;
      x[2 * i + 1] = f.y;
    }
  }
};

/// Lane-distributed RMS norm + NeoX RoPE of one row: lane l < LANES holds x = elements 8l..8l+7,
/// `inv` = the row's 1 / rms; y = x * inv * w (w == nullptr: no weight), then rotated with the
/// partner lane l ^ (LANES / 2) (pairs (j, j + D/2)) by the angles (rc, rs) of pair index
/// (8l + i) mod D/2. Every lane of the warp must call it (shuffles).
template <int D>
__device__ __forceinline__ void norm_rope_row8(const float (&x)[8], float inv, const float* w, bool rope,
                                               const float (&rc)[8], const float (&rs)[8], int lane, float (&y)[8]) {
  constexpr int LANES = D / 8;
  const bool holder = lane < LANES;
  float wv[8] = {1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f};
  if (w != nullptr && holder) load_f32x8(w + 8 * lane, wv);
#pragma unroll
  for (int i = 0; i < 8; ++i) y[i] = x[i] * inv * wv[i];
  if (!rope) return;
  const bool lower = lane < LANES / 2;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const float p = __shfl_xor_sync(0xffffffffu, y[i], LANES / 2);
    y[i] = lower ? y[i] * rc[i] - p * rs[i] : y[i] * rc[i] + p * rs[i];
  }
}

/// Grid (Hkv, T, splits); block = kWarps warps; D = 8 * LANES (LANES <= 32 lanes hold a row).
/// CLUSTER: the splits of one (token, KV head) are one cluster (dims 1 x 1 x splits) and merge
/// in the kernel (out written, no partials); otherwise splits > 1 write a.part_acc / a.part_ml.
/// QKV (with CLUSTER): the kernel does qkv_norm_rope_store's work for its token first — the split
/// holding position pos writes the new K/V row of its KV head into the cache (then a barrier: its
/// warps read that row back through L2; every other row is never written during the launch and
/// keeps the read-only path), every CTA normalises and rotates its own query heads from
/// a.fold.qp — instead of reading a prepared a.q.
/// CLUSTER instances with G <= 2 are held to 128 registers (4 CTAs per SM; unbounded they take
/// 156-158, 3 per SM — H200 run 4: folded sliding B=16 ctx 512 55.9 us vs 39.8 for two launches).
template <int D, int G, typename CacheT, bool CLUSTER, bool QKV = false>
__global__ void __launch_bounds__(32 * kWarps, (CLUSTER && G <= 2) ? 4 : 1) decode_gqa_kernel(const DecodeArgs a) {
  static_assert(CLUSTER || !QKV, "QKV kernels merge in the cluster");
  constexpr int LANES = D / 8;
  static_assert(LANES <= 32 && D % 8 == 0, "row must fit a warp in 8-element chunks");
  __shared__ float acc_s[kWarps][G][D];
  __shared__ float ml_s[kWarps][G][2];
  __shared__ __align__(16) float comb_acc[CLUSTER ? G : 1][CLUSTER ? D : 4];  // merged over warps (cluster mode)
  __shared__ float comb_ml[G][2];
  const int kvh = blockIdx.x, t = blockIdx.y, split = blockIdx.z;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const bool holder = lane < LANES;
  // Token metadata is never written by the kernel this one may overlap under PDL (kernels.h).
  const int pos = a.pos[t], sq = a.seq[t];
  // Same split arithmetic as the tensor-core kernel's decode tiles (32-key granules).
  int kb, ke;
  decode_split_range(pos, a.window, split, a.splits, 32, kb, ke);
  const int32_t* tab = a.table + static_cast<size_t>(sq) * a.max_blocks;
  float rc[8], rs[8];  // QKV: RoPE angles of this lane's elements
  if constexpr (QKV) {
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      rc[i] = 1.0f;
      rs[i] = 0.0f;
      if (holder) {
        float sv, cv;  // scalars: sincosf's out-pointers must not pin the arrays to local memory
        sincosf(static_cast<float>(pos) * a.fold.inv_freq[(8 * lane + i) % (D / 2)], &sv, &cv);
        rs[i] = sv;
        rc[i] = cv;
      }
    }
  }
  if constexpr (CLUSTER) {
    // Before waiting on the previous kernel: the block table (host-written) and an L2 prefetch of
    // this warp's first 8 K/V rows (old positions; the new row is rewritten in L2 later anyway).
    const int kp = kb + warp * kKeysPerBatch + (lane & 7);
    if (lane < 16 && kp < ke) {
      const int bi = a.bs_shift >= 0 ? (kp >> a.bs_shift) : kp / a.bs;
      const int blk = tab[bi];
      if (blk >= 0) {
        const size_t off = ((static_cast<size_t>(blk) * a.bs + (kp - bi * a.bs)) * a.Hkv + kvh) * D;
        const char* row = static_cast<const char*>(lane < 8 ? a.k : a.v) + off * sizeof(CacheT);
#pragma unroll
        for (int b = 0; b < static_cast<int>(D * sizeof(CacheT)); b += 128) prefetch_l2(row + b);
      }
    }
  }
  pdl_wait();  // q and the new token's K/V come from the previous kernel
  const float sl2 = a.k_scale * kLog2e;

  float q[G][8];
  if constexpr (QKV) {
    const bool owner = kb <= pos && pos < ke;  // CTA-uniform
    if (owner && warp < 2) {
      // Warp 0: K = rope(rmsnorm(k, k_norm)); warp 1: V = rmsnorm_noweight(v) (§2.4).
      float x[8] = {0, 0, 0, 0, 0, 0, 0, 0}, y[8];
      const float* src = (warp == 0 ? a.fold.kp : a.fold.vp) + (static_cast<size_t>(t) * a.Hkv + kvh) * D + 8 * lane;
      if (holder) load_f32x8(src, x);
      float ss = 0.0f;
#pragma unroll
      for (int i = 0; i < 8; ++i) ss += x[i] * x[i];
      const float inv = rsqrtf(fold_warp_sum(ss) / D + a.fold.eps);
      norm_rope_row8<D>(x, inv, warp == 0 ? a.fold.k_norm : nullptr, warp == 0, rc, rs, lane, y);
      const int bi = pos / a.bs, blk = tab[bi];
      if (holder && blk >= 0) {
        CacheT* dst = static_cast<CacheT*>(const_cast<void*>(warp == 0 ? a.k : a.v)) +
                      ((static_cast<size_t>(blk) * a.bs + (pos - bi * a.bs)) * a.Hkv + kvh) * D + 8 * lane;
        store_cache8<CacheT>(dst, y, 1.0f / (warp == 0 ? a.k_scale : a.v_scale));
      }
      fold_fence();
    }
#pragma unroll
    for (int g = 0; g < G; ++g) {
      float x[8] = {0, 0, 0, 0, 0, 0, 0, 0}, y[8];
      if (holder) load_f32x8(a.fold.qp + (static_cast<size_t>(t) * a.Hq + kvh * G + g) * D + 8 * lane, x);
      float ss = 0.0f;
#pragma unroll
      for (int i = 0; i < 8; ++i) ss += x[i] * x[i];
      const float inv = rsqrtf(fold_warp_sum(ss) / D + a.fold.eps);
      norm_rope_row8<D>(x, inv, a.fold.q_norm, true, rc, rs, lane, y);
#pragma unroll
      for (int i = 0; i < 8; ++i) q[g][i] = holder ? __bfloat162float(__float2bfloat16(y[i])) : 0.0f;  // q_out is bf16
    }
    if (owner) __syncthreads();  // the new K/V row is in L2 before any warp loads it
  } else {
#pragma unroll
  for (int g = 0; g < G; ++g) {
    if (holder) {
      const uint4 r = __ldg(reinterpret_cast<const uint4*>(a.q + (static_cast<size_t>(t) * a.Hq + kvh * G + g) * D) + lane);
      const uint32_t w[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        q[g][2 * i] = __uint_as_float(w[i] << 16);
        q[g][2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
      }
    } else {
#pragma unroll
      for (int i = 0; i < 8; ++i) q[g][i] = 0.0f;
    }
  }
  }
  float acc[G][8], m[G], l[G];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[g][i] = 0.0f;
  }
  const CacheT* kbase = static_cast<const CacheT*>(a.k);
  const CacheT* vbase = static_cast<const CacheT*>(a.v);
  for (int k0 = kb + warp * kKeysPerBatch; k0 < ke; k0 += kWarps * kKeysPerBatch) {
    Raw8<CacheT> kr[kKeysPerBatch], vr[kKeysPerBatch];
#pragma unroll
    for (int j = 0; j < kKeysPerBatch; ++j) {
      const int kp = k0 + j;
      int blk = -1;
      size_t off = 0;
      if (kp < ke) {
        const int bi = a.bs_shift >= 0 ? (kp >> a.bs_shift) : kp / a.bs;
        blk = tab[bi];
        off = ((static_cast<size_t>(blk) * a.bs + (kp - bi * a.bs)) * a.Hkv + kvh) * D + lane * 8;
      }
      if (blk >= 0 && holder) {
        if (QKV && kp == pos) {  // the row this CTA wrote (only the owner's range holds pos)
          kr[j].load_cg(kbase + off);
          vr[j].load_cg(vbase + off);
        } else {
          kr[j].load(kbase + off);
          vr[j].load(vbase + off);
        }
      } else {
        kr[j].zero();
        vr[j].zero();
      }
    }
    // Scores of the batch for every head (keys of -1 blocks never occur inside [lo, pos]).
    float s[G][kKeysPerBatch];
#pragma unroll
    for (int j = 0; j < kKeysPerBatch; ++j) {
      float kx[8];
      kr[j].to_float(kx);
#pragma unroll
      for (int g = 0; g < G; ++g) {
        float d = 0.0f;
#pragma unroll
        for (int i = 0; i < 8; ++i) d = fmaf(q[g][i], kx[i], d);
        s[g][j] = d;
      }
    }
#pragma unroll
    for (int g = 0; g < G; ++g)
#pragma unroll
      for (int j = 0; j < kKeysPerBatch; ++j) {
        float d = s[g][j];
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
        s[g][j] = k0 + j < ke ? d * sl2 : -INFINITY;
      }
    // Online softmax per head; the batch's first key is always valid, so mx is finite.
    float alpha[G];
#pragma unroll
    for (int g = 0; g < G; ++g) {
      float mx = m[g];
#pragma unroll
      for (int j = 0; j < kKeysPerBatch; ++j) mx = fmaxf(mx, s[g][j]);
      alpha[g] = exp2f(m[g] - mx);  // m = -inf at first: 0
      m[g] = mx;
      float rs = 0.0f;
#pragma unroll
      for (int j = 0; j < kKeysPerBatch; ++j) {
        s[g][j] = exp2f(s[g][j] - mx);
        rs += s[g][j];
      }
      l[g] = l[g] * alpha[g] + rs;
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[g][i] *= alpha[g];
    }
#pragma unroll
    for (int j = 0; j < kKeysPerBatch; ++j) {
      float vx[8];
      vr[j].to_float(vx);
#pragma unroll
      for (int g = 0; g < G; ++g)
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[g][i] = fmaf(s[g][j], vx[i], acc[g][i]);
    }
  }
  // Merge the warps' (m, l, acc) through shared memory.
#pragma unroll
  for (int g = 0; g < G; ++g) {
    if (holder) {
#pragma unroll
      for (int i = 0; i < 8; ++i) acc_s[warp][g][lane * 8 + i] = acc[g][i];
    }
    if (lane == 0) {
      ml_s[warp][g][0] = m[g];
      ml_s[warp][g][1] = l[g];
    }
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < G * D; idx += 32 * kWarps) {
    const int g = idx / D, d = idx % D;
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w)
      if (ml_s[w][g][1] > 0.0f) M = fmaxf(M, ml_s[w][g][0]);
    float L = 0.0f, o = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      const float lw = ml_s[w][g][1];
      if (lw > 0.0f) {
        const float sc = exp2f(ml_s[w][g][0] - M);
        L += sc * lw;
        o += sc * acc_s[w][g][d];
      }
    }
    const size_t th = static_cast<size_t>(t) * a.Hq + kvh * G + g;
    if constexpr (CLUSTER) {
      comb_acc[g][d] = o;
      if (d == 0) {
        comb_ml[g][0] = L > 0.0f ? M : -INFINITY;
        comb_ml[g][1] = L;
      }
    } else if (a.splits == 1) {
      a.out[th * D + d] = __float2bfloat16(L > 0.0f ? o * a.v_scale / L : 0.0f);
    } else {
      const size_t prow = th * a.splits + split;
      if (L > 0.0f) a.part_acc[prow * D + d] = o * a.v_scale;
      if (d == 0) {
        a.part_ml[prow * 2] = L > 0.0f ? M * kLn2 : -INFINITY;
        a.part_ml[prow * 2 + 1] = L;
      }
    }
  }
  if constexpr (CLUSTER)
    cluster_merge_splits<G, D, 32 * kWarps>(&comb_acc[0][0], &comb_ml[0][0], a.v_scale,
                                            a.out + (static_cast<size_t>(t) * a.Hq + kvh * G) * D);
}

template <int D, int G>
void launch_dg(const DecodeArgs& a, bool fp8, dim3 grid, cudaStream_t stream) {
  if (fp8) decode_gqa_kernel<D, G, uint8_t, false><<<grid, 32 * kWarps, 0, stream>>>(a);
  else decode_gqa_kernel<D, G, bf16, false><<<grid, 32 * kWarps, 0, stream>>>(a);
  QUENCH_CUDA_LAUNCH_CHECK();
}

template <int D>
bool launch_d(int G, const DecodeArgs& a, bool fp8, dim3 grid, cudaStream_t stream) {
  switch (G) {
    case 1: launch_dg<D, 1>(a, fp8, grid, stream); return true;
    case 2: launch_dg<D, 2>(a, fp8, grid, stream); return true;
    case 4: launch_dg<D, 4>(a, fp8, grid, stream); return true;
    default: return false;
  }
}

}  // namespace

bool launch_decode_gqa(const FlashPlan& pl, const bf16* q, int T, int Hq, int D, int window, TokenMeta meta,
                       BlockTables tables, const KvLayerView& cache, SplitParts parts, bf16* out, cudaStream_t stream) {
  const int G = Hq / cache.num_heads;
  if (pl.mw != 1 || pl.tile_tokens != 1 || pl.head_groups != 1 || G > 4 || !(D == 128 || D == 256)) return false;
  DecodeArgs a{};
  a.q = q;
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
  a.splits = pl.splits;
  a.bs = cache.block_size;
  a.bs_shift = -1;
  for (int s = 0; s < 31; ++s)
    if ((1 << s) == cache.block_size) a.bs_shift = s;
  a.part_acc = parts.acc;
  a.part_ml = parts.ml;
  const dim3 grid(cache.num_heads, T, pl.splits);
  return D == 256 ? launch_d<256>(G, a, cache.fp8, grid, stream) : launch_d<128>(G, a, cache.fp8, grid, stream);
}

}  // namespace quench::cuda::detail

namespace quench::cuda::detail {
namespace {

/// Single-launch instance: clusters of `splits` CTAs along grid z.
template <int D, int G, typename CacheT, bool QKV>
bool launch_fused_dgq(DecodeArgs a, int T, int span, cudaStream_t stream) {
  auto kernel = decode_gqa_kernel<D, G, CacheT, true, QKV>;
  static int cap_seen = [&] {
    prepare_cluster_kernel(kernel, 0);
    return kMaxDecodeCluster;
  }();
  // Small CTAs (4 warps, <= 21 KB shared, 128 registers): aim at 4 per SM; at least one 8-key
  // batch per warp.
  auto splits_for = [&](int cap) {
    return decode_cluster_splits(T * a.Hkv, span, kKeysPerBatch * kWarps, 4 * decode_sm_count(), cap);
  };
  return launch_with_cluster_fallback(cap_seen, splits_for, [&](int splits) {
    a.splits = splits;
    return try_launch_clustered(kernel, dim3(a.Hkv, T, splits), dim3(32 * kWarps), dim3(1, 1, splits), 0, stream, a);
  });
}

template <int D, int G>
bool launch_fused_d_g(const DecodeArgs& a, bool fp8, bool qkv, int T, int span, cudaStream_t stream) {
  if (fp8) return qkv ? launch_fused_dgq<D, G, uint8_t, true>(a, T, span, stream)
                      : launch_fused_dgq<D, G, uint8_t, false>(a, T, span, stream);
  return qkv ? launch_fused_dgq<D, G, bf16, true>(a, T, span, stream)
             : launch_fused_dgq<D, G, bf16, false>(a, T, span, stream);
}

template <int D>
bool launch_fused_d(int G, const DecodeArgs& a, bool fp8, bool qkv, int T, int span, cudaStream_t stream) {
  switch (G) {
    case 1: return launch_fused_d_g<D, 1>(a, fp8, qkv, T, span, stream);
    case 2: return launch_fused_d_g<D, 2>(a, fp8, qkv, T, span, stream);
    case 4: return launch_fused_d_g<D, 4>(a, fp8, qkv, T, span, stream);
    default: return false;
  }
}

}  // namespace

bool launch_decode_gqa_fused(const bf16* q, const QkvFold* fold, int T, int Hq, int D, int window, TokenMeta meta,
                             BlockTables tables, const KvLayerView& cache, int max_context, bf16* out,
                             cudaStream_t stream) {
  const int G = Hq / cache.num_heads;
  if (T > kFusedDecodeMaxTokens || G > 4 || !(D == 128 || D == 256)) return false;
  DecodeArgs a{};
  a.q = q;
  if (fold != nullptr) a.fold = *fold;
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
  const bool qkv = fold != nullptr;
  return D == 256 ? launch_fused_d<256>(G, a, cache.fp8, qkv, T, span, stream)
                  : launch_fused_d<128>(G, a, cache.fp8, qkv, T, span, stream);
}

}  // namespace quench::cuda::detail
