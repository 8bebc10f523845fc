// quench/backend/cuda/sampling_kernels.cu: logit adjustments and one-block-per-row sampling
// (see gpu_sampler.h for the method; formulas are the CPU Sampler's, engine/sampler.cpp).
#include <cfloat>
#include <climits>
#include <cstdint>

#include "backend/cuda/gpu_sampler.h"

namespace quench::cuda {
namespace {

using u64 = unsigned long long;

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr int kBins = 2048;            // histogram bins (level 0: width 1/64 of a logit)
constexpr float kBinsPerLogit = 64.0f;
constexpr int kCap = 8192;             // ids sorted in shared memory at most (power of two)
constexpr double kFixedOne = 1099511627776.0;  // 2^40: weights exp(v - max) in fixed point

struct Shared {
  unsigned int cnt[kBins];
  u64 mass[kBins];
  u64 keys[kCap];
  u64 red[kWarps];
  float red_m[kWarps];
  float red_s[kWarps];
  int red_i[kWarps];
  // broadcast slots
  int n_keys;
  int found;
  u64 before;
  u64 b0, b1;
  float m;
  float z;
  int arg;
};

/// Monotone map float -> uint32 (larger float, larger key).
__device__ __forceinline__ uint32_t ord_key(float v) {
  const uint32_t b = __float_as_uint(v);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
__device__ __forceinline__ float key_value(u64 key) {
  const uint32_t k = static_cast<uint32_t>(key >> 32);
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}
/// 64-bit sort key: value first, then the LOWER id ranks higher (the CPU's tie order).
__device__ __forceinline__ u64 comp_key(float v, int id) {
  return (static_cast<u64>(ord_key(v)) << 32) | static_cast<u64>(0xffffffffu - static_cast<uint32_t>(id));
}

/// exp(v - m) in 2^-40 fixed point (m is the row max, so the weight is <= 2^40).
/// Below d = -28.5 the weight rounds to 0 (e^-28.5 * 2^40 < 0.5), so expf is skipped there; the
/// product by 2^40 is exact in fp32, so this equals rounding the double product.
__device__ __forceinline__ u64 fixed_weight(float v, float m) {
  const float d = v - m;
  if (!(d >= -28.5f)) return 0;
  return __float2ull_rn(expf(d) * 1099511627776.0f);
}

/// Level-0 histogram bin of a value: floor((m - v) * 64), the last bin collecting the rest.
__device__ __forceinline__ int level0_bin(float v, float m) {
  const float d = (m - v) * kBinsPerLogit;
  return d >= static_cast<float>(kBins - 1) ? kBins - 1 : static_cast<int>(d);
}

/// What a pass keeps of a row.
struct RowView {
  const float* row;
  int V;
  bool scale;      // divide by t (sampled rows)
  float t;
  float m;         // max of the (scaled) row
  bool has_min_p;
  double log_min_p;
  u64 k_lo;        // keep keys >= k_lo

  /// The (scaled) value; false when the id is not a candidate (non-finite, min_p, below k_lo).
  __device__ __forceinline__ bool kept(int i, float raw, float& v, u64& key) const {
    v = scale ? raw / t : raw;
    if (!isfinite(v)) return false;
    // CPU: dropped when (double)l - max < log(min_p)
    if (has_min_p && static_cast<double>(v) - static_cast<double>(m) < log_min_p) return false;
    key = comp_key(v, i);
    return key >= k_lo;
  }
};

/// Ids [lo, hi) of warp `warp`'s contiguous segment of a row of V (a multiple of 4 ids and of
/// 32 float4 per warp, so the vector loads stay aligned and coalesced).
__device__ __forceinline__ void warp_segment(int V, int warp, int& lo, int& hi) {
  const int seg = 4 * (((((V + 3) / 4) + kWarps - 1) / kWarps + 31) & ~31);
  lo = min(V, warp * seg);
  hi = min(V, lo + seg);
}

/// Calls f(i, raw) for every id of the row: warp w walks its segment, lanes take consecutive
/// float4 (coalesced 512 B per warp load), 4 loads in flight per lane. Scalar loads when V % 4 != 0.
template <class F>
__device__ __forceinline__ void for_row(const float* row, int V, F&& f) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  int lo, hi;
  warp_segment(V, warp, lo, hi);
  if ((V & 3) == 0) {
    const float4* r4 = reinterpret_cast<const float4*>(row);
    const int lo4 = lo / 4, hi4 = hi / 4;
    for (int base = lo4 + lane; base < hi4; base += 128) {
      float4 x[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const int i = base + 32 * u;
        x[u] = i < hi4 ? __ldg(r4 + i) : make_float4(0.f, 0.f, 0.f, 0.f);
      }
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const int i = base + 32 * u;
        if (i < hi4) {
          f(4 * i, x[u].x);
          f(4 * i + 1, x[u].y);
          f(4 * i + 2, x[u].z);
          f(4 * i + 3, x[u].w);
        }
      }
    }
    return;
  }
  for (int base = lo + lane; base < hi; base += 128) {
    float x[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int i = base + 32 * u;
      x[u] = i < hi ? __ldg(row + i) : 0.0f;
    }
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int i = base + 32 * u;
      if (i < hi) f(i, x[u]);
    }
  }
}

__device__ __forceinline__ u64 warp_sum(u64 v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ u64 warp_inclusive_scan(u64 v) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const u64 n = __shfl_up_sync(0xffffffffu, v, o);
    if (lane >= o) v += n;
  }
  return v;
}

/// Block-wide sum of one value per thread (every thread gets it).
__device__ u64 block_sum(u64 v, Shared& sh) {
  v = warp_sum(v);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  __syncthreads();
  if (lane == 0) sh.red[warp] = v;
  __syncthreads();
  u64 t = lane < kWarps ? sh.red[lane] : 0;
  return warp_sum(t);
}

/// Block-wide exclusive scan of one value per thread; returns the thread's prefix, `total` the sum.
__device__ u64 block_exclusive_scan(u64 v, u64& total, Shared& sh) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const u64 incl = warp_inclusive_scan(v);
  __syncthreads();
  if (lane == 31) sh.red[warp] = incl;
  __syncthreads();
  u64 w = lane < kWarps ? sh.red[lane] : 0;
  const u64 wincl = warp_inclusive_scan(w);
  const u64 wbefore = __shfl_sync(0xffffffffu, wincl - w, warp);
  total = __shfl_sync(0xffffffffu, wincl, kWarps - 1);
  return wbefore + incl - v;
}

/// First index j in [0, n) whose inclusive prefix of metric(0..j) reaches `target` (>= 1).
/// Every thread gets it (n when the total is below target) and sh.before = prefix before j.
template <class M>
__device__ int block_find_crossing(int n, u64 target, M&& metric, Shared& sh) {
  const int per = (n + kThreads - 1) / kThreads;
  const int a = min(n, static_cast<int>(threadIdx.x) * per), b = min(n, a + per);
  u64 local = 0;
  for (int j = a; j < b; ++j) local += metric(j);
  u64 total;
  const u64 base = block_exclusive_scan(local, total, sh);
  if (threadIdx.x == 0) sh.found = n;
  __syncthreads();
  if (base < target && target <= base + local) {
    u64 cum = base;
    for (int j = a; j < b; ++j) {
      const u64 w = metric(j);
      if (cum + w >= target) {
        sh.found = j;
        sh.before = cum;
        break;
      }
      cum += w;
    }
  }
  __syncthreads();
  return sh.found;
}

/// Sorts sh.keys[0, n) descending (bitonic over the next power of two, padded with 0 keys, which
/// rank below every finite value's key).
__device__ void sort_keys_desc(int n, Shared& sh) {
  int np = 1;
  while (np < n) np <<= 1;
  for (int i = n + threadIdx.x; i < np; i += kThreads) sh.keys[i] = 0;
  __syncthreads();
  for (int k = 2; k <= np; k <<= 1) {
    for (int j = k >> 1; j > 0; j >>= 1) {
      for (int i = threadIdx.x; i < np; i += kThreads) {
        const int ixj = i ^ j;
        if (ixj > i) {
          const u64 x = sh.keys[i], y = sh.keys[ixj];
          const bool desc = (i & k) == 0;
          if (desc ? (x < y) : (x > y)) {
            sh.keys[i] = y;
            sh.keys[ixj] = x;
          }
        }
      }
      __syncthreads();
    }
  }
}

enum class Metric { kCount, kMass };

/// Level-0 histogram of the candidates of `rv` (counts and fixed-point masses).
__device__ __noinline__ void level0_histogram(const RowView& rv, Shared& sh) {
  for (int b = threadIdx.x; b < kBins; b += kThreads) {
    sh.cnt[b] = 0;
    sh.mass[b] = 0;
  }
  __syncthreads();
  // Most ids of a peaked row fall in the last bin: counted in registers, not by shared atomics
  // that would all hit one address (their weights are 0 in fixed point: d > 32).
  u64 far = 0;
  for_row(rv.row, rv.V, [&](int i, float raw) {
    float v;
    u64 key;
    if (!rv.kept(i, raw, v, key)) return;
    const int b = level0_bin(v, rv.m);
    if (b == kBins - 1) {
      ++far;
      return;
    }
    atomicAdd(&sh.cnt[b], 1u);
    const u64 w = fixed_weight(v, rv.m);
    if (w) atomicAdd(&sh.mass[b], w);
  });
  far = block_sum(far, sh);
  if (threadIdx.x == 0) sh.cnt[kBins - 1] = static_cast<unsigned int>(far);
  __syncthreads();
}

/// Key of the candidate at which the running count / mass (ids by descending key) first reaches
/// `target`, searching level-0 bin `bin` (which holds at most `bound` candidates; `target` counts
/// from the top of that bin). Clobbers sh.cnt / sh.mass when the bin must be refined.
__device__ __noinline__ u64 select_in_bin(const RowView& rv, int bin, unsigned int bound, u64 target, Metric metric, Shared& sh) {
  bool by_bin = true;
  u64 lo = 0, hi = ~0ull;
  auto in_range = [&](float v, u64 key) { return by_bin ? level0_bin(v, rv.m) == bin : (key >= lo && key <= hi); };
  for (;;) {
    if (bound <= static_cast<unsigned int>(kCap)) {
      if (threadIdx.x == 0) sh.n_keys = 0;
      __syncthreads();
      for_row(rv.row, rv.V, [&](int i, float raw) {
        float v;
        u64 key;
        if (!rv.kept(i, raw, v, key) || !in_range(v, key)) return;
        sh.keys[atomicAdd(&sh.n_keys, 1)] = key;
      });
      __syncthreads();
      const int n = sh.n_keys;
      sort_keys_desc(n, sh);
      if (n == 0) return ~0ull;  // unreachable for consistent targets: keep nothing extra
      if (metric == Metric::kCount) return sh.keys[min(n, static_cast<int>(target)) - 1];
      const int j = block_find_crossing(
          n, target, [&](int j) { return fixed_weight(key_value(sh.keys[j]), rv.m); }, sh);
      return sh.keys[min(j, n - 1)];
    }
    if (by_bin) {
      // Key range of the bin, then linear sub-bins over it.
      u64 mn = ~0ull, mx = 0;
      for_row(rv.row, rv.V, [&](int i, float raw) {
        float v;
        u64 key;
        if (!rv.kept(i, raw, v, key) || level0_bin(v, rv.m) != bin) return;
        mn = min(mn, key);
        mx = max(mx, key);
      });
      if (threadIdx.x == 0) {
        sh.b0 = ~0ull;
        sh.b1 = 0;
      }
      __syncthreads();
      atomicMin(&sh.b0, mn);
      atomicMax(&sh.b1, mx);
      __syncthreads();
      lo = sh.b0;
      hi = sh.b1;
      by_bin = false;
    }
    const u64 width = (hi - lo) / kBins + 1;
    for (int b = threadIdx.x; b < kBins; b += kThreads) {
      sh.cnt[b] = 0;
      sh.mass[b] = 0;
    }
    __syncthreads();
    for_row(rv.row, rv.V, [&](int i, float raw) {
      float v;
      u64 key;
      if (!rv.kept(i, raw, v, key) || key < lo || key > hi) return;
      const int b = static_cast<int>((hi - key) / width);
      atomicAdd(&sh.cnt[b], 1u);
      if (metric == Metric::kMass) {
        const u64 w = fixed_weight(v, rv.m);
        if (w) atomicAdd(&sh.mass[b], w);
      }
    });
    __syncthreads();
    const int s = metric == Metric::kCount
                      ? block_find_crossing(kBins, target, [&](int b) { return static_cast<u64>(sh.cnt[b]); }, sh)
                      : block_find_crossing(kBins, target, [&](int b) { return sh.mass[b]; }, sh);
    if (s >= kBins) return lo;  // unreachable for consistent targets
    target -= sh.before;
    bound = sh.cnt[s];
    const u64 new_hi = hi - static_cast<u64>(s) * width;
    const u64 span_below = static_cast<u64>(s + 1) * width;  // keys hi - span_below + 1 .. new_hi
    lo = span_below > hi - lo ? lo : hi - span_below + 1;
    hi = new_hi;
    __syncthreads();
  }
}

/// top_p target: ceil(top_p * total) in [1, total] (CPU: the prefix whose mass reaches top_p * total).
__device__ __forceinline__ u64 top_p_target(float top_p, u64 total) {
  u64 target = static_cast<u64>(ceil(static_cast<double>(top_p) * static_cast<double>(total)));
  if (target < 1) target = 1;
  if (target > total) target = total;
  return target;
}

/// The common case of top_k / top_p: every id that can survive lies in the level-0 bins
/// 0..region (region = the bin of the k-th id, or of the top_p crossing without top_k) and they
/// number at most kCap. They are gathered and sorted once, both cuts are made on the sorted list,
/// and the draw walks the kept ids (re-sorted by id) in shared memory: three passes over the row
/// in all (max, histogram, gather). Returns false (nothing written) when the region is too large;
/// the caller then takes the general path. Needs the level-0 histogram of `rv` in sh.cnt / sh.mass.
__device__ __noinline__ bool draw_from_top_region(const RowView& rv, const SamplingRowParams& p, u64 n_cand,
                                     SamplingRowResult* out, uint8_t* kept_mask, Shared& sh) {
  const bool k_cut = p.top_k > 0 && static_cast<u64>(p.top_k) < n_cand;
  const bool do_p = p.top_p < 1.0f;
  if (!k_cut && !do_p) return false;
  u64 hist_total = 0;
  for (int b = threadIdx.x; b < kBins; b += kThreads) hist_total += sh.mass[b];
  hist_total = block_sum(hist_total, sh);
  const int region =
      k_cut ? block_find_crossing(kBins, static_cast<u64>(p.top_k), [&](int b) { return static_cast<u64>(sh.cnt[b]); }, sh)
            : block_find_crossing(kBins, top_p_target(p.top_p, hist_total), [&](int b) { return sh.mass[b]; }, sh);
  if (region >= kBins) return false;
  u64 count = 0;
  for (int b = threadIdx.x; b <= region; b += kThreads) count += sh.cnt[b];
  count = block_sum(count, sh);
  if (count > static_cast<u64>(kCap)) return false;

  // Gather the region, most likely first.
  if (threadIdx.x == 0) sh.n_keys = 0;
  __syncthreads();
  for_row(rv.row, rv.V, [&](int i, float raw) {
    float v;
    u64 key;
    if (!rv.kept(i, raw, v, key) || level0_bin(v, rv.m) > region) return;
    sh.keys[atomicAdd(&sh.n_keys, 1)] = key;
  });
  __syncthreads();
  const int n = sh.n_keys;
  sort_keys_desc(n, sh);
  auto weight_of = [&](int j) { return fixed_weight(key_value(sh.keys[j]), rv.m); };
  int nk = n;  // kept: keys[0, nk)
  if (k_cut) {
    // every id tied with the k-th value stays (CPU: values >= kth)
    const u64 k_lo = (sh.keys[min(n, p.top_k) - 1] >> 32) << 32;
    if (threadIdx.x == 0) sh.found = n;
    __syncthreads();
    for (int j = threadIdx.x; j < n; j += kThreads)
      if (sh.keys[j] >= k_lo && (j + 1 == n || sh.keys[j + 1] < k_lo)) sh.found = j + 1;
    __syncthreads();
    nk = sh.found;
    __syncthreads();
  }
  if (do_p) {
    // Mass of the survivors: all of them are in the region when the k cut applies.
    u64 total = hist_total;
    if (k_cut) {
      total = 0;
      for (int j = threadIdx.x; j < nk; j += kThreads) total += weight_of(j);
      total = block_sum(total, sh);
    }
    const int j = block_find_crossing(nk, top_p_target(p.top_p, total), weight_of, sh);
    nk = min(nk, j + 1);
  }
  // Re-key the kept ids by ascending id (value bits kept in the low word) for the draw.
  __syncthreads();
  for (int j = threadIdx.x; j < nk; j += kThreads) {
    const u64 key = sh.keys[j];
    const uint32_t id = 0xffffffffu - static_cast<uint32_t>(key);
    sh.keys[j] = (static_cast<u64>(0xffffffffu - id) << 32) | (key >> 32);
  }
  __syncthreads();
  sort_keys_desc(nk, sh);
  auto id_at = [&](int j) { return static_cast<int>(0xffffffffu - static_cast<uint32_t>(sh.keys[j] >> 32)); };
  auto value_at = [&](int j) { return key_value(sh.keys[j] << 32); };
  auto w_at = [&](int j) { return fixed_weight(value_at(j), rv.m); };
  u64 total = 0;
  for (int j = threadIdx.x; j < nk; j += kThreads) total += w_at(j);
  total = block_sum(total, sh);
  // first kept id whose running weight exceeds floor(u * total)
  const u64 bits = p.random_bits;
  const u64 target = (__umul64hi(bits, total) << 11) | ((bits * total) >> 53);
  const int j = min(nk - 1, block_find_crossing(nk, target + 1, w_at, sh));
  if (threadIdx.x == 0) {
    const double lp = static_cast<double>(value_at(j)) - static_cast<double>(rv.m) -
                      log(static_cast<double>(total) / kFixedOne);
    out[blockIdx.x] = SamplingRowResult{id_at(j), static_cast<float>(lp)};
  }
  if (kept_mask) {
    uint8_t* mask = kept_mask + static_cast<size_t>(blockIdx.x) * rv.V;
    for (int i = threadIdx.x; i < rv.V; i += kThreads) mask[i] = 0;
    __syncthreads();
    for (int k = threadIdx.x; k < nk; k += kThreads) mask[id_at(k)] = 1;
  }
  return true;
}

__global__ void __launch_bounds__(256) apply_adjustments_kernel(float* __restrict__ logits, int V,
                                                                const SamplingRowParams* __restrict__ rows,
                                                                const LogitAdjustment* __restrict__ adj) {
  const SamplingRowParams p = rows[blockIdx.x];
  if (!p.apply_adjustments) return;
  float* row = logits + static_cast<size_t>(p.logits_row) * V;
  for (int j = threadIdx.x; j < p.adj_count; j += blockDim.x) {
    const LogitAdjustment a = adj[p.adj_offset + j];
    if (a.token_id < 0 || a.token_id >= V) continue;
    float v = row[a.token_id];
    if (a.flags & LogitAdjustment::kMasked) {
      v = -INFINITY;
    } else {
      // Explicit _rn intrinsics: no FMA contraction, the same roundings as the CPU sampler.
      if (a.bias != 0.0f) v = __fadd_rn(v, fminf(fmaxf(a.bias, -100.0f), 100.0f));
      const float r = p.repetition_penalty;
      if ((a.flags & LogitAdjustment::kSeen) && r != 1.0f) v = v > 0.0f ? __fdiv_rn(v, r) : __fmul_rn(v, r);
      if (a.output_count > 0 && (p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f))
        v = __fsub_rn(v, __fadd_rn(__fmul_rn(p.frequency_penalty, static_cast<float>(a.output_count)), p.presence_penalty));
    }
    row[a.token_id] = v;
  }
}

__global__ void __launch_bounds__(kThreads, 1) sample_rows_kernel(const float* __restrict__ logits, int V,
                                                                  const SamplingRowParams* __restrict__ rows,
                                                                  SamplingRowResult* __restrict__ out,
                                                                  uint8_t* __restrict__ kept_mask) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  Shared& sh = *reinterpret_cast<Shared*>(smem_raw);
  const SamplingRowParams p = rows[blockIdx.x];
  const float* row = logits + static_cast<size_t>(p.logits_row) * V;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const bool scale = !p.greedy && p.temperature != 1.0f;  // l / 1 == l
  const float t = p.temperature;
  const bool want_z = p.greedy && p.want_logprob;  // only greedy logprobs need sum exp(l - max)

  // ---- pass 1: max, argmax (lowest id on ties), sum exp(v - max) (online) ----
  float m = -INFINITY, s = 0.0f;
  int arg = INT_MAX;
  for_row(row, V, [&](int i, float raw) {
    const float v = scale ? raw / t : raw;
    if (!isfinite(v)) return;
    if (v > m) {
      if (want_z) s = s * expf(m - v) + 1.0f;
      m = v;
      arg = i;
    } else {
      if (want_z) s += expf(v - m);
      if (v == m && i < arg) arg = i;
    }
  });
  auto merge = [](float& m1, float& s1, int& a1, float m2, float s2, int a2) {
    if (m2 == -INFINITY) return;
    if (m1 == -INFINITY) {
      m1 = m2, s1 = s2, a1 = a2;
      return;
    }
    const float mm = fmaxf(m1, m2);
    s1 = s1 * expf(m1 - mm) + s2 * expf(m2 - mm);
    a1 = m1 == m2 ? min(a1, a2) : (m2 > m1 ? a2 : a1);
    m1 = mm;
  };
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float m2 = __shfl_xor_sync(0xffffffffu, m, o);
    const float s2 = __shfl_xor_sync(0xffffffffu, s, o);
    const int a2 = __shfl_xor_sync(0xffffffffu, arg, o);
    merge(m, s, arg, m2, s2, a2);
  }
  if (lane == 0) {
    sh.red_m[warp] = m;
    sh.red_s[warp] = s;
    sh.red_i[warp] = arg;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    float mm = -INFINITY, ss = 0.0f;
    int aa = INT_MAX;
    for (int w = 0; w < kWarps; ++w) merge(mm, ss, aa, sh.red_m[w], sh.red_s[w], sh.red_i[w]);
    sh.m = mm;
    sh.z = ss;
    sh.arg = aa;
  }
  __syncthreads();
  m = sh.m;
  if (m == -INFINITY) {  // every id is -inf (or NaN)
    if (threadIdx.x == 0) out[blockIdx.x] = SamplingRowResult{-1, 0.0f};
    return;
  }
  if (p.greedy) {
    // CPU: log_softmax of the adjusted row at temperature 1: l_max - lse = -log(sum exp(l - l_max)).
    if (threadIdx.x == 0) out[blockIdx.x] = SamplingRowResult{sh.arg, static_cast<float>(-log(static_cast<double>(sh.z)))};
    return;
  }

  // ---- filters: min_p as a predicate; top_k / top_p as a key threshold ----
  RowView rv{row, V, scale, t, m, p.min_p > 0.0f, p.min_p > 0.0f ? log(static_cast<double>(p.min_p)) : 0.0, 0};
  const bool do_k = p.top_k > 0, do_p = p.top_p < 1.0f;
  if (do_k || do_p) {
    level0_histogram(rv, sh);
    u64 n_cand = 0;
    for (int b = threadIdx.x; b < kBins; b += kThreads) n_cand += sh.cnt[b];
    n_cand = block_sum(n_cand, sh);
    if (draw_from_top_region(rv, p, n_cand, out, kept_mask, sh)) return;
    if (do_k && static_cast<u64>(p.top_k) < n_cand) {
      const int kb = block_find_crossing(kBins, static_cast<u64>(p.top_k), [&](int b) { return static_cast<u64>(sh.cnt[b]); }, sh);
      const u64 rank = static_cast<u64>(p.top_k) - sh.before;
      const u64 kth = select_in_bin(rv, kb, sh.cnt[kb], rank, Metric::kCount, sh);
      rv.k_lo = (kth >> 32) << 32;  // every id tied with the k-th value stays (CPU: values >= kth)
      if (do_p) {
        __syncthreads();
        level0_histogram(rv, sh);  // masses of the survivors only (select_in_bin may have clobbered it)
      }
    }
    if (do_p) {
      u64 total = 0;
      for (int b = threadIdx.x; b < kBins; b += kThreads) total += sh.mass[b];
      total = block_sum(total, sh);
      const u64 target = top_p_target(p.top_p, total);
      const int pb = block_find_crossing(kBins, target, [&](int b) { return sh.mass[b]; }, sh);
      if (pb < kBins) {
        const u64 rest = target - sh.before;
        rv.k_lo = select_in_bin(rv, pb, sh.cnt[pb], rest, Metric::kMass, sh);
      }
    }
  }

  // ---- draw: inverse CDF over kept ids in ascending id order ----
  u64 mine = 0;
  uint8_t* mask = kept_mask ? kept_mask + static_cast<size_t>(blockIdx.x) * V : nullptr;
  for_row(row, V, [&](int i, float raw) {
    float v;
    u64 key;
    const bool k = rv.kept(i, raw, v, key);
    if (k) mine += fixed_weight(v, m);
    if (mask) mask[i] = k ? 1 : 0;
  });
  mine = warp_sum(mine);
  __syncthreads();
  if (lane == 0) sh.red[warp] = mine;
  __syncthreads();
  if (warp == 0) {
    const u64 w = sh.red[lane];
    const u64 incl = warp_inclusive_scan(w);
    const u64 total = __shfl_sync(0xffffffffu, incl, 31);
    // target = floor(u * total), u = bits * 2^-53 (128-bit product)
    const u64 bits = p.random_bits;
    const u64 target = (__umul64hi(bits, total) << 11) | ((bits * total) >> 53);
    const unsigned int hit = __ballot_sync(0xffffffffu, incl > target && w > 0);
    if (lane == 0) {
      sh.b0 = total;
      sh.b1 = target;
      sh.found = total == 0 ? -1 : __ffs(hit) - 1;
    }
    const int fw = __shfl_sync(0xffffffffu, hit ? __ffs(hit) - 1 : 0, 0);
    const u64 before = __shfl_sync(0xffffffffu, incl - w, fw);
    if (lane == 0) sh.before = before;
  }
  __syncthreads();
  const u64 total = sh.b0;
  if (total == 0) {
    if (threadIdx.x == 0) out[blockIdx.x] = SamplingRowResult{-1, 0.0f};
    return;
  }
  if (warp != sh.found) return;
  u64 tgt = sh.b1 - sh.before;  // offset within this warp's segment
  int lo, hi;
  warp_segment(V, warp, lo, hi);
  auto weight_at = [&](int i) -> u64 {
    float v;
    u64 key;
    return rv.kept(i, __ldg(row + i), v, key) ? fixed_weight(v, m) : 0ull;
  };
  while (hi - lo > 32) {
    const int chunk = (hi - lo + 31) / 32;
    const int a = min(hi, lo + lane * chunk), b = min(hi, a + chunk);
    u64 w = 0;
#pragma unroll 8
    for (int i = a; i < b; ++i) w += weight_at(i);
    const u64 incl = warp_inclusive_scan(w);
    const unsigned int hit = __ballot_sync(0xffffffffu, incl > tgt && w > 0);
    const int L = hit ? __ffs(hit) - 1 : 31;
    tgt -= __shfl_sync(0xffffffffu, incl - w, L);
    lo = __shfl_sync(0xffffffffu, a, L);
    hi = __shfl_sync(0xffffffffu, b, L);
  }
  const int i = lo + lane;
  const u64 w = i < hi ? weight_at(i) : 0ull;
  const u64 incl = warp_inclusive_scan(w);
  const unsigned int hit = __ballot_sync(0xffffffffu, incl > tgt && w > 0);
  const int L = hit ? __ffs(hit) - 1 : 0;
  if (lane == L) {
    const float v = scale ? row[i] / t : row[i];
    // CPU: logprob = l - (l_max + log(sum of kept weights))
    const double lp = static_cast<double>(v) - static_cast<double>(m) - log(static_cast<double>(total) / kFixedOne);
    out[blockIdx.x] = SamplingRowResult{i, static_cast<float>(lp)};
  }
}

}  // namespace

void apply_logit_adjustments(float* logits, int V, const SamplingRowParams* rows, int n_rows,
                             const LogitAdjustment* adj, cudaStream_t stream) {
  if (n_rows <= 0) return;
  apply_adjustments_kernel<<<n_rows, 256, 0, stream>>>(logits, V, rows, adj);
  QUENCH_CUDA_LAUNCH_CHECK();
}

void sample_rows(const float* logits, int V, const SamplingRowParams* rows, int n_rows, SamplingRowResult* out,
                 uint8_t* kept_mask, cudaStream_t stream) {
  if (n_rows <= 0) return;
  static bool configured = false;
  if (!configured) {
    QUENCH_CUDA_CHECK(cudaFuncSetAttribute(sample_rows_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           static_cast<int>(sizeof(Shared))));
    configured = true;
  }
  sample_rows_kernel<<<n_rows, kThreads, sizeof(Shared), stream>>>(logits, V, rows, out, kept_mask);
  QUENCH_CUDA_LAUNCH_CHECK();
}

}  // namespace quench::cuda
