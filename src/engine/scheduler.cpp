// quench/engine/scheduler.cpp: token budget, chunked prefill, preemption by recompute.
#include "engine/scheduler.h"

#include <algorithm>
#include <unordered_set>

#include <fmt/format.h>

#include "core/error.h"

namespace quench {

Scheduler::Scheduler(const SchedulerConfig& cfg, KvCacheManager& kv) : cfg_(cfg), kv_(kv) {
  if (cfg_.max_num_seqs < 1) throw InvalidArgument(fmt::format("max_num_seqs must be >= 1, got {}", cfg_.max_num_seqs));
  if (cfg_.max_num_batched_tokens < 1)
    throw InvalidArgument(fmt::format("max_num_batched_tokens must be >= 1, got {}", cfg_.max_num_batched_tokens));
}

void Scheduler::add_waiting(Sequence* seq) {
  seq->status = SequenceStatus::kWaiting;
  waiting_.push_back(seq);
}

void Scheduler::add_running(Sequence* seq) {
  seq->status = SequenceStatus::kRunning;
  running_.push_back(seq);
}

int Scheduler::num_reserved_seqs() const {
  int n = 0;
  for (const Sequence* s : running_) n += 1 + s->num_pending_forks;
  return n;
}

void Scheduler::preempt(Sequence* seq) {
  kv_.free(*seq);
  seq->num_computed_tokens = 0;
  seq->status = SequenceStatus::kPreempted;
  ++seq->num_preemptions;
  waiting_.push_front(seq);
}

void Scheduler::finish(Sequence* seq, SequenceStatus status) {
  auto it = std::find(running_.begin(), running_.end(), seq);
  if (it != running_.end()) {
    running_.erase(it);
  } else {
    auto wt = std::find(waiting_.begin(), waiting_.end(), seq);
    if (wt != waiting_.end()) waiting_.erase(wt);
  }
  kv_.free(*seq);  // no-op when it holds nothing
  seq->status = status;
}

SchedulerOutput Scheduler::schedule() {
  SchedulerOutput out;
  int budget = cfg_.max_num_batched_tokens;
  std::unordered_set<Sequence*> scheduled;

  // 1. running: decodes first, then unfinished prompts (chunked prefill), each in admission order.
  std::vector<Sequence*> order;
  for (Sequence* s : running_) if (s->num_tokens() - s->num_computed_tokens == 1) order.push_back(s);
  for (Sequence* s : running_) if (s->num_tokens() - s->num_computed_tokens > 1) order.push_back(s);
  for (Sequence* seq : order) {
    if (budget <= 0) break;
    if (seq->status != SequenceStatus::kRunning) continue;  // preempted earlier in this loop
    int num_new = std::min(seq->num_tokens() - seq->num_computed_tokens, budget);
    if (num_new <= 0) continue;
    bool ok = false;
    while (!(ok = kv_.allocate_slots(*seq, num_new))) {
      // Preempt the newest running sequence not yet scheduled in this step (possibly seq itself).
      auto victim_it = std::find_if(running_.rbegin(), running_.rend(),
                                    [&](Sequence* s) { return !scheduled.count(s); });
      Sequence* victim = *victim_it;  // seq itself is never scheduled yet, so one exists
      running_.erase(std::next(victim_it).base());
      preempt(victim);
      out.preempted.push_back(victim);
      if (victim == seq) break;
    }
    if (!ok) continue;
    scheduled.insert(seq);
    out.scheduled.push_back({seq, seq->num_computed_tokens, num_new,
                             seq->num_computed_tokens + num_new == seq->num_tokens()});
    out.num_batched_tokens += num_new;
    budget -= num_new;
  }

  // 2. waiting, unless this step had to preempt (no room to spare).
  if (out.preempted.empty()) {
    while (!waiting_.empty() && budget > 0) {
      Sequence* seq = waiting_.front();
      if (num_reserved_seqs() + 1 + seq->num_pending_forks > cfg_.max_num_seqs) break;
      PrefixHit hit = kv_.find_prefix(*seq);
      const int remaining = seq->num_tokens() - hit.num_tokens;
      if (!cfg_.enable_chunked_prefill && remaining > budget) break;
      const int num_new = std::min(remaining, budget);
      if (!kv_.allocate_slots(*seq, num_new, &hit)) break;
      waiting_.pop_front();
      seq->status = SequenceStatus::kRunning;
      running_.push_back(seq);
      out.prefix_cache_queries += seq->num_tokens();
      out.prefix_cache_hits += hit.num_tokens;
      out.scheduled.push_back({seq, seq->num_computed_tokens, num_new,
                               seq->num_computed_tokens + num_new == seq->num_tokens()});
      out.num_batched_tokens += num_new;
      budget -= num_new;
    }
  }
  return out;
}

}  // namespace quench
