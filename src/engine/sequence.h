// quench/engine/sequence.h: one generated sequence: its tokens, progress, KV blocks and stats.
//
// A request with n > 1 owns n sequences (forked after the prompt's prefill, see Scheduler).
// The engine thread alone touches a Sequence. Vocabulary after vLLM v1's Request:
// num_computed_tokens counts tokens whose K/V are in the cache; tokens at and after it are fed to
// the next forward step (the last sampled token, or the rest of the prompt under chunked prefill).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "engine/request_output.h"  // FinishReason

namespace quench {

/// Lifecycle; every value after kPreempted is a finished state (vLLM's RequestStatus).
enum class SequenceStatus { kWaiting, kRunning, kPreempted, kFinishedStopped, kFinishedLength, kFinishedAborted };

inline bool is_finished(SequenceStatus s) { return s > SequenceStatus::kPreempted; }
/// kFinishedStopped -> kStop, kFinishedLength -> kLength, kFinishedAborted -> kAbort; nullopt otherwise.
std::optional<FinishReason> finish_reason_of(SequenceStatus s);

/// Block tables of one sequence, one per KV-cache group (see backend/backend.h).
struct SeqBlocks {
  std::vector<int32_t> full;     ///< physical block ids of logical blocks 0.. in the full-attention pool
  std::vector<int32_t> sliding;  ///< same for the sliding pool; -1 = released (outside the window) or never needed
  int num_cached_blocks = 0;     ///< leading full blocks already offered to the prefix cache
  int num_released_sliding = 0;  ///< leading sliding entries already released (all -1)
};

class Sequence {
 public:
  /// `block_size` fixes the granularity of the block hashes kept up to date by append_token().
  Sequence(int64_t seq_id, int index, std::vector<int32_t> prompt_ids, int block_size);

  int64_t seq_id() const { return seq_id_; }
  int index() const { return index_; }   ///< 0 .. n-1 within the request

  std::span<const int32_t> token_ids() const { return token_ids_; }  ///< prompt then output
  std::span<const int32_t> prompt_ids() const { return {token_ids_.data(), static_cast<size_t>(num_prompt_tokens_)}; }
  std::span<const int32_t> output_ids() const {
    return {token_ids_.data() + num_prompt_tokens_, token_ids_.size() - static_cast<size_t>(num_prompt_tokens_)};
  }
  int num_tokens() const { return static_cast<int>(token_ids_.size()); }
  int num_prompt_tokens() const { return num_prompt_tokens_; }
  int num_output_tokens() const { return num_tokens() - num_prompt_tokens_; }
  int last_token() const { return token_ids_.back(); }

  /// Hashes of the full blocks of token_ids(): block_hashes()[b] covers tokens [0, (b+1)*block_size).
  const std::vector<uint64_t>& block_hashes() const { return block_hashes_; }
  int block_size() const { return block_size_; }

  /// Appends a generated token; updates the block hashes and the output counts.
  void append_token(int32_t id);
  /// Count of `id` among the output tokens (frequency/presence penalties).
  int output_count(int32_t id) const;
  const std::unordered_map<int32_t, int>& output_counts() const { return output_counts_; }
  /// Distinct ids of prompt and output (repetition penalty).
  const std::unordered_set<int32_t>& seen_ids() const { return seen_ids_; }

  // ---- engine-owned mutable state (public fields, a plain record like vLLM's Request) ----
  SequenceStatus status = SequenceStatus::kWaiting;
  int num_computed_tokens = 0;  ///< tokens whose K/V are in the cache
  SeqBlocks blocks;
  int num_pending_forks = 0;    ///< n-1 on the parent until its prefill completes
  int num_preemptions = 0;
  std::optional<std::string> stop_reason;
  std::chrono::steady_clock::time_point last_token_time{};  ///< for inter-token latency

 private:
  int64_t seq_id_;
  int index_;
  int block_size_;
  int num_prompt_tokens_;
  std::vector<int32_t> token_ids_;
  std::vector<uint64_t> block_hashes_;
  std::unordered_map<int32_t, int> output_counts_;
  std::unordered_set<int32_t> seen_ids_;
  void update_hashes();
};

}  // namespace quench
