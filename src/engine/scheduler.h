// quench/engine/scheduler.h: which sequences run in the next forward step, and how many tokens each.
//
// vLLM v1 style: no prefill/decode phases, every sequence simply has tokens it has not computed
// yet (num_tokens - num_computed_tokens). Each step, under a token budget
// (max_num_batched_tokens):
//   1. running sequences, decodes first (so a long prefill never starves them), then running
//      sequences still in their prompt (chunked prefill: as many tokens as the budget allows);
//      when the KV cache has no room, the newest running sequence not yet scheduled in this step is
//      preempted (blocks freed, num_computed_tokens = 0, back to the front of the waiting queue: it
//      is recomputed later, prompt and output alike);
//   2. if nothing was preempted: waiting sequences in order (first come, first served) while the
//      budget, max_num_seqs and the KV cache allow, each starting from its longest prefix-cache hit.
// A new request joins the running batch at the next step (continuous batching).
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "engine/kv_cache_manager.h"  // KvCacheManager
#include "engine/sequence.h"          // Sequence

namespace quench {

struct SchedulerConfig {
  int max_num_seqs = 256;             ///< sequences running at once (a request with n > 1 reserves n)
  int max_num_batched_tokens = 2048;  ///< tokens per step
  bool enable_chunked_prefill = true; ///< else a prompt is scheduled whole or not at all
};

/// One sequence's share of a step.
struct ScheduledSeq {
  Sequence* seq = nullptr;
  int start_pos = 0;          ///< = seq->num_computed_tokens at scheduling (after any prefix hit)
  int num_new_tokens = 0;     ///< tokens fed this step: positions start_pos .. start_pos + num_new_tokens - 1
  bool want_logits = false;   ///< the slice ends at the last token: sample the next one
};

/// The plan of one step (vLLM's SchedulerOutput).
struct SchedulerOutput {
  std::vector<ScheduledSeq> scheduled;  ///< batch order: running first, then newly admitted
  std::vector<Sequence*> preempted;     ///< preempted in this step (now waiting, holding no blocks)
  int num_batched_tokens = 0;           ///< sum of num_new_tokens
  int prefix_cache_queries = 0;         ///< tokens of newly admitted sequences looked up in the prefix cache
  int prefix_cache_hits = 0;            ///< of which found
  bool empty() const { return scheduled.empty(); }
};

class Scheduler {
 public:
  /// Throws InvalidArgument when a limit is < 1.
  Scheduler(const SchedulerConfig& cfg, KvCacheManager& kv);

  /// Appends a sequence holding no blocks to the waiting queue.
  void add_waiting(Sequence* seq);
  /// Adds a sequence that already holds blocks (a fork) to the running batch.
  void add_running(Sequence* seq);
  /// Plans the next step; allocates KV slots for every scheduled sequence.
  SchedulerOutput schedule();
  /// Removes a sequence from whichever queue holds it, sets its (finished) status and frees its
  /// blocks. No-op for a sequence in neither queue.
  void finish(Sequence* seq, SequenceStatus status);

  int num_running() const { return static_cast<int>(running_.size()); }
  int num_waiting() const { return static_cast<int>(waiting_.size()); }
  /// Running sequences plus slots reserved for forks of not-yet-prefilled parents.
  int num_reserved_seqs() const;
  bool has_work() const { return !running_.empty() || !waiting_.empty(); }
  const std::vector<Sequence*>& running() const { return running_; }
  const std::deque<Sequence*>& waiting() const { return waiting_; }

 private:
  void preempt(Sequence* seq);

  SchedulerConfig cfg_;
  KvCacheManager& kv_;
  std::vector<Sequence*> running_;  ///< admission order, oldest first
  std::deque<Sequence*> waiting_;
};

}  // namespace quench
