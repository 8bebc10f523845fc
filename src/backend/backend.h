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

#include "core/error.h"

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

/// One sparse edit of a logits row before sampling (see DeviceSamplingRow::adjustments).
/// Applied to logit l of `token_id`, in this order (the CPU Sampler's steps 1-3, engine/sampler.h):
///   kMasked -> -inf (suppressed ids, stop ids under min_tokens); l += clamp(bias, -100, 100);
///   kSeen and repetition_penalty r != 1 -> l > 0 ? l / r : l * r;
///   output_count > 0 -> l -= frequency_penalty * output_count + presence_penalty.
struct LogitAdjustment {
  static constexpr uint32_t kSeen = 1;    ///< id occurs in the prompt or the output (repetition penalty)
  static constexpr uint32_t kMasked = 2;  ///< id is forced to -inf
  int32_t token_id = 0;      ///< in [0, vocab_size)
  int32_t output_count = 0;  ///< occurrences among the generated tokens (frequency/presence penalties)
  float bias = 0.0f;         ///< OpenAI logit_bias (0 = none)
  uint32_t flags = 0;        ///< kSeen | kMasked
};

/// Sampling parameters of one draw on the device (ModelRunner::execute_sample).
///
/// Pipeline (same order and formulas as the CPU Sampler, engine/sampler.h): adjustments;
/// greedy when temperature < 1e-5 (argmax, lowest id on ties); else l / max(T, 0.01), min_p,
/// top_k (ties with the k-th kept), top_p over the renormalised survivors (smallest most-likely
/// prefix reaching the mass, ties broken by ascending id), then an inverse-CDF draw over the kept
/// ids in ascending id order with u = sampling_uniform(seed, index, step). The draw depends only on
/// the row's logits and these fields, never on the batch it is in.
struct DeviceSamplingRow {
  int32_t logits_row = 0;  ///< which wanted-logits row of the step to sample from (forks share one)
  float temperature = 1.0f;
  int32_t top_k = 0;       ///< <= 0: off
  float top_p = 1.0f;      ///< 1: off
  float min_p = 0.0f;      ///< 0: off
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  /// Distinct token ids. Rows sharing a logits_row must carry equal adjustments and penalties
  /// (they are applied once, in place, to the shared row).
  std::span<const LogitAdjustment> adjustments;
  uint64_t seed = 0;   ///< the request's seed
  uint64_t index = 0;  ///< sequence index within the request (n > 1)
  uint64_t step = 0;   ///< tokens generated so far by this sequence
};

/// SplitMix64 finaliser (Steele, Lea, Flood 2014).
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/// Counter-based random bits of a draw: 53 bits, u = bits * 2^-53 in [0, 1). SplitMix64 chained
/// over (seed, index, step): the same on the CPU sampler and on any device sampler, so a draw
/// depends only on the request's seed, the sequence index and the output position.
inline uint64_t sampling_random_bits(uint64_t seed, uint64_t index, uint64_t step) {
  uint64_t h = splitmix64(seed);
  h = splitmix64(h ^ (index * 0xd1b54a32d192ed03ull));
  h = splitmix64(h ^ (step * 0x8cb92ba72f3d8dd7ull));
  return h >> 11;
}

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

  /// True when execute_sample() is implemented (sampling on the device, only ids cross).
  virtual bool supports_device_sampling() const { return false; }

  /// Runs one step like execute() and samples on the device: out_tokens[i] is drawn from wanted
  /// logits row rows[i].logits_row (see DeviceSamplingRow), or is -1 when every id of that row is
  /// -inf after the adjustments; out_logprobs[i] (when the span is not empty) is that token's
  /// logprob in the distribution it was drawn from (engine/sampler.h), -9999 for -inf.
  /// Sizes: out_tokens.size() == rows.size(), out_logprobs empty or the same.
  /// Throws InvalidArgument on bad sizes or a logits_row out of range (and what execute() throws);
  /// UnsupportedError when supports_device_sampling() is false.
  virtual void execute_sample(std::span<const SeqStep> batch, std::span<const DeviceSamplingRow> rows,
                              std::span<int32_t> out_tokens, std::span<float> out_logprobs) {
    (void)batch, (void)rows, (void)out_tokens, (void)out_logprobs;
    throw UnsupportedError("backend " + name() + " does not sample on the device (use execute())");
  }
};

}  // namespace quench
