// quench/engine/block_pool.h: one KV-cache group's pool of blocks, with ref counts and the prefix cache.
//
// Rules (after vLLM v1's BlockPool, vllm/v1/core/block_pool.py):
//  - all blocks exist from start-up, ids 0 .. num_blocks-1 (physical ids in the backend's pool);
//  - each block has a ref count: the number of block tables holding it;
//  - blocks with ref count 0 sit in a free list in eviction order (front = evicted first). A freed
//    block is appended at the back, so a block freed earlier is reused earlier (least recently used);
//    callers free a sequence's blocks tail first, so its tail is evicted before its prefix;
//  - a full block may be *cached* under the hash of its tokens and everything before them
//    (BlockHasher). A cached block stays cached while in the free list and can be revived by a later
//    prefix hit (touch()); it loses its hash only when allocate() hands it out for new data;
//  - equal blocks are never merged: a hash already cached keeps its first block, so block tables
//    stay append-only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace quench {

class BlockPool {
 public:
  /// `name` ("full" / "sliding") appears in error messages. Throws InvalidArgument when num_blocks < 0.
  BlockPool(std::string name, int num_blocks);

  int num_blocks() const { return static_cast<int>(blocks_.size()); }
  /// Blocks that allocate() can hand out: ref count 0, cached or not.
  int num_free_blocks() const { return num_free_; }
  /// Blocks referenced by at least one table.
  int num_used_blocks() const { return num_blocks() - num_free_; }

  /// Takes `n` blocks from the front of the free list (evicting their cached hashes); each gets
  /// ref count 1. Throws InvalidArgument (a scheduler bug) when fewer than n are free.
  std::vector<int32_t> allocate(int n);
  /// Adds one reference to each block (a prefix-cache hit or a fork); a block with ref count 0 is
  /// taken out of the free list. Throws InvalidArgument on an id out of range.
  void touch(const std::vector<int32_t>& ids);
  void touch(int32_t id) { touch(std::vector<int32_t>{id}); }
  /// Drops one reference from each block, in the given order; blocks reaching 0 are appended to
  /// the free list. Throws InvalidArgument on an id out of range or a block already free.
  void free(const std::vector<int32_t>& ids);
  void free(int32_t id) { free(std::vector<int32_t>{id}); }

  /// Block cached under `hash`, if any (in use or free).
  std::optional<int32_t> lookup(uint64_t hash) const;
  /// Caches a full block under `hash`. No-op when the block already has a hash or the hash is
  /// already cached by another block.
  void cache(int32_t id, uint64_t hash);

  int ref_count(int32_t id) const;
  bool is_cached(int32_t id) const;
  /// Free list, front (next evicted) first. For tests and debugging; O(free blocks).
  std::vector<int32_t> free_list() const;
  /// Number of blocks currently holding a cached hash.
  int num_cached_blocks() const { return static_cast<int>(cached_.size()); }

 private:
  struct Block {
    int ref_cnt = 0;
    std::optional<uint64_t> hash;
    int32_t prev = -1, next = -1;  ///< free-list links; -1 = none
    bool in_free_list = false;
  };
  void check_id(int32_t id, const char* what) const;
  void push_back_free(int32_t id);
  void unlink_free(int32_t id);

  std::string name_;
  std::vector<Block> blocks_;
  int32_t head_ = -1, tail_ = -1;
  int num_free_ = 0;
  std::unordered_map<uint64_t, int32_t> cached_;
};

}  // namespace quench
