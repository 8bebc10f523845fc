// quench/backend/cuda/attention_flash.h: the tensor-core (mma.sync m16n8k16 bf16) paged
// attention path behind paged_attention (kernels.h): its work plan and launcher. Internal to the
// CUDA backend; callers use paged_attention / attention_scratch_bytes.
#pragma once

#include <cstddef>

#include "backend/cuda/kernels.h"

namespace quench::cuda::detail {

/// How a paged_attention call is cut into thread blocks.
///  - A tile is up to `tile_tokens` consecutive query tokens x `Gt` query heads that share one KV
///    head (rows = token-major, head-minor); 16 * mw rows per block. Decode-sized steps (mw = 1):
///    one token per tile, grid (Hkv * head_groups, T, splits). Prefill (mw = 4): tiles never
///    cross sequences (a device-built tile list; num_tiles is then the estimate T / tile_tokens)
///    and a persistent grid takes (tile, head group, split) items from an atomic counter.
///  - `splits` > 1 cuts each tile's key range into that many parts (flash-decoding); the parts
///    are merged by combine_splits (attention_kernels.cu).
struct FlashPlan {
  int mw = 4;
  int Gt = 1, head_groups = 1, tile_tokens = 1, num_tiles = 1;
  int splits = 1;
};

/// True when the tensor-core path has kernels for this head_dim (32, 64, 128, 256, 512; any
/// number of query heads per KV head).
bool flash_supported(int D);

/// The plan for T query tokens; `max_context` bounds every key position + 1 (it may be a bucketed
/// over-estimate: the kernels read each sequence's real range from the token positions).
FlashPlan plan_flash(int T, int Hq, int Hkv, int D, int window, int max_context);

/// Bytes at the start of the scratch that the prefill tile list needs (0 for decode-sized T).
size_t flash_tile_ws_bytes(int T);

/// Upper bound of the tile list plus the split scratch (fp32 partial outputs + (max, sum) pairs) any plan_flash for
/// these sizes can need, whatever Hkv and window are; 0 when no plan splits.
size_t flash_scratch_bytes(int T, int Hq, int D, int max_context);

/// Split partials: acc fp32 [T, Hq, splits, D] (unnormalised, V scale applied), ml fp32
/// [T, Hq, splits, 2] = (running max in natural-log units, running sum).
struct SplitParts {
  float* acc = nullptr;
  float* ml = nullptr;
};

/// Enqueues the tensor-core kernel for `plan` (see paged_attention for the arguments). With
/// plan.splits > 1 it writes `parts` instead of `out`. `tile_ws` (flash_tile_ws_bytes(T) bytes)
/// holds the prefill tile list; unused for decode-sized plans.
void launch_flash(const FlashPlan& plan, const bf16* q, int T, int Hq, int D, int window, TokenMeta meta,
                  BlockTables tables, const KvLayerView& cache, SplitParts parts, void* tile_ws, bf16* out,
                  cudaStream_t stream);

/// Decode-shaped plans (one token per tile) of layers with G = Hq / Hkv in {1, 2, 4} and head_dim
/// 128 or 256 on CUDA cores (attention_decode.cu: K/V rows streamed into registers; a 16-row mma
/// tile would be mostly padding). Same outputs as launch_flash; false (nothing enqueued) for
/// other shapes.
bool launch_decode_gqa(const FlashPlan& plan, const bf16* q, int T, int Hq, int D, int window, TokenMeta meta,
                       BlockTables tables, const KvLayerView& cache, SplitParts parts, bf16* out, cudaStream_t stream);

/// out[t, h, :] = sum_s e^(m_s - M) acc_s / sum_s e^(m_s - M) l_s over the splits whose l_s > 0
/// (M = their largest m). parts as in SplitParts; out bf16 [T, Hq, D].
void combine_splits(int T, int Hq, int D, int splits, SplitParts parts, bf16* out, cudaStream_t stream);

}  // namespace quench::cuda::detail
