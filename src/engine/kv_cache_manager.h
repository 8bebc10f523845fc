// quench/engine/kv_cache_manager.h: the scheduler's only interface to KV-cache blocks.
//
// Two KV-cache groups (backend/backend.h): the full-attention group keeps every block of a
// sequence; the sliding-window group keeps only blocks that a future query can still see and
// returns the others to its pool (their table entries become -1). Prefix caching shares full
// blocks between sequences by the hash of their tokens and everything before them (block_hash.h).
// "No room" is a return value, so the scheduler can preempt (vLLM v1's KVCacheManager).
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"     // KvCacheSpec
#include "engine/block_pool.h"   // BlockPool
#include "engine/sequence.h"     // Sequence, SeqBlocks

namespace quench {

/// A usable prefix-cache hit: the first num_tokens tokens of a sequence are already in the cache.
struct PrefixHit {
  int num_tokens = 0;             ///< a multiple of block_size; 0 = no hit
  std::vector<int32_t> full;      ///< full-group blocks 0 .. num_tokens/block_size - 1
  std::vector<int32_t> sliding;   ///< sliding-group blocks, -1 for those wholly outside the window
};

class KvCacheManager {
 public:
  /// Throws InvalidArgument when spec.block_size < 1, or a sliding pool is given without a window.
  KvCacheManager(const KvCacheSpec& spec, bool enable_prefix_caching);

  int block_size() const { return block_size_; }
  int sliding_window() const { return window_; }
  bool has_sliding_group() const { return has_sliding_; }
  const BlockPool& full_pool() const { return full_; }
  const BlockPool& sliding_pool() const { return sliding_; }

  /// Longest usable prefix hit for a sequence that holds no blocks: every full-group block of the
  /// prefix and the sliding-group blocks within the window of the hit's end must be cached. At
  /// least one token is left to compute (its logits are needed), so the hit covers at most
  /// (num_tokens - 1) / block_size blocks. Empty when prefix caching is off.
  PrefixHit find_prefix(const Sequence& seq) const;

  /// Makes room for the next `num_new_tokens` tokens at seq.num_computed_tokens. With a `hit`
  /// (only for a sequence holding no blocks) first adopts the hit's blocks and sets
  /// num_computed_tokens to hit->num_tokens. Returns false, changing nothing, when either pool
  /// lacks free blocks.
  bool allocate_slots(Sequence& seq, int num_new_tokens, const PrefixHit* hit = nullptr);

  /// After a step advanced seq.num_computed_tokens: offers newly full blocks to the prefix cache
  /// and releases sliding-group blocks that no future query can see.
  void on_computed(Sequence& seq);

  /// Returns all of the sequence's blocks, tail first (so its tail is evicted first).
  void free(Sequence& seq);

  /// Shares the parent's first blocks with a child holding none (n > 1): the largest k <=
  /// parent's fully computed blocks such that the sliding blocks the child needs at position
  /// k*block_size are still held by the parent. Sets child.num_computed_tokens = k*block_size.
  void fork(const Sequence& parent, Sequence& child);

  /// Fraction of full-group blocks in use (vllm:kv_cache_usage_perc).
  double usage() const;

 private:
  /// First logical block a query at `pos` (or later) can see on sliding layers.
  int first_visible_block(int pos) const;
  int blocks_for(int num_tokens) const { return (num_tokens + block_size_ - 1) / block_size_; }

  int block_size_;
  int window_;
  bool has_sliding_;
  bool prefix_caching_;
  BlockPool full_;
  BlockPool sliding_;
};

}  // namespace quench
