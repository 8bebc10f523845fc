// tests/engine/block_pool_test.cpp: ref counts, free-list (LRU) order, prefix-cache map, eviction.
#include "engine/block_pool.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "engine/block_hash.h"

#include <xxhash.h>

namespace quench {
namespace {

using Ids = std::vector<int32_t>;

TEST(BlockPool, AllocatesFromTheFrontAndFreesToTheBack) {
  BlockPool pool("full", 6);
  EXPECT_EQ(pool.free_list(), (Ids{0, 1, 2, 3, 4, 5}));
  Ids a = pool.allocate(3);
  EXPECT_EQ(a, (Ids{0, 1, 2}));
  EXPECT_EQ(pool.num_free_blocks(), 3);
  EXPECT_EQ(pool.ref_count(1), 1);
  // Freed tail first (as a sequence frees): 2 then 1 then 0 go to the back in that order.
  pool.free(Ids{2, 1, 0});
  EXPECT_EQ(pool.free_list(), (Ids{3, 4, 5, 2, 1, 0}));
  EXPECT_EQ(pool.allocate(4), (Ids{3, 4, 5, 2}));
}

TEST(BlockPool, RefCountsKeepSharedBlocksOutOfTheFreeList) {
  BlockPool pool("full", 4);
  Ids a = pool.allocate(2);  // 0, 1
  pool.touch(a);             // second owner
  EXPECT_EQ(pool.ref_count(0), 2);
  pool.free(a);
  EXPECT_EQ(pool.ref_count(0), 1);
  EXPECT_EQ(pool.free_list(), (Ids{2, 3}));
  pool.free(a);
  EXPECT_EQ(pool.free_list(), (Ids{2, 3, 0, 1}));
  EXPECT_THROW(pool.free(0), InvalidArgument);  // already free
  EXPECT_THROW(pool.touch(7), InvalidArgument);
  EXPECT_THROW(pool.allocate(5), InvalidArgument);
}

TEST(BlockPool, CachedBlocksSurviveInTheFreeListUntilEvictedLeastRecentlyUsedFirst) {
  BlockPool pool("full", 3);
  Ids a = pool.allocate(3);  // 0 1 2
  pool.cache(0, 100);
  pool.cache(1, 101);
  pool.cache(2, 102);
  EXPECT_EQ(pool.num_cached_blocks(), 3);
  // Duplicate hash is not merged; a block keeps its first hash.
  pool.cache(1, 100);
  EXPECT_EQ(*pool.lookup(100), 0);
  pool.free(Ids{1});  // used longest ago
  pool.free(Ids{2, 0});
  EXPECT_EQ(pool.free_list(), (Ids{1, 2, 0}));
  EXPECT_EQ(*pool.lookup(101), 1);  // still cached while free
  // A hit revives block 2 out of the free list without evicting it.
  pool.touch(*pool.lookup(102));
  EXPECT_EQ(pool.free_list(), (Ids{1, 0}));
  EXPECT_EQ(pool.ref_count(2), 1);
  // Allocation evicts the least recently freed cached block (1), then 0.
  EXPECT_EQ(pool.allocate(1), (Ids{1}));
  EXPECT_FALSE(pool.lookup(101).has_value());
  EXPECT_FALSE(pool.is_cached(1));
  EXPECT_TRUE(pool.lookup(100).has_value());
  EXPECT_EQ(pool.allocate(1), (Ids{0}));
  EXPECT_FALSE(pool.lookup(100).has_value());
  EXPECT_EQ(pool.num_cached_blocks(), 1);
}

TEST(BlockHash, ChainsOverThePrefixAndMatchesXxh64OfTheSpelledBytes) {
  const std::vector<int32_t> a{1, 2, 3, 4}, b{1, 2, 3, 5};
  EXPECT_EQ(hash_block_tokens(kRootBlockHash, a), hash_block_tokens(kRootBlockHash, a));
  EXPECT_NE(hash_block_tokens(kRootBlockHash, a), hash_block_tokens(kRootBlockHash, b));
  const uint64_t h1 = hash_block_tokens(kRootBlockHash, a);
  // Same block tokens after a different prefix -> different key.
  EXPECT_NE(hash_block_tokens(h1, a), hash_block_tokens(hash_block_tokens(kRootBlockHash, b), a));
  // The documented byte layout: parent hash as 8 little-endian bytes, then each id as int32 LE.
  const unsigned char bytes[] = {0x15, 0x7c, 0x4a, 0x7f, 0xb9, 0x79, 0x37, 0x9e,  // kRootBlockHash
                                 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0};
  EXPECT_EQ(h1, XXH64(bytes, sizeof(bytes), 0));
}

}  // namespace
}  // namespace quench
