// quench/backend/cuda/attention_decode_cluster.cuh: the pieces the single-launch decode attention
// kernels share (attention_decode.cu for GQA layers, attention_decode_mqa.cu for MQA layers):
//  - the key range of one split,
//  - the split merge inside the launch: the S CTAs that split one (token, KV head)'s keys form a
//    thread-block cluster (sm_90) and, after a cluster barrier, each CTA merges 1/S of the output
//    elements by reading every peer's (max, sum, accumulator) from distributed shared memory
//    (flash-decoding's merge, Dao et al. 2023, done without a second launch or global scratch),
//  - the launch with cluster dims + Programmatic Dependent Launch (pdl.cuh), halving the
//    cluster size while the device refuses it.
#pragma once

#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "backend/cuda/cuda_utils.h"
#include "backend/cuda/kernels.h"

namespace quench::cuda::detail {

/// Most CTAs one cluster (so one split merge) takes: 16 needs the non-portable cluster size
/// (H100/H200); launchers halve it while the device refuses the launch.
constexpr int kMaxDecodeCluster = 16;

/// Keys [kb, ke) of split `split` of `splits` for a query at position `pos` (window 0: all keys):
/// the visible span cut in chunks rounded up to `gran` keys. Empty (kb >= ke) for trailing splits
/// of short contexts.
__device__ __forceinline__ void decode_split_range(int pos, int window, int split, int splits, int gran, int& kb,
                                                   int& ke) {
  const int lo = window > 0 ? max(0, pos - window + 1) : 0;
  const int span = pos - lo + 1;
  const int chunk = ((span + splits - 1) / splits + gran - 1) / gran * gran;
  kb = lo + split * chunk;
  ke = min(pos + 1, kb + chunk);
}

/// L2 prefetch of the 128-byte line holding `p` (a hint: it moves no data into registers and L2
/// is the point of coherence, so it is safe before pdl_wait even for rows the previous kernel is
/// still writing).
__device__ __forceinline__ void prefetch_l2(const void* p) {
  asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
}

/// Merges the split partials of one (token, KV head) across the CTAs of this cluster and writes
/// out[r, d] (bf16 [R, D], rows contiguous) = v_scale * sum_s 2^(m_s - M) acc_s[r, d] /
/// sum_s 2^(m_s - M) l_s over the splits whose l_s > 0 (M = their largest m).
/// acc_s: this CTA's fp32 [R][D] unnormalised accumulators; ml_s: fp32 [R][2] = (running max in
/// log2 units, running sum), both in shared memory and written before the call by any thread.
/// Every thread of every CTA of the cluster must call this (it holds two cluster barriers: the
/// second keeps each CTA's shared memory alive until its peers have read it). D % 4 == 0.
template <int R, int D, int NT>
__device__ __forceinline__ void cluster_merge_splits(const float* acc_s, const float* ml_s, float v_scale,
                                                     bf16* __restrict__ out) {
  namespace cg = cooperative_groups;
  static_assert(D % 4 == 0, "float4 columns");
  cg::cluster_group cl = cg::this_cluster();
  cl.sync();  // release/acquire: every CTA's partials are visible cluster-wide
  const int S = static_cast<int>(cl.num_blocks()), rank = static_cast<int>(cl.block_rank());
  constexpr int kVecs = R * D / 4;
  const int per = (kVecs + S - 1) / S;
  const int v_end = min(kVecs, (rank + 1) * per);
  for (int v = rank * per + static_cast<int>(threadIdx.x); v < v_end; v += NT) {
    const int row = 4 * v / D, col = 4 * v % D;
    float m[kMaxDecodeCluster], l[kMaxDecodeCluster];
    float M = -INFINITY;
#pragma unroll
    for (int s = 0; s < kMaxDecodeCluster; ++s) {
      m[s] = -INFINITY;
      l[s] = 0.0f;
      if (s < S) {
        const float* ml = cl.map_shared_rank(ml_s, s);
        m[s] = ml[2 * row];
        l[s] = ml[2 * row + 1];
        if (l[s] > 0.0f) M = fmaxf(M, m[s]);
      }
    }
    float L = 0.0f;
    float4 o = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
    for (int s = 0; s < kMaxDecodeCluster; ++s) {
      if (s < S && l[s] > 0.0f) {
        const float w = exp2f(m[s] - M);
        L += w * l[s];
        const float4 a = *reinterpret_cast<const float4*>(cl.map_shared_rank(acc_s, s) + row * D + col);
        o.x += w * a.x;
        o.y += w * a.y;
        o.z += w * a.z;
        o.w += w * a.w;
      }
    }
    const float inv = L > 0.0f ? v_scale / L : 0.0f;
    const __nv_bfloat162 lo = __floats2bfloat162_rn(o.x * inv, o.y * inv), hi = __floats2bfloat162_rn(o.z * inv, o.w * inv);
    uint2 packed;
    packed.x = *reinterpret_cast<const uint32_t*>(&lo);
    packed.y = *reinterpret_cast<const uint32_t*>(&hi);
    *reinterpret_cast<uint2*>(out + row * D + col) = packed;
  }
  cl.sync();  // peers are done reading this CTA's shared memory
}

/// Enqueues kernel<<<grid, block, smem, stream>>>(args...) as clusters of `cluster` CTAs, with
/// the PDL attribute under the same rule as pdl.cuh's launch_kernel (on, and a created stream).
/// A launch refused with PDL is retried once without it (and PDL is not tried again for this
/// kernel). Returns the launch's error code (cleared from the runtime's last error).
template <typename... KArgs, typename... Args>
cudaError_t try_launch_clustered(void (*kernel)(KArgs...), dim3 grid, dim3 block, dim3 cluster, size_t smem,
                                 cudaStream_t stream, Args&&... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[2];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = cluster.x;
  attr[0].val.clusterDim.y = cluster.y;
  attr[0].val.clusterDim.z = cluster.z;
  attr[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[1].val.programmaticStreamSerializationAllowed = 1;
  const bool default_stream = stream == nullptr || stream == cudaStreamLegacy || stream == cudaStreamPerThread;
  cfg.attrs = attr;
  static bool pdl_refused = false;
  cfg.numAttrs = programmatic_dependent_launch() && !default_stream && !pdl_refused ? 2 : 1;
  cudaError_t err = cudaLaunchKernelEx(&cfg, kernel, args...);
  if (err != cudaSuccess && cfg.numAttrs == 2) {
    (void)cudaGetLastError();
    pdl_refused = true;
    cfg.numAttrs = 1;
    err = cudaLaunchKernelEx(&cfg, kernel, args...);
  }
  if (err != cudaSuccess) (void)cudaGetLastError();
  return err;
}

/// Sets what a clustered decode kernel needs before its first launch: its dynamic shared memory
/// limit and permission for non-portable cluster sizes (16 on H100/H200). Call once per kernel.
template <typename... KArgs>
void prepare_cluster_kernel(void (*kernel)(KArgs...), size_t smem) {
  QUENCH_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1) != cudaSuccess)
    (void)cudaGetLastError();
}

/// Largest cluster size the fused decode launchers may use: min(kMaxDecodeCluster,
/// set_decode_attention_max_cluster's cap when set).
int decode_cluster_cap();
/// Records the split count (= cluster size) of the last fused decode launch (bench labels).
void note_decode_splits(int splits);
/// Records a cluster size the device refused and why (decode_attention_cluster_refusals).
void note_decode_cluster_refused(int splits, cudaError_t err);

/// Launches a fused decode kernel whose split count depends on the cluster size: splits_for(cap)
/// is the split count for clusters of at most `cap` CTAs, launch(splits) enqueues with that many
/// and returns the launch's error. A launch the device refuses (a cluster size it cannot place)
/// is retried with half the cap; the largest working cap is remembered in `cap_seen` (one per
/// kernel instance). Returns false, having launched nothing, once the device has refused every
/// cluster size above 1 while the shape wants splits: the caller then takes the split + combine
/// path, which needs no clusters. Throws CudaError when a single-CTA launch fails.
template <typename SplitsFor, typename Launch>
bool launch_with_cluster_fallback(int& cap_seen, SplitsFor&& splits_for, Launch&& launch) {
  const int user_cap = decode_cluster_cap();
  if (cap_seen < 2 && splits_for(user_cap) > 1) return false;
  int cap = std::min(cap_seen, user_cap);
  for (;;) {
    const int splits = splits_for(cap);
    const cudaError_t err = launch(splits);
    if (err == cudaSuccess) {
      note_decode_splits(splits);
      return true;
    }
    if (splits <= 1) QUENCH_CUDA_CHECK(err);
    note_decode_cluster_refused(splits, err);
    cap = splits / 2;
    cap_seen = std::min(cap_seen, cap);
    if (cap_seen < 2) return false;
  }
}

/// Splits (= cluster size, a power of two <= max_cluster) for `units` independent (token, KV
/// head) units: the most that keep units * splits <= target_ctas (one wave) and at least
/// `min_keys` keys per split of a `span`-key range.
inline int decode_cluster_splits(int units, int span, int min_keys, int target_ctas, int max_cluster) {
  int s = 1;
  while (s < max_cluster && static_cast<long>(units) * 2 * s <= target_ctas && 2L * s * min_keys <= span) s *= 2;
  return s;
}

}  // namespace quench::cuda::detail
