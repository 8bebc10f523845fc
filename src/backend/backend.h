// quench/backend/backend.h: the interface between the engine and a backend (CPU or CUDA).
//
// The engine (src/engine) owns scheduling and the KV-cache *block tables*; a backend owns the
// weights, the KV-cache *memory* (a pool of blocks per KV-cache group) and runs the forward pass
// for a batch of sequence slices in one call. Shapes follow vLLM's model-runner vocabulary.
//
// KV-cache groups (vLLM's hybrid allocator): Gemma 4 has full-attention and sliding-window
// layers. Each group has its own pool of blocks and each sequence its own block table per group,
// so sliding-window layers can release blocks that left the window while full layers keep theirs.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace quench {

struct ModelConfig;  // src/io/model_config.h

/// KV-cache element type. FP8 E4M3 stores k/v divided by a per-layer scale (k_scale, v_scale).
enum class KvCacheDtype { kBF16, kFP8E4M3, kFP32 };

/// Geometry of the paged KV cache a backend allocated.
struct KvCacheSpec {
  int block_size = 16;          ///< tokens per block (same for both groups)
  int num_blocks_full = 0;      ///< blocks in the pool of the full-attention group
  int num_blocks_sliding = 0;   ///< blocks in the pool of the sliding-window group (0 if no such layers)
  int sliding_window = 0;       ///< keys visible to a query on sliding layers, itself included (0 = none)
  KvCacheDtype dtype = KvCacheDtype::kBF16;
};

/// How much KV cache a backend should allocate.
struct KvCacheConfig {
  int block_size = 16;
  int num_blocks_full = 256;
  int num_blocks_sliding = 256;
  KvCacheDtype dtype = KvCacheDtype::kBF16;
};

/// One sequence's slice of a batched forward step.
///
/// Processes `tokens` at positions start_pos .. start_pos+len-1. Keys/values of positions
/// < start_pos are already in the cache blocks named by the block tables; the backend writes the
/// new ones into the same tables (logical block b = position / block_size -> physical id
/// table[b]). Sliding-window tables may hold -1 for blocks wholly outside the window.
struct SeqStep {
  std::span<const int32_t> tokens;
  int32_t start_pos = 0;
  std::span<const int32_t> block_table_full;
  std::span<const int32_t> block_table_sliding;
  bool want_logits = true;  ///< write logits of the last token of this slice
};

/// A backend that runs Gemma 4 forward steps over a paged KV cache.
class ModelRunner {
 public:
  virtual ~ModelRunner() = default;
  virtual const ModelConfig& config() const = 0;
  virtual KvCacheSpec kv_cache_spec() const = 0;
  /// Human-readable name, e.g. "cpu" or "cuda:0 (NVIDIA H200)".
  virtual std::string name() const = 0;

  /// Runs one step for a batch.
  /// logits: fp32 [n_want, vocab_size] where n_want = number of steps with want_logits, in batch
  /// order; values are the final soft-capped logits (before any sampling processor).
  /// Throws InvalidArgument on block ids out of range or positions beyond max_position_embeddings.
  virtual void execute(std::span<const SeqStep> batch, std::span<float> logits) = 0;
};

}  // namespace quench
