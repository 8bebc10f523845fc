// quench/engine/kv_cache_sizing.cpp: see kv_cache_sizing.h.
#include "engine/kv_cache_sizing.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include <fmt/format.h>

#include "core/error.h"
#include "io/model_config.h"

namespace quench {
namespace {

void require_positive(int v, const char* field) {
  if (v < 1) throw InvalidArgument(fmt::format("KV sizing: {} must be >= 1, got {}", field, v));
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

int clamp_int(int64_t v) { return static_cast<int>(std::min<int64_t>(v, INT32_MAX)); }

}  // namespace

int sliding_window_blocks_needed(int block_size, int window, int max_num_seqs, int max_num_batched_tokens,
                                 int max_model_len) {
  require_positive(block_size, "block_size");
  require_positive(window, "sliding_window");
  require_positive(max_num_seqs, "max_num_seqs");
  require_positive(max_num_batched_tokens, "max_num_batched_tokens");
  require_positive(max_model_len, "max_model_len");
  const int64_t bs = block_size, seqs = max_num_seqs;
  // (window - 2) clamped at 0: a window of 1 gets the bound of a window of 2 (still an upper bound).
  const int64_t per_seq = std::max<int64_t>(window - 2, 0) / bs + 3;
  const int64_t bound = seqs * per_seq + ceil_div(std::min<int64_t>(max_num_batched_tokens, seqs * max_model_len), bs);
  const int64_t all_full_length = seqs * ceil_div(max_model_len, bs);
  const int64_t one_seq =
      ceil_div(std::min<int64_t>(max_model_len, int64_t(window) + std::min(max_num_batched_tokens, max_model_len)), bs) +
      1;
  return clamp_int(std::max(std::min(bound, all_full_length), one_seq));
}

KvCachePlan plan_kv_cache(const ModelConfig& config, const KvSizingRequest& r) {
  require_positive(r.block_size, "block_size");
  require_positive(r.max_model_len, "max_model_len");
  require_positive(r.max_num_seqs, "max_num_seqs");
  require_positive(r.max_num_batched_tokens, "max_num_batched_tokens");
  const double elem = r.dtype == KvCacheDtype::kFP32 ? 4 : r.dtype == KvCacheDtype::kBF16 ? 2 : 1;
  KvCachePlan p;
  int window = 0;
  for (const LayerConfig& l : config.layers) {
    const double b = 2.0 * r.block_size * l.num_kv_heads * l.head_dim * elem;
    if (l.type == LayerType::kSliding && l.sliding_window > 0) {
      p.bytes_per_block_sliding += b;
      window = std::max(window, l.sliding_window);
    } else {
      p.bytes_per_block_full += b;
    }
  }
  const bool sliding = window > 0;
  const int64_t per_seq = ceil_div(r.max_model_len, r.block_size);
  const int64_t cap = sliding ? sliding_window_blocks_needed(r.block_size, window, r.max_num_seqs,
                                                             r.max_num_batched_tokens, r.max_model_len)
                              : 0;
  int64_t full = r.num_blocks_override > 0
                     ? r.num_blocks_override
                     : per_seq * std::min(r.max_num_seqs, std::max(r.full_length_seqs, 1)) + 1;
  if (r.num_blocks_override <= 0 && r.budget_bytes > 0) {
    // Largest F with F * full + min(F, cap) * sliding <= budget.
    const double f = p.bytes_per_block_full, s = p.bytes_per_block_sliding;
    int64_t fit = full;
    if (f > 0) {
      const double beyond_cap = std::floor((r.budget_bytes - double(cap) * s) / f);  // F >= cap
      const double below_cap = std::floor(r.budget_bytes / (f + s));                 // F < cap
      fit = beyond_cap >= double(cap) ? static_cast<int64_t>(std::min(beyond_cap, 1e15))
                                      : static_cast<int64_t>(std::max(below_cap, 0.0));
    } else if (s > 0) {
      fit = r.budget_bytes >= double(cap) * s ? full : static_cast<int64_t>(std::floor(r.budget_bytes / s));
    }
    full = std::min(full, fit);
    full = std::max(full, per_seq + 1);  // one full-length sequence must fit (the engine checks it)
  }
  p.num_blocks_full = clamp_int(full);
  p.num_blocks_sliding = sliding ? clamp_int(std::min<int64_t>(full, cap)) : 0;
  return p;
}

}  // namespace quench
