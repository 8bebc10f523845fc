// quench/engine/kv_cache_manager.cpp: block allocation, prefix hits, sliding-window release.
#include "engine/kv_cache_manager.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/error.h"

namespace quench {

KvCacheManager::KvCacheManager(const KvCacheSpec& spec, bool enable_prefix_caching)
    : block_size_(spec.block_size), window_(spec.sliding_window),
      has_sliding_(spec.num_blocks_sliding > 0), prefix_caching_(enable_prefix_caching),
      full_("full", spec.num_blocks_full), sliding_("sliding", spec.num_blocks_sliding) {
  if (block_size_ < 1) throw InvalidArgument(fmt::format("KvCacheSpec.block_size must be >= 1, got {}", block_size_));
  if (has_sliding_ && window_ < 1)
    throw InvalidArgument(fmt::format("KvCacheSpec: {} sliding blocks but sliding_window is {} (expected >= 1)",
                                      spec.num_blocks_sliding, window_));
}

int KvCacheManager::first_visible_block(int pos) const {
  // A query at position p sees keys p - window + 1 .. p (window counts the query itself).
  return std::max(0, pos - window_ + 1) / block_size_;
}

PrefixHit KvCacheManager::find_prefix(const Sequence& seq) const {
  PrefixHit hit;
  if (!prefix_caching_) return hit;
  const auto& hashes = seq.block_hashes();
  const int max_blocks = std::min<int>(static_cast<int>(hashes.size()), (seq.num_tokens() - 1) / block_size_);
  std::vector<int32_t> full;
  for (int b = 0; b < max_blocks; ++b) {
    auto id = full_.lookup(hashes[static_cast<size_t>(b)]);
    if (!id) break;
    full.push_back(*id);
  }
  // Longest k <= full hits whose sliding blocks within the window of k*block_size are cached.
  for (int k = static_cast<int>(full.size()); k > 0; --k) {
    std::vector<int32_t> sliding;
    if (has_sliding_) {
      const int first = first_visible_block(k * block_size_);
      sliding.assign(static_cast<size_t>(first), -1);
      bool ok = true;
      for (int b = first; b < k && ok; ++b) {
        auto id = sliding_.lookup(hashes[static_cast<size_t>(b)]);
        if (id) sliding.push_back(*id); else ok = false;
      }
      if (!ok) continue;
    }
    hit.num_tokens = k * block_size_;
    hit.full.assign(full.begin(), full.begin() + k);
    hit.sliding = std::move(sliding);
    return hit;
  }
  return hit;
}

bool KvCacheManager::allocate_slots(Sequence& seq, int num_new_tokens, const PrefixHit* hit) {
  SeqBlocks& t = seq.blocks;
  if (hit && hit->num_tokens > 0 && (!t.full.empty() || !t.sliding.empty()))
    throw InvalidArgument(fmt::format("allocate_slots: prefix hit for sequence {} which already holds blocks", seq.seq_id()));
  const bool use_hit = hit && hit->num_tokens > 0;
  const std::vector<int32_t>& base_full = use_hit ? hit->full : t.full;
  const std::vector<int32_t>& base_sliding = use_hit ? hit->sliding : t.sliding;
  const int start = use_hit ? hit->num_tokens : seq.num_computed_tokens;
  const int end = start + num_new_tokens;
  const int need_blocks = blocks_for(end);

  // Revived hits (ref count 0) leave the free list: they count against the free blocks too.
  int revive_full = 0, revive_sliding = 0;
  if (use_hit) {
    for (int32_t id : hit->full) revive_full += full_.ref_count(id) == 0;
    for (int32_t id : hit->sliding) if (id >= 0) revive_sliding += sliding_.ref_count(id) == 0;
  }
  const int new_full = std::max(0, need_blocks - static_cast<int>(base_full.size()));
  int new_sliding = 0;
  const int first = has_sliding_ ? first_visible_block(start) : 0;
  if (has_sliding_) {
    for (int b = first; b < need_blocks; ++b)
      if (b >= static_cast<int>(base_sliding.size()) || base_sliding[static_cast<size_t>(b)] < 0) ++new_sliding;
  }
  if (new_full + revive_full > full_.num_free_blocks()) return false;
  if (has_sliding_ && new_sliding + revive_sliding > sliding_.num_free_blocks()) return false;

  if (use_hit) {
    full_.touch(hit->full);
    t.full = hit->full;
    t.num_cached_blocks = static_cast<int>(hit->full.size());
    if (has_sliding_) {
      for (int32_t id : hit->sliding) if (id >= 0) sliding_.touch(id);
      t.sliding = hit->sliding;
      t.num_released_sliding = first_visible_block(hit->num_tokens);
    }
    seq.num_computed_tokens = hit->num_tokens;
  }
  auto fresh = full_.allocate(new_full);
  t.full.insert(t.full.end(), fresh.begin(), fresh.end());
  if (has_sliding_) {
    auto ids = sliding_.allocate(new_sliding);
    size_t next = 0;
    if (static_cast<int>(t.sliding.size()) < need_blocks) t.sliding.resize(static_cast<size_t>(need_blocks), -1);
    for (int b = first; b < need_blocks; ++b)
      if (t.sliding[static_cast<size_t>(b)] < 0) t.sliding[static_cast<size_t>(b)] = ids[next++];
  }
  return true;
}

void KvCacheManager::on_computed(Sequence& seq) {
  SeqBlocks& t = seq.blocks;
  const int computed_blocks = std::min<int>(seq.num_computed_tokens / block_size_, static_cast<int>(t.full.size()));
  if (prefix_caching_) {
    const auto& hashes = seq.block_hashes();
    for (int b = t.num_cached_blocks; b < computed_blocks; ++b) {
      const uint64_t h = hashes[static_cast<size_t>(b)];
      full_.cache(t.full[static_cast<size_t>(b)], h);
      if (has_sliding_ && b < static_cast<int>(t.sliding.size()) && t.sliding[static_cast<size_t>(b)] >= 0)
        sliding_.cache(t.sliding[static_cast<size_t>(b)], h);
    }
  }
  t.num_cached_blocks = std::max(t.num_cached_blocks, computed_blocks);
  if (has_sliding_) {
    const int first = std::min<int>(first_visible_block(seq.num_computed_tokens), static_cast<int>(t.sliding.size()));
    for (int b = t.num_released_sliding; b < first; ++b) {
      int32_t& id = t.sliding[static_cast<size_t>(b)];
      if (id >= 0) {
        sliding_.free(id);
        id = -1;
      }
    }
    t.num_released_sliding = std::max(t.num_released_sliding, first);
  }
}

void KvCacheManager::free(Sequence& seq) {
  SeqBlocks& t = seq.blocks;
  std::vector<int32_t> ids(t.full.rbegin(), t.full.rend());
  full_.free(ids);
  ids.clear();
  for (auto it = t.sliding.rbegin(); it != t.sliding.rend(); ++it)
    if (*it >= 0) ids.push_back(*it);
  sliding_.free(ids);
  t = SeqBlocks{};
}

void KvCacheManager::fork(const Sequence& parent, Sequence& child) {
  const SeqBlocks& p = parent.blocks;
  SeqBlocks& c = child.blocks;
  if (!c.full.empty() || !c.sliding.empty())
    throw InvalidArgument(fmt::format("fork: child sequence {} already holds blocks", child.seq_id()));
  int k = std::min<int>(parent.num_computed_tokens / block_size_, static_cast<int>(p.full.size()));
  k = std::min(k, (child.num_tokens() - 1) / block_size_);
  if (has_sliding_) {
    for (; k > 0; --k) {
      bool ok = true;
      for (int b = first_visible_block(k * block_size_); b < k && ok; ++b)
        ok = b < static_cast<int>(p.sliding.size()) && p.sliding[static_cast<size_t>(b)] >= 0;
      if (ok) break;
    }
  }
  c.full.assign(p.full.begin(), p.full.begin() + k);
  full_.touch(c.full);
  if (has_sliding_) {
    const int first = first_visible_block(k * block_size_);
    c.sliding.assign(static_cast<size_t>(k), -1);
    for (int b = first; b < k; ++b) {
      c.sliding[static_cast<size_t>(b)] = p.sliding[static_cast<size_t>(b)];
      sliding_.touch(p.sliding[static_cast<size_t>(b)]);
    }
    c.num_released_sliding = first;
  }
  c.num_cached_blocks = std::min(k, p.num_cached_blocks);
  child.num_computed_tokens = k * block_size_;
}

double KvCacheManager::usage() const {
  if (full_.num_blocks() == 0) return 0.0;
  return static_cast<double>(full_.num_used_blocks()) / full_.num_blocks();
}

}  // namespace quench
