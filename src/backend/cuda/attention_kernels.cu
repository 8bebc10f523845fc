// quench/backend/cuda/attention_kernels.cu: paged_attention's entry point. Head dims the
// tensor-core path covers (attention_flash.cu: 32..512, powers of two) go there; any other shape
// takes the CUDA-core kernel below. Both may split the key range (flash-decoding) so that long
// contexts and MQA (one KV head on global layers) still fill the GPU; combine_splits merges the
// parts.
//
// CUDA-core kernel: one block per (query token, KV head, key split) computes G query heads that
// share the KV head, so each K/V row is read once per block: scores with lanes splitting head_dim,
// online softmax in fp32 (scale 1.0, gemma4-architecture.md §2.4), V accumulation with each thread
// owning DPT columns for all G heads.
//
// Decode-shaped steps (T <= 64) of the 12B's two layer kinds first try the single-launch kernels
// of attention_decode.h (splits merged inside the launch through a thread-block cluster); the
// split + combine_splits path stays for every other shape and behind
// set_decode_attention_fused(false).
#include <algorithm>
#include <atomic>
#include <cfloat>
#include <mutex>
#include <string>
#include <cuda_fp8.h>

#include "backend/cuda/attention_decode.h"
#include "backend/cuda/attention_decode_cluster.cuh"
#include "backend/cuda/attention_flash.h"
#include "backend/cuda/attention_qkv_fold.cuh"
#include "backend/cuda/cuda_utils.h"
#include "backend/cuda/kernels.h"

namespace quench::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kKeyTile = 32;
constexpr int kSplitKeysPrefill = 512;  // keys per split when many query tokens fill the GPU
constexpr int kSplitKeysDecode = 64;    // few query tokens: short splits so blocks fill the SMs
constexpr int kDecodeTokens = 64;       // at or below this many query tokens a step counts as decode
constexpr int kDecodeHeadsPerBlock = 4; // decode: query heads of one KV head spread over blocks

int split_keys_for(int T) { return T <= kDecodeTokens ? kSplitKeysDecode : kSplitKeysPrefill; }

__device__ __forceinline__ float load_kv(const bf16* p, float) { return __bfloat162float(*p); }
__device__ __forceinline__ float load_kv(const uint8_t* p, float scale) {
  __half_raw hr = __nv_cvt_fp8_to_halfraw(static_cast<__nv_fp8_storage_t>(*p), __NV_E4M3);
  return __half2float(__half(hr)) * scale;
}

using detail::SplitParts;

template <int G, int DPT, typename CacheT>
__global__ void __launch_bounds__(kThreads) attention_kernel(const bf16* __restrict__ q, int Hq, int D, int window,
                                                             TokenMeta meta, BlockTables tables, KvLayerView cache,
                                                             int splits, int split_keys, int head_groups,
                                                             SplitParts part, bf16* __restrict__ out) {
  extern __shared__ float smem[];
  float* q_s = smem;                   // [G][D]
  float* p_s = q_s + G * D;            // [G][kKeyTile]
  float* alpha_s = p_s + G * kKeyTile; // [G]
  const int t = blockIdx.x, split = blockIdx.z;
  const int kvh = blockIdx.y / head_groups, hg = blockIdx.y % head_groups;
  const int Hkv = cache.num_heads;
  const int hbase = kvh * (Hq / Hkv) + hg * G;  // first query head of this block
  const int pos = meta.pos[t], seq = meta.seq[t];
  const int lo_all = window > 0 ? max(0, pos - window + 1) : 0;
  const int lo = lo_all + split * split_keys;
  const int hi = min(pos + 1, lo + split_keys);  // exclusive
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

  for (int i = threadIdx.x; i < G * D; i += kThreads) {
    const int g = i / D, d = i % D;
    q_s[i] = __bfloat162float(q[(static_cast<size_t>(t) * Hq + hbase + g) * D + d]);
  }
  float acc[G][DPT];
#pragma unroll
  for (int g = 0; g < G; ++g)
#pragma unroll
    for (int r = 0; r < DPT; ++r) acc[g][r] = 0.0f;
  float m_run = -FLT_MAX, l_run = 0.0f;  // valid in threads g < G (thread g tracks head g)
  __syncthreads();

  const CacheT* kbase = static_cast<const CacheT*>(cache.k);
  const CacheT* vbase = static_cast<const CacheT*>(cache.v);
  const int32_t* table = tables.table + static_cast<size_t>(seq) * tables.max_blocks;
  const int bs = cache.block_size;

  for (int k0 = lo; k0 < hi; k0 += kKeyTile) {
    const int nk = min(kKeyTile, hi - k0);
    // Scores: warp w handles keys w, w+4, ...; lanes split D in 8-element chunks.
    for (int kk = warp; kk < nk; kk += kThreads / 32) {
      const int kp = k0 + kk;
      const size_t slot = static_cast<size_t>(table[kp / bs]) * bs + kp % bs;
      const CacheT* krow = kbase + (slot * Hkv + kvh) * D;
      float dot[G];
#pragma unroll
      for (int g = 0; g < G; ++g) dot[g] = 0.0f;
      for (int d0 = lane * 8; d0 < D; d0 += 256) {
        float kv[8];
#pragma unroll
        for (int i = 0; i < 8; ++i) kv[i] = (d0 + i < D) ? load_kv(krow + d0 + i, cache.k_scale) : 0.0f;
#pragma unroll
        for (int g = 0; g < G; ++g)
#pragma unroll
          for (int i = 0; i < 8; ++i)
            if (d0 + i < D) dot[g] = fmaf(q_s[g * D + d0 + i], kv[i], dot[g]);
      }
#pragma unroll
      for (int g = 0; g < G; ++g) {
        float v = dot[g];
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (lane == 0) p_s[g * kKeyTile + kk] = v;
      }
    }
    __syncthreads();
    // Online softmax per head (thread g owns head g).
    if (threadIdx.x < G) {
      const int g = threadIdx.x;
      float mt = m_run;
      for (int kk = 0; kk < nk; ++kk) mt = fmaxf(mt, p_s[g * kKeyTile + kk]);
      const float a = __expf(m_run - mt);
      float lsum = l_run * a;
      for (int kk = 0; kk < nk; ++kk) {
        const float p = __expf(p_s[g * kKeyTile + kk] - mt);
        p_s[g * kKeyTile + kk] = p;
        lsum += p;
      }
      m_run = mt;
      l_run = lsum;
      alpha_s[g] = a;
    }
    __syncthreads();
    // Accumulate P.V: thread owns columns d = threadIdx.x + r * kThreads.
#pragma unroll
    for (int g = 0; g < G; ++g)
#pragma unroll
      for (int r = 0; r < DPT; ++r) acc[g][r] *= alpha_s[g];
    for (int kk = 0; kk < nk; ++kk) {
      const int kp = k0 + kk;
      const size_t slot = static_cast<size_t>(table[kp / bs]) * bs + kp % bs;
      const CacheT* vrow = vbase + (slot * Hkv + kvh) * D;
#pragma unroll
      for (int r = 0; r < DPT; ++r) {
        const int d = threadIdx.x + r * kThreads;
        if (d < D) {
          const float vv = load_kv(vrow + d, cache.v_scale);
#pragma unroll
          for (int g = 0; g < G; ++g) acc[g][r] = fmaf(p_s[g * kKeyTile + kk], vv, acc[g][r]);
        }
      }
    }
    __syncthreads();
  }

  __shared__ float ml_s[2 * 16];
  if (threadIdx.x < G) {
    ml_s[2 * threadIdx.x] = m_run;
    ml_s[2 * threadIdx.x + 1] = l_run;
  }
  __syncthreads();
  if (splits == 1) {
#pragma unroll
    for (int g = 0; g < G; ++g) {
      const float inv = ml_s[2 * g + 1] > 0.0f ? 1.0f / ml_s[2 * g + 1] : 0.0f;
#pragma unroll
      for (int r = 0; r < DPT; ++r) {
        const int d = threadIdx.x + r * kThreads;
        if (d < D) out[(static_cast<size_t>(t) * Hq + hbase + g) * D + d] = __float2bfloat16(acc[g][r] * inv);
      }
    }
    return;
  }
#pragma unroll
  for (int g = 0; g < G; ++g) {
    const size_t row = (static_cast<size_t>(t) * Hq + hbase + g) * splits + split;
#pragma unroll
    for (int r = 0; r < DPT; ++r) {
      const int d = threadIdx.x + r * kThreads;
      if (d < D) part.acc[row * D + d] = acc[g][r];
    }
    if (threadIdx.x == 0) {
      part.ml[row * 2] = ml_s[2 * g];
      part.ml[row * 2 + 1] = ml_s[2 * g + 1];
    }
  }
}

int num_splits(int window, int max_context, int split_keys) {
  const int span = window > 0 ? min(window, max_context) : max_context;
  return max(1, (span + split_keys - 1) / split_keys);
}

template <int G, int DPT>
void launch_gd(const bf16* q, int T, int Hq, int D, int window, TokenMeta meta, BlockTables tables,
               KvLayerView cache, int splits, SplitParts part, bf16* out, cudaStream_t stream) {
  const size_t smem = (static_cast<size_t>(G) * D + G * kKeyTile + G) * sizeof(float);
  const int head_groups = (Hq / cache.num_heads) / G;
  const int split_keys = split_keys_for(T);
  dim3 grid(T, cache.num_heads * head_groups, splits);
  if (cache.fp8) {
    auto k = attention_kernel<G, DPT, uint8_t>;
    QUENCH_CUDA_CHECK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    k<<<grid, kThreads, smem, stream>>>(q, Hq, D, window, meta, tables, cache, splits, split_keys, head_groups, part, out);
  } else {
    auto k = attention_kernel<G, DPT, bf16>;
    QUENCH_CUDA_CHECK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    k<<<grid, kThreads, smem, stream>>>(q, Hq, D, window, meta, tables, cache, splits, split_keys, head_groups, part, out);
  }
  QUENCH_CUDA_LAUNCH_CHECK();
}

template <int G>
void launch_g(int dpt, const bf16* q, int T, int Hq, int D, int window, TokenMeta meta, BlockTables tables,
              KvLayerView cache, int splits, SplitParts part, bf16* out, cudaStream_t stream) {
  switch (dpt) {
    case 1: launch_gd<G, 1>(q, T, Hq, D, window, meta, tables, cache, splits, part, out, stream); break;
    case 2: launch_gd<G, 2>(q, T, Hq, D, window, meta, tables, cache, splits, part, out, stream); break;
    case 4: launch_gd<G, 4>(q, T, Hq, D, window, meta, tables, cache, splits, part, out, stream); break;
    default: throw InvalidArgument("paged_attention: head_dim must be <= 512");
  }
}

/// One block per (token, head): thread 0's warp finds the largest max over the non-empty splits
/// and each split's weight e^(m_s - M); then threads sweep D (4 columns each when D % 4 == 0).
__global__ void combine_kernel(int D, int splits, SplitParts part, bf16* __restrict__ out) {
  extern __shared__ __align__(16) float w_s[];  // [splits] weights, 1 / L, padding (see combine_splits)
  const size_t th = blockIdx.x;   // token * Hq + head
  const float* ml = part.ml + th * splits * 2;
  if (threadIdx.x < 32) {
    float M = -FLT_MAX;
    for (int s = threadIdx.x; s < splits; s += 32)
      if (ml[2 * s + 1] > 0.0f) M = fmaxf(M, ml[2 * s]);
    for (int o = 16; o > 0; o >>= 1) M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, o));
    float L = 0.0f;
    for (int s = threadIdx.x; s < splits; s += 32) {
      const float l = ml[2 * s + 1];
      const float w = l > 0.0f ? __expf(ml[2 * s] - M) : 0.0f;
      w_s[s] = w;
      L += w * l;
    }
    for (int o = 16; o > 0; o >>= 1) L += __shfl_xor_sync(0xffffffffu, L, o);
    if (threadIdx.x == 0) w_s[splits] = L > 0.0f ? 1.0f / L : 0.0f;
  }
  __syncthreads();
  const float inv = w_s[splits];
  const float* acc = part.acc + th * splits * D;
  if (D % 4 == 0) {
    for (int d = 4 * threadIdx.x; d < D; d += 4 * blockDim.x) {
      float4 a = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      for (int s = 0; s < splits; ++s) {
        const float w = w_s[s];
        if (w == 0.0f) continue;
        const float4 x = *reinterpret_cast<const float4*>(acc + static_cast<size_t>(s) * D + d);
        a.x += w * x.x;
        a.y += w * x.y;
        a.z += w * x.z;
        a.w += w * x.w;
      }
      __nv_bfloat162 lo = __floats2bfloat162_rn(a.x * inv, a.y * inv), hi = __floats2bfloat162_rn(a.z * inv, a.w * inv);
      *reinterpret_cast<__nv_bfloat162*>(out + th * D + d) = lo;
      *reinterpret_cast<__nv_bfloat162*>(out + th * D + d + 2) = hi;
    }
  } else {
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
      float a = 0.0f;
      for (int s = 0; s < splits; ++s)
        if (w_s[s] != 0.0f) a += w_s[s] * acc[static_cast<size_t>(s) * D + d];
      out[th * D + d] = __float2bfloat16(a * inv);
    }
  }
}

size_t simt_scratch_bytes(int T, int Hq, int D, int max_context) {
  const int splits = num_splits(0, max_context, split_keys_for(T));
  if (splits == 1) return 0;
  return static_cast<size_t>(T) * Hq * splits * (D + 2) * sizeof(float);
}

/// The CUDA-core path (any head_dim up to 512, query heads per KV head 1..16 in powers of two).
void simt_attention(const bf16* q, int T, int Hq, int D, int window, TokenMeta meta, BlockTables tables,
                    KvLayerView cache, int max_context, bf16* out, void* scratch, cudaStream_t stream) {
  const int Hkv = cache.num_heads;
  const int Gtot = Hq / Hkv;
  // Decode: a block takes at most kDecodeHeadsPerBlock of the heads sharing a KV head, so MQA
  // layers (16 heads on one KV head) still spread over many blocks.
  const int G = T <= kDecodeTokens ? std::min(Gtot, kDecodeHeadsPerBlock) : Gtot;
  const int dpt = D <= kThreads ? 1 : (D <= 2 * kThreads ? 2 : 4);
  const int splits = num_splits(window, max_context, split_keys_for(T));
  SplitParts part{};
  if (splits > 1) {
    part.acc = static_cast<float*>(scratch);
    part.ml = part.acc + static_cast<size_t>(T) * Hq * splits * D;
  }
  switch (G) {
    case 1: launch_g<1>(dpt, q, T, Hq, D, window, meta, tables, cache, splits, part, out, stream); break;
    case 2: launch_g<2>(dpt, q, T, Hq, D, window, meta, tables, cache, splits, part, out, stream); break;
    case 4: launch_g<4>(dpt, q, T, Hq, D, window, meta, tables, cache, splits, part, out, stream); break;
    case 8: launch_g<8>(dpt, q, T, Hq, D, window, meta, tables, cache, splits, part, out, stream); break;
    case 16: launch_g<16>(dpt, q, T, Hq, D, window, meta, tables, cache, splits, part, out, stream); break;
    default: throw InvalidArgument("paged_attention: query heads per KV head must be 1, 2, 4, 8 or 16");
  }
  if (splits > 1) detail::combine_splits(T, Hq, D, splits, part, out, stream);
}

}  // namespace

void detail::combine_splits(int T, int Hq, int D, int splits, SplitParts parts, bf16* out, cudaStream_t stream) {
  const int threads = D % 4 == 0 ? std::min(256, std::max(32, (D / 4 + 31) / 32 * 32)) : 128;
  // The weight array is padded to whole 16-byte vectors plus one: the compiler unrolls the split
  // loop with vector shared loads that may read (and discard) a few words past `splits + 1`
  // (compute-sanitizer flagged 12-byte reads past the end on the H200, run 1).
  const size_t smem = ((splits + 1 + 3) / 4 + 1) * 4 * sizeof(float);
  combine_kernel<<<T * Hq, threads, smem, stream>>>(D, splits, parts, out);
  QUENCH_CUDA_LAUNCH_CHECK();
}

namespace {
std::atomic<bool> g_fused_decode{true};
std::atomic<int> g_cluster_cap{0};
std::atomic<int> g_last_splits{0};
}  // namespace

void set_decode_attention_fused(bool on) { g_fused_decode.store(on); }
bool decode_attention_fused() { return g_fused_decode.load(std::memory_order_relaxed); }
void set_decode_attention_max_cluster(int cap) { g_cluster_cap.store(std::max(cap, 0)); }
int decode_attention_last_splits() { return g_last_splits.load(std::memory_order_relaxed); }

int detail::decode_cluster_cap() {
  const int cap = g_cluster_cap.load(std::memory_order_relaxed);
  return cap > 0 ? std::min(cap, kMaxDecodeCluster) : kMaxDecodeCluster;
}
void detail::note_decode_splits(int splits) { g_last_splits.store(splits, std::memory_order_relaxed); }

namespace {
std::mutex g_refusals_mu;
std::string g_refusals;
}  // namespace

void detail::note_decode_cluster_refused(int splits, cudaError_t err) {
  std::lock_guard<std::mutex> lock(g_refusals_mu);
  if (!g_refusals.empty()) g_refusals += "; ";
  g_refusals += "cluster " + std::to_string(splits) + ": " + cudaGetErrorName(err);
}

std::string decode_attention_cluster_refusals() {
  std::lock_guard<std::mutex> lock(g_refusals_mu);
  return g_refusals;
}

bool qkv_paged_attention_decode(const float* q, const float* k, const float* v, int T, int Hq, int Hkv, int D,
                                const float* q_norm, const float* k_norm, const float* inv_freq, float eps, int window,
                                TokenMeta meta, BlockTables tables, KvLayerView cache, int max_context, bf16* out,
                                cudaStream_t stream) {
  if (T == 0) return true;
  if (T > detail::kFusedDecodeMaxTokens || !decode_attention_fused()) return false;
  if (Hkv <= 0 || Hkv != cache.num_heads || Hq % Hkv)
    throw InvalidArgument("qkv_paged_attention_decode: num_heads must be a multiple of the cache's num_kv_heads");
  if (cache.head_dim != 0 && cache.head_dim != D)
    throw InvalidArgument("qkv_paged_attention_decode: head_dim " + std::to_string(D) + " differs from the cache's " +
                          std::to_string(cache.head_dim));
  detail::QkvFold fold;
  fold.qp = q;
  fold.kp = k;
  fold.vp = v;
  fold.q_norm = q_norm;
  fold.k_norm = k_norm;
  fold.inv_freq = inv_freq;
  fold.eps = eps;
  // Only the MQA fold won on the H200 (run 5, B=1 ctx 512: 15.2 vs 17.0 us for the two launches);
  // the sliding fold lost at B=16/64 (55.1 vs 39.7 us), so sliding layers keep the two calls.
  return detail::launch_decode_mqa_fused(nullptr, &fold, T, Hq, D, window, meta, tables, cache, max_context, out,
                                         stream);
}

size_t attention_scratch_bytes(int T, int Hq, int D, int max_context) {
  return detail::flash_supported(D) ? detail::flash_scratch_bytes(T, Hq, D, max_context)
                                    : simt_scratch_bytes(T, Hq, D, max_context);
}

void paged_attention(const bf16* q, int T, int Hq, int D, int window, TokenMeta meta, BlockTables tables,
                     KvLayerView cache, int max_context, bf16* out, void* scratch, cudaStream_t stream) {
  if (T == 0) return;
  const int Hkv = cache.num_heads;
  if (Hkv <= 0 || Hq % Hkv) throw InvalidArgument("paged_attention: num_heads must be a multiple of num_kv_heads");
  if (cache.head_dim != 0 && cache.head_dim != D)
    throw InvalidArgument("paged_attention: head_dim " + std::to_string(D) + " differs from the cache's " +
                          std::to_string(cache.head_dim));
  if (T <= detail::kFusedDecodeMaxTokens && decode_attention_fused() &&
      (detail::launch_decode_mqa_fused(q, nullptr, T, Hq, D, window, meta, tables, cache, max_context, out, stream) ||
       detail::launch_decode_gqa_fused(q, nullptr, T, Hq, D, window, meta, tables, cache, max_context, out, stream)))
    return;
  if (!detail::flash_supported(D)) {
    simt_attention(q, T, Hq, D, window, meta, tables, cache, max_context, out, scratch, stream);
    return;
  }
  const detail::FlashPlan plan = detail::plan_flash(T, Hq, Hkv, D, window, max_context);
  // Scratch: [prefill tile list][split partials].
  const size_t ws = detail::flash_tile_ws_bytes(T);
  SplitParts parts{};
  if (plan.splits > 1) {
    parts.acc = reinterpret_cast<float*>(static_cast<uint8_t*>(scratch) + ws);
    parts.ml = parts.acc + static_cast<size_t>(T) * Hq * plan.splits * D;
  }
  detail::launch_flash(plan, q, T, Hq, D, window, meta, tables, cache, parts, ws ? scratch : nullptr, out, stream);
  if (plan.splits > 1) detail::combine_splits(T, Hq, D, plan.splits, parts, out, stream);
}

}  // namespace quench::cuda
