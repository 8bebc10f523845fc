// quench/engine/block_pool.cpp: free list, ref counts and prefix-cache map of one KV-cache group.
#include "engine/block_pool.h"

#include <fmt/format.h>

#include "core/error.h"

namespace quench {

BlockPool::BlockPool(std::string name, int num_blocks) : name_(std::move(name)) {
  if (num_blocks < 0)
    throw InvalidArgument(fmt::format("BlockPool '{}': num_blocks must be >= 0, got {}", name_, num_blocks));
  blocks_.resize(static_cast<size_t>(num_blocks));
  for (int32_t i = 0; i < num_blocks; ++i) push_back_free(i);
}

void BlockPool::check_id(int32_t id, const char* what) const {
  if (id < 0 || id >= num_blocks())
    throw InvalidArgument(
        fmt::format("BlockPool '{}': {}: block id {} out of range [0, {})", name_, what, id, num_blocks()));
}

void BlockPool::push_back_free(int32_t id) {
  Block& b = blocks_[id];
  b.prev = tail_;
  b.next = -1;
  if (tail_ >= 0) blocks_[tail_].next = id; else head_ = id;
  tail_ = id;
  b.in_free_list = true;
  ++num_free_;
}

void BlockPool::unlink_free(int32_t id) {
  Block& b = blocks_[id];
  if (b.prev >= 0) blocks_[b.prev].next = b.next; else head_ = b.next;
  if (b.next >= 0) blocks_[b.next].prev = b.prev; else tail_ = b.prev;
  b.prev = b.next = -1;
  b.in_free_list = false;
  --num_free_;
}

std::vector<int32_t> BlockPool::allocate(int n) {
  if (n < 0 || n > num_free_)
    throw InvalidArgument(fmt::format("BlockPool '{}': allocate({}) with {} free blocks", name_, n, num_free_));
  std::vector<int32_t> out;
  out.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    int32_t id = head_;
    unlink_free(id);
    Block& b = blocks_[id];
    if (b.hash) {  // evict: the block's old contents are about to be overwritten
      auto it = cached_.find(*b.hash);
      if (it != cached_.end() && it->second == id) cached_.erase(it);
      b.hash.reset();
    }
    b.ref_cnt = 1;
    out.push_back(id);
  }
  return out;
}

void BlockPool::touch(const std::vector<int32_t>& ids) {
  for (int32_t id : ids) {
    check_id(id, "touch");
    Block& b = blocks_[id];
    if (b.ref_cnt == 0) unlink_free(id);
    ++b.ref_cnt;
  }
}

void BlockPool::free(const std::vector<int32_t>& ids) {
  for (int32_t id : ids) {
    check_id(id, "free");
    Block& b = blocks_[id];
    if (b.ref_cnt <= 0)
      throw InvalidArgument(fmt::format("BlockPool '{}': free of block {} whose ref count is 0", name_, id));
    if (--b.ref_cnt == 0) push_back_free(id);
  }
}

std::optional<int32_t> BlockPool::lookup(uint64_t hash) const {
  auto it = cached_.find(hash);
  if (it == cached_.end()) return std::nullopt;
  return it->second;
}

void BlockPool::cache(int32_t id, uint64_t hash) {
  check_id(id, "cache");
  Block& b = blocks_[id];
  if (b.hash) return;
  if (cached_.count(hash)) return;
  b.hash = hash;
  cached_.emplace(hash, id);
}

int BlockPool::ref_count(int32_t id) const {
  check_id(id, "ref_count");
  return blocks_[id].ref_cnt;
}

bool BlockPool::is_cached(int32_t id) const {
  check_id(id, "is_cached");
  return blocks_[id].hash.has_value();
}

std::vector<int32_t> BlockPool::free_list() const {
  std::vector<int32_t> out;
  for (int32_t id = head_; id >= 0; id = blocks_[id].next) out.push_back(id);
  return out;
}

}  // namespace quench
