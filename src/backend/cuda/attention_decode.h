// quench/backend/cuda/attention_decode.h: the single-launch decode attention paths behind
// paged_attention (kernels.h) for decode-shaped steps (T <= kFusedDecodeMaxTokens query tokens,
// each the next token of its own sequence or of a chunk): the key range of every (token, KV head)
// is split over a thread-block cluster of CTAs that merge their partial softmax states through
// distributed shared memory before writing `out` (attention_decode_cluster.cuh). No combine
// launch and no scratch memory. Internal to the CUDA backend.
#pragma once

#include "backend/cuda/kernels.h"

namespace quench::cuda::detail {

struct QkvFold;  // attention_qkv_fold.cuh

/// Most query tokens a fused decode launch takes (the same bound as the tensor-core path's
/// decode plans).
constexpr int kFusedDecodeMaxTokens = 64;

/// GQA layers with G = Hq / Hkv in {1, 2, 4} and head_dim 128 or 256 (the 12B's sliding layers:
/// G = 2, D = 256) on CUDA cores (attention_decode.cu). Arguments as paged_attention; with
/// `fold` != nullptr the kernel takes the projections instead of `q` and also does
/// qkv_norm_rope_store's work (qkv_paged_attention_decode, kernels.h). Returns false (nothing
/// enqueued) for other shapes, and when the device refuses thread-block clusters for a shape that
/// wants its keys split (the caller then takes the split + combine path). Throws CudaError for a
/// failed launch.
bool launch_decode_gqa_fused(const bf16* q, const QkvFold* fold, int T, int Hq, int D, int window, TokenMeta meta, BlockTables tables,
                             const KvLayerView& cache, int max_context, bf16* out, cudaStream_t stream);

/// MQA-style layers with exactly 16 query heads per KV head and head_dim 256 or 512 (the 12B's
/// global layers: 16 x 512 on one KV head) on the tensor cores, the 16 heads as the mma's M
/// (attention_decode_mqa.cu). Arguments and `fold` as launch_decode_gqa_fused; false for other
/// shapes.
bool launch_decode_mqa_fused(const bf16* q, const QkvFold* fold, int T, int Hq, int D, int window, TokenMeta meta, BlockTables tables,
                             const KvLayerView& cache, int max_context, bf16* out, cudaStream_t stream);

/// Multiprocessor count of the current device (cached; 132 when the query fails).
int decode_sm_count();

}  // namespace quench::cuda::detail
