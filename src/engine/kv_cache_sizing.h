// quench/engine/kv_cache_sizing.h: how many blocks each KV-cache group gets.
//
// The full-attention group keeps every block of every sequence; the sliding-window group only
// keeps the blocks a future query can still see (KvCacheManager::on_computed returns the others),
// so it never needs more than a window's worth of blocks per running sequence plus the tokens of
// one step. Sizing it like the full group (as the engine loader did) spent most of the KV memory
// of Gemma 4 (40 of the 12B's 48 layers are sliding, 95% of the bytes per token) on blocks no
// query reads. Same accounting as vLLM's SlidingWindowSpec.max_memory_usage_bytes (window +
// max_num_batched_tokens per request, vllm/v1/kv_cache_interface.py).
#pragma once

#include <cstddef>

#include "backend/backend.h"

namespace quench {

struct ModelConfig;

/// Upper bound on the sliding-window blocks held at once by up to `max_num_seqs` sequences that
/// KvCacheManager serves, whatever the scheduling: a sequence computing c tokens from position
/// `start` holds its logical blocks floor((start - window + 1) / block_size) ..
/// floor((start + c - 1) / block_size), at most floor((window + c - 2) / block_size) + 2 blocks
/// (c = 0 for one that is not scheduled in the step); summed over the sequences with
/// sum(c) <= max_num_batched_tokens, rounded up per sequence:
///   max_num_seqs * (floor((window - 2) / block_size) + 3) + ceil(max_num_batched_tokens / block_size),
/// never more than max_num_seqs full-length sequences (ceil(max_model_len / block_size) each) and
/// never less than the engine's check for one sequence (ceil(min(max_model_len, window +
/// min(max_num_batched_tokens, max_model_len)) / block_size) + 1). Throws InvalidArgument (naming
/// the field) for block_size, window, max_num_seqs, max_num_batched_tokens or max_model_len < 1.
int sliding_window_blocks_needed(int block_size, int window, int max_num_seqs, int max_num_batched_tokens,
                                 int max_model_len);

/// Blocks of both KV groups and their device bytes.
struct KvCachePlan {
  int num_blocks_full = 0;
  int num_blocks_sliding = 0;   ///< 0 when the model has no sliding-window layers
  double bytes_per_block_full = 0;     ///< K and V of one block over the full-attention layers
  double bytes_per_block_sliding = 0;  ///< same over the sliding-window layers
  double bytes() const { return num_blocks_full * bytes_per_block_full + num_blocks_sliding * bytes_per_block_sliding; }
};

/// What the engine asks of KV sizing (vLLM's flag names).
struct KvSizingRequest {
  int block_size = 16;
  KvCacheDtype dtype = KvCacheDtype::kBF16;
  int max_model_len = 0;            ///< tokens of the longest sequence (>= 1)
  int max_num_seqs = 1;             ///< running sequences at once
  int max_num_batched_tokens = 2048;///< tokens per step (the scheduler's budget)
  int full_length_seqs = 1;         ///< aim: this many max_model_len sequences in the full group (capped by max_num_seqs)
  double budget_bytes = 0;          ///< device memory for both groups; <= 0: no cap
  int num_blocks_override = 0;      ///< --num-kv-blocks: full group size as given (> 0)
};

/// Sizes both groups: the full group gets min(max_num_seqs, full_length_seqs) full-length
/// sequences plus one block (or num_blocks_override), capped so that both groups fit budget_bytes,
/// but never fewer than one full-length sequence plus one block; the sliding group gets
/// min(full group, sliding_window_blocks_needed(...)) — it can never hold more blocks than the
/// full group (each sliding block table entry shadows a full-group block of the same sequence), so
/// memory the sliding group does not need goes to the full group. Throws InvalidArgument as
/// sliding_window_blocks_needed does, naming the field.
KvCachePlan plan_kv_cache(const ModelConfig& config, const KvSizingRequest& request);

}  // namespace quench
