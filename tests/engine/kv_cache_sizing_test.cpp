// tests/engine/kv_cache_sizing_test.cpp: the sliding-window group's block bound holds for the
// real KvCacheManager under randomised chunked-prefill / decode schedules (allocation never fails
// for want of sliding blocks), and plan_kv_cache splits a memory budget between the two groups.
#include "engine/kv_cache_sizing.h"

#include <algorithm>
#include <numeric>
#include <random>

#include <gtest/gtest.h>

#include "core/error.h"
#include "engine/kv_cache_manager.h"
#include "io/model_config.h"

namespace quench {
namespace {

struct Schedule {
  int block_size, window, seqs, budget, max_len;
  bool prefix_caching;
  int min_prompt = 1;  ///< prompts are min_prompt .. max_len - 1 tokens
};

/// Runs `steps` engine-like steps over `seqs` running sequences with a sliding pool of exactly
/// sliding_window_blocks_needed(...) blocks (full pool unbounded): each step gives every running
/// sequence (in a shuffled order, some skipped) a prefill chunk or one decode token within the
/// token budget; finished sequences are freed and replaced. Returns the peak of sliding blocks
/// in use; fails the test if an allocation is refused.
int run_schedule(const Schedule& c, int steps, std::mt19937& rng, bool skip_some) {
  const int bound = sliding_window_blocks_needed(c.block_size, c.window, c.seqs, c.budget, c.max_len);
  KvCacheSpec spec;
  spec.block_size = c.block_size;
  spec.num_blocks_full = 1 << 20;
  spec.num_blocks_sliding = bound;
  spec.sliding_window = c.window;
  KvCacheManager kv(spec, c.prefix_caching);
  std::uniform_int_distribution<int> prompt_len(c.min_prompt, c.max_len - 1), tok(3, 50);
  std::vector<std::unique_ptr<Sequence>> running;
  std::vector<int> target;  // total length at which each sequence finishes
  int64_t next_id = 0;
  auto add = [&] {
    const int p = prompt_len(rng);
    std::vector<int32_t> ids(static_cast<size_t>(p));
    for (auto& t : ids) t = tok(rng);
    running.push_back(std::make_unique<Sequence>(next_id++, 0, std::move(ids), c.block_size));
    target.push_back(std::uniform_int_distribution<int>(p + 1, c.max_len)(rng));
  };
  for (int i = 0; i < c.seqs; ++i) add();
  int peak = 0;
  for (int step = 0; step < steps; ++step) {
    std::vector<size_t> order(running.size());
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    int left = c.budget;
    std::vector<std::pair<size_t, int>> scheduled;
    for (size_t i : order) {
      if (left == 0) break;
      if (skip_some && rng() % 4 == 0) continue;
      Sequence& s = *running[i];
      const int c_tokens = std::min(s.num_tokens() - s.num_computed_tokens, left);
      if (!kv.allocate_slots(s, c_tokens)) {
        ADD_FAILURE() << "sliding pool of " << bound << " blocks refused " << c_tokens << " tokens at step " << step
                      << " (block " << c.block_size << ", window " << c.window << ", " << c.seqs << " seqs, budget "
                      << c.budget << ")";
        return peak;
      }
      left -= c_tokens;
      scheduled.emplace_back(i, c_tokens);
    }
    peak = std::max(peak, kv.sliding_pool().num_used_blocks());
    for (auto [i, n] : scheduled) {
      Sequence& s = *running[i];
      s.num_computed_tokens += n;
      kv.on_computed(s);
      if (s.num_computed_tokens == s.num_tokens()) s.append_token(tok(rng));  // the sampled token
    }
    for (size_t i = 0; i < running.size(); ++i)
      if (running[i]->num_tokens() >= target[i]) {
        kv.free(*running[i]);
        running.erase(running.begin() + static_cast<long>(i));
        target.erase(target.begin() + static_cast<long>(i));
        add();
        --i;
      }
  }
  return peak;
}

TEST(KvCacheSizing, SlidingBoundHoldsUnderRandomSchedules) {
  std::mt19937 rng(1234);
  int runs = 0;
  for (const int bs : {4, 16})
    for (const int window : {6, 13, 64})
      for (const int seqs : {1, 3, 8})
        for (const int budget : {5, 32, 100})
          for (const bool pc : {false, true}) {
            const Schedule c{bs, window, seqs, budget, 200, pc};
            run_schedule(c, 400, rng, /*skip_some=*/runs % 2 == 1);
            ++runs;
            if (HasFailure()) return;
          }
}

/// The bound is not loose by more than what it pays for: sequences decoding past the window hold
/// window / block_size blocks each (the peak reaches that for every sequence at once), and the
/// bound exceeds the peak by at most a few blocks per sequence plus the step's tokens.
TEST(KvCacheSizing, SlidingBoundIsTight) {
  std::mt19937 rng(5);
  const Schedule c{16, 1024, 8, 4096, 4096, false, 2048};
  const int bound = sliding_window_blocks_needed(c.block_size, c.window, c.seqs, c.budget, c.max_len);
  EXPECT_EQ(bound, 8 * (1022 / 16 + 3) + 4096 / 16);  // 8 * 66 + 256
  const int peak = run_schedule(c, 2000, rng, false);
  EXPECT_GE(peak, c.seqs * (c.window / c.block_size));
  EXPECT_LE(bound - peak, c.seqs * 4 + c.budget / c.block_size);
}

TEST(KvCacheSizing, SlidingBoundLimits) {
  // Never more than max_num_seqs full-length sequences, never less than one sequence's need.
  EXPECT_EQ(sliding_window_blocks_needed(16, 1024, 4, 2048, 100), 4 * 7);
  EXPECT_EQ(sliding_window_blocks_needed(16, 1024, 1, 2048, 8192), 1022 / 16 + 3 + 2048 / 16);
  // The engine's one-sequence check (ceil(min(len, window + step) / 16) + 1) is the floor.
  EXPECT_EQ(sliding_window_blocks_needed(16, 1024, 1, 2048, 100), (100 + 15) / 16 + 1);
  EXPECT_THROW(sliding_window_blocks_needed(0, 1024, 1, 1, 1), InvalidArgument);
  EXPECT_THROW(sliding_window_blocks_needed(16, 0, 1, 1, 1), InvalidArgument);
  EXPECT_THROW(sliding_window_blocks_needed(16, 8, 0, 1, 1), InvalidArgument);
  EXPECT_THROW(sliding_window_blocks_needed(16, 8, 1, 0, 1), InvalidArgument);
  EXPECT_THROW(sliding_window_blocks_needed(16, 8, 1, 1, 0), InvalidArgument);
}

/// The 12B's text layers: every 6th global (1 KV head x 512, k_eq_v), the others sliding
/// (8 KV heads x 256, window 1024) — tests/data/io/gemma4-12b-config.json.
ModelConfig gemma4_12b_like(bool with_sliding = true) {
  ModelConfig c;
  for (int i = 0; i < 48; ++i) {
    LayerConfig l;
    const bool global = i % 6 == 5 || !with_sliding;
    l.type = global ? LayerType::kFull : LayerType::kSliding;
    l.head_dim = global ? 512 : 256;
    l.num_kv_heads = global ? 1 : 8;
    l.num_heads = 16;
    l.sliding_window = global ? 0 : 1024;
    c.layers.push_back(l);
  }
  c.sliding_window = with_sliding ? 1024 : 0;
  return c;
}

TEST(KvCacheSizing, PlanSplitsTheBudgetBetweenGroups) {
  const ModelConfig cfg = gemma4_12b_like();
  KvSizingRequest r;
  r.block_size = 16;
  r.max_model_len = 8192;
  r.max_num_seqs = 64;
  r.max_num_batched_tokens = 8192;
  r.full_length_seqs = 64;
  r.budget_bytes = 100e9;
  const KvCachePlan p = plan_kv_cache(cfg, r);
  // Bytes per block: 8 global layers x 2 x 16 x 512 x 2 B; 40 sliding x 2 x 16 x 8 x 256 x 2 B.
  EXPECT_DOUBLE_EQ(p.bytes_per_block_full, 8 * 2.0 * 16 * 512 * 2);
  EXPECT_DOUBLE_EQ(p.bytes_per_block_sliding, 40 * 2.0 * 16 * 8 * 256 * 2);
  const int need = sliding_window_blocks_needed(16, 1024, 64, 8192, 8192);
  EXPECT_EQ(p.num_blocks_sliding, need);
  // 64 sequences of 8192 tokens + 1 block fit in the full group (what the sliding cap freed).
  EXPECT_EQ(p.num_blocks_full, 64 * 512 + 1);
  EXPECT_LE(p.bytes(), r.budget_bytes);
  // Sized as before (both groups alike) the same budget held 100e9 / (f + s) = 18,165 blocks per
  // group: 35 of the 64 full-length sequences.
  const int before = static_cast<int>(100e9 / (p.bytes_per_block_full + p.bytes_per_block_sliding));
  EXPECT_EQ(before / 512, 35);
}

TEST(KvCacheSizing, PlanIsTheLargestFullGroupInTheBudget) {
  const ModelConfig cfg = gemma4_12b_like();
  KvSizingRequest r;
  r.max_model_len = 131072;
  r.max_num_seqs = 256;
  r.full_length_seqs = 256;
  r.budget_bytes = 60e9;
  r.dtype = KvCacheDtype::kFP8E4M3;
  const KvCachePlan p = plan_kv_cache(cfg, r);
  EXPECT_LE(p.bytes(), r.budget_bytes);
  EXPECT_GT(p.bytes() + p.bytes_per_block_full, r.budget_bytes);  // one more full block does not fit
  EXPECT_EQ(p.num_blocks_sliding, std::min(p.num_blocks_full, sliding_window_blocks_needed(16, 1024, 256, 2048, 131072)));
  // A budget below both groups' needs: the full group shrinks with the sliding one (F < cap).
  r.budget_bytes = 2e9;
  r.max_model_len = 1024;
  const KvCachePlan q = plan_kv_cache(cfg, r);
  EXPECT_EQ(q.num_blocks_sliding, q.num_blocks_full);
  EXPECT_LE(q.bytes(), r.budget_bytes);
  EXPECT_GT(q.bytes() + q.bytes_per_block_full + q.bytes_per_block_sliding, r.budget_bytes);
}

TEST(KvCacheSizing, PlanFloorsOverridesAndModelsWithoutSlidingLayers) {
  KvSizingRequest r;
  r.max_model_len = 4096;
  r.max_num_seqs = 8;
  r.full_length_seqs = 8;
  r.budget_bytes = 1.0;  // far too small: one full-length sequence + 1 block is the floor
  KvCachePlan p = plan_kv_cache(gemma4_12b_like(), r);
  EXPECT_EQ(p.num_blocks_full, 4096 / 16 + 1);
  r.num_blocks_override = 77;  // --num-kv-blocks: as given
  p = plan_kv_cache(gemma4_12b_like(), r);
  EXPECT_EQ(p.num_blocks_full, 77);
  EXPECT_EQ(p.num_blocks_sliding, 77);  // below the sliding need: capped by the full group
  r.num_blocks_override = 0;
  r.budget_bytes = 0;  // no cap: full_length_seqs sequences
  p = plan_kv_cache(gemma4_12b_like(false), r);
  EXPECT_EQ(p.num_blocks_full, 8 * 256 + 1);
  EXPECT_EQ(p.num_blocks_sliding, 0);
  EXPECT_DOUBLE_EQ(p.bytes_per_block_sliding, 0.0);
  r.max_model_len = 0;
  EXPECT_THROW(plan_kv_cache(gemma4_12b_like(), r), InvalidArgument);
}

}  // namespace
}  // namespace quench
