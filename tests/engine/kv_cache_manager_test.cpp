// tests/engine/kv_cache_manager_test.cpp: block tables, prefix hits in both groups, sliding release,
// LRU eviction of cached blocks, fork. Exact block ids after each operation (vLLM
// tests/v1/core/test_prefix_caching.py style), block_size 4.
#include "engine/kv_cache_manager.h"

#include <numeric>

#include <gtest/gtest.h>

#include "core/error.h"

namespace quench {
namespace {

using Ids = std::vector<int32_t>;

KvCacheSpec spec(int full, int sliding, int window) {
  KvCacheSpec s;
  s.block_size = 4;
  s.num_blocks_full = full;
  s.num_blocks_sliding = sliding;
  s.sliding_window = window;
  return s;
}

std::vector<int32_t> iota_tokens(int n, int first = 100) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), first);
  return v;
}

/// Mimics one engine step: allocate, compute, bookkeeping.
void run_chunk(KvCacheManager& kv, Sequence& s, int n, const PrefixHit* hit = nullptr) {
  ASSERT_TRUE(kv.allocate_slots(s, n, hit));
  s.num_computed_tokens += n;
  kv.on_computed(s);
}

TEST(KvCacheManager, FullGroupOnlyAllocatesBlocksAsTokensArrive) {
  KvCacheManager kv(spec(5, 0, 0), true);
  Sequence s(0, 0, iota_tokens(6), 4);
  run_chunk(kv, s, 6);
  EXPECT_EQ(s.blocks.full, (Ids{0, 1}));
  EXPECT_TRUE(s.blocks.sliding.empty());
  EXPECT_EQ(kv.full_pool().num_free_blocks(), 3);
  EXPECT_TRUE(kv.full_pool().is_cached(0));   // tokens 0..3 computed: block 0 is full
  EXPECT_FALSE(kv.full_pool().is_cached(1));  // 2 of 4 tokens
  s.append_token(7);
  s.append_token(8);  // 8 tokens, 6 computed
  run_chunk(kv, s, 2);
  EXPECT_EQ(s.blocks.full, (Ids{0, 1}));
  EXPECT_TRUE(kv.full_pool().is_cached(1));
  s.append_token(9);
  run_chunk(kv, s, 1);
  EXPECT_EQ(s.blocks.full, (Ids{0, 1, 2}));
  kv.free(s);
  EXPECT_EQ(kv.full_pool().free_list(), (Ids{3, 4, 2, 1, 0}));  // tail first
}

TEST(KvCacheManager, NoRoomChangesNothing) {
  KvCacheManager kv(spec(3, 3, 8), true);
  Sequence a(0, 0, iota_tokens(8), 4), b(1, 0, iota_tokens(8, 500), 4);
  run_chunk(kv, a, 8);
  EXPECT_FALSE(kv.allocate_slots(b, 8));
  EXPECT_TRUE(b.blocks.full.empty());
  EXPECT_TRUE(b.blocks.sliding.empty());
  EXPECT_EQ(kv.full_pool().num_free_blocks(), 1);
  EXPECT_TRUE(kv.allocate_slots(b, 4));
  EXPECT_EQ(b.blocks.full, (Ids{2}));
}

TEST(KvCacheManager, SlidingGroupReleasesBlocksThatLeftTheWindow) {
  // window 6: a query at p sees p-5 .. p.
  KvCacheManager kv(spec(8, 8, 6), false);
  Sequence s(0, 0, iota_tokens(10), 4);
  run_chunk(kv, s, 10);
  EXPECT_EQ(s.blocks.full, (Ids{0, 1, 2}));
  // Next query at 10 sees 5..10: block 0 (positions 0-3) is released, block 1 (4-7) kept.
  EXPECT_EQ(s.blocks.sliding, (Ids{-1, 1, 2}));
  EXPECT_EQ(kv.sliding_pool().free_list(), (Ids{3, 4, 5, 6, 7, 0}));
  for (int i = 0; i < 4; ++i) {
    s.append_token(1);
    run_chunk(kv, s, 1);
  }
  // 14 computed: next query at 14 sees 9..14 -> blocks 2, 3 only.
  EXPECT_EQ(s.blocks.sliding, (Ids{-1, -1, 2, 3}));
  EXPECT_EQ(s.blocks.full, (Ids{0, 1, 2, 3}));
  EXPECT_EQ(kv.sliding_pool().num_used_blocks(), 2);
  kv.free(s);
  EXPECT_EQ(kv.sliding_pool().num_used_blocks(), 0);
  EXPECT_EQ(kv.full_pool().num_used_blocks(), 0);
}

TEST(KvCacheManager, ChunkStartingPastTheWindowNeverAllocatesOldSlidingBlocks) {
  KvCacheManager kv(spec(8, 8, 3), false);
  Sequence s(0, 0, iota_tokens(16), 4);
  run_chunk(kv, s, 12);
  // The chunk 0..11 needed all its sliding blocks while it ran; afterwards the query at 12 sees 10..12.
  EXPECT_EQ(s.blocks.sliding, (Ids{-1, -1, 2}));
  ASSERT_TRUE(kv.allocate_slots(s, 4));
  EXPECT_EQ(s.blocks.sliding.size(), 4u);
  EXPECT_EQ(s.blocks.sliding[0], -1);
  EXPECT_EQ(s.blocks.sliding[1], -1);
}

TEST(KvCacheManager, PrefixHitSharesFullAndSlidingBlocksAndLeavesOneTokenToCompute) {
  KvCacheManager kv(spec(10, 10, 6), true);
  std::vector<int32_t> prompt = iota_tokens(10);
  Sequence a(0, 0, prompt, 4);
  run_chunk(kv, a, 10);
  EXPECT_EQ(a.blocks.full, (Ids{0, 1, 2}));
  EXPECT_EQ(a.blocks.sliding, (Ids{-1, 1, 2}));

  // Same first 8 tokens, then different: hit of 2 blocks. Sliding blocks needed at position 8:
  // keys 3..8 -> blocks 0 and 1; block 0 was released by `a` but is still cached in the free list.
  std::vector<int32_t> p2(prompt.begin(), prompt.begin() + 8);
  p2.push_back(7);
  p2.push_back(7);
  Sequence b(1, 0, p2, 4);
  PrefixHit hit = kv.find_prefix(b);
  EXPECT_EQ(hit.num_tokens, 8);
  EXPECT_EQ(hit.full, (Ids{0, 1}));
  EXPECT_EQ(hit.sliding, (Ids{0, 1}));
  ASSERT_TRUE(kv.allocate_slots(b, 2, &hit));
  EXPECT_EQ(b.num_computed_tokens, 8);
  EXPECT_EQ(b.blocks.full, (Ids{0, 1, 3}));
  EXPECT_EQ(b.blocks.sliding, (Ids{0, 1, 3}));
  EXPECT_EQ(kv.full_pool().ref_count(0), 2);
  EXPECT_EQ(kv.sliding_pool().ref_count(0), 1);  // revived from the free list
  EXPECT_EQ(kv.full_pool().ref_count(3), 1);

  // An identical prompt whose length is a multiple of the block size: the last block is not
  // taken from the cache, so its last token can be computed for its logits.
  std::vector<int32_t> p3(prompt.begin(), prompt.begin() + 8);
  Sequence c(2, 0, p3, 4);
  EXPECT_EQ(kv.find_prefix(c).num_tokens, 4);
}

TEST(KvCacheManager, PrefixHitIsShortenedWhenTheSlidingBlocksWereEvicted) {
  // window 3: at position 8 only block 1 (keys 6, 7) matters; at position 4 block 0 (key 2, 3)... and 1.
  KvCacheManager kv(spec(12, 4, 3), true);
  std::vector<int32_t> prompt = iota_tokens(13);
  Sequence a(0, 0, prompt, 4);
  run_chunk(kv, a, 13);
  EXPECT_EQ(a.blocks.sliding, (Ids{-1, -1, 2, 3}));
  kv.free(a);
  // Sliding free list (LRU first): 0 (released first), 1, then a's tail 3, 2.
  EXPECT_EQ(kv.sliding_pool().free_list(), (Ids{0, 1, 3, 2}));
  Sequence b(1, 0, prompt, 4);
  EXPECT_EQ(kv.find_prefix(b).num_tokens, 12);
  // Evict sliding block 0 and 1 (positions 0-7) by allocating two blocks for another sequence.
  Sequence other(2, 0, iota_tokens(5, 900), 4);
  ASSERT_TRUE(kv.allocate_slots(other, 5));
  EXPECT_EQ(other.blocks.sliding, (Ids{0, 1}));
  // Hit of 12 needs sliding block 2 only (keys 10..12 at position 12): still cached.
  PrefixHit hit = kv.find_prefix(b);
  EXPECT_EQ(hit.num_tokens, 12);
  EXPECT_EQ(hit.sliding, (Ids{-1, -1, 2}));
  // Evict block 3 and 2 as well: no k has its sliding blocks, so no hit at all.
  kv.free(other);
  Sequence other2(3, 0, iota_tokens(16, 700), 4);
  ASSERT_TRUE(kv.allocate_slots(other2, 16));
  EXPECT_EQ(kv.find_prefix(b).num_tokens, 0);
}

TEST(KvCacheManager, DisabledPrefixCachingNeverHits) {
  KvCacheManager kv(spec(10, 0, 0), false);
  Sequence a(0, 0, iota_tokens(9), 4);
  run_chunk(kv, a, 9);
  Sequence b(1, 0, iota_tokens(9), 4);
  EXPECT_EQ(kv.find_prefix(b).num_tokens, 0);
  EXPECT_FALSE(kv.full_pool().is_cached(0));
}

TEST(KvCacheManager, ForkSharesFullyComputedBlocks) {
  KvCacheManager kv(spec(10, 10, 6), false);
  Sequence parent(0, 0, iota_tokens(10), 4);
  run_chunk(kv, parent, 10);
  parent.append_token(5);
  Sequence child(1, 1, iota_tokens(10), 4);
  child.append_token(6);
  kv.fork(parent, child);
  // Window 6: from position 8 the child needs keys 3..8 (sliding block 0), which the parent
  // already released; from position 4 it needs block 0 as well -> nothing can be shared.
  EXPECT_EQ(parent.blocks.sliding[0], -1);
  EXPECT_EQ(child.num_computed_tokens, 0);
  EXPECT_TRUE(child.blocks.full.empty());
  KvCacheManager kv2(spec(10, 10, 4), false);
  Sequence p2(0, 0, iota_tokens(10), 4);
  run_chunk(kv2, p2, 10);  // window 4: query at 10 sees 7..10: block 0 released
  Sequence c2(1, 1, iota_tokens(10), 4);
  c2.append_token(1);
  kv2.fork(p2, c2);  // at position 8 keys 5..8 -> block 1 only: k = 2 works
  EXPECT_EQ(c2.num_computed_tokens, 8);
  EXPECT_EQ(c2.blocks.full, (Ids{0, 1}));
  EXPECT_EQ(c2.blocks.sliding, (Ids{-1, 1}));
  EXPECT_EQ(kv2.sliding_pool().ref_count(1), 2);
  EXPECT_EQ(kv2.full_pool().ref_count(0), 2);
}

TEST(KvCacheManager, RejectsBadSpecs) {
  EXPECT_THROW(KvCacheManager(spec(4, 4, 0), true), InvalidArgument);
  KvCacheSpec s = spec(4, 0, 0);
  s.block_size = 0;
  EXPECT_THROW(KvCacheManager(s, true), InvalidArgument);
}

}  // namespace
}  // namespace quench
