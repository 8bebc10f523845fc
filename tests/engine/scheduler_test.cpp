// tests/engine/scheduler_test.cpp: token budget, chunked prefill, decode priority, max_num_seqs,
// prefix hits at admission, preemption of the newest running sequence.
#include "engine/scheduler.h"

#include <numeric>

#include <gtest/gtest.h>

namespace quench {
namespace {

KvCacheSpec spec(int blocks) {
  KvCacheSpec s;
  s.block_size = 4;
  s.num_blocks_full = blocks;
  return s;
}

std::unique_ptr<Sequence> make_seq(int64_t id, int len, int first = 100) {
  std::vector<int32_t> v(static_cast<size_t>(len));
  std::iota(v.begin(), v.end(), first);
  return std::make_unique<Sequence>(id, 0, v, 4);
}

/// Applies a step's results as the engine would: advance, sample a fixed token when wanted.
void complete(KvCacheManager& kv, const SchedulerOutput& out) {
  for (const auto& s : out.scheduled) {
    s.seq->num_computed_tokens = s.start_pos + s.num_new_tokens;
    if (s.want_logits) s.seq->append_token(1);
    kv.on_computed(*s.seq);
  }
}

TEST(Scheduler, ChunkedPrefillSplitsALongPromptUnderTheBudget) {
  KvCacheManager kv(spec(32), false);
  Scheduler sched({8, 8, true}, kv);
  auto a = make_seq(0, 20);
  sched.add_waiting(a.get());
  std::vector<int> chunks;
  std::vector<bool> logits;
  for (int i = 0; i < 3; ++i) {
    auto out = sched.schedule();
    ASSERT_EQ(out.scheduled.size(), 1u);
    chunks.push_back(out.scheduled[0].num_new_tokens);
    logits.push_back(out.scheduled[0].want_logits);
    complete(kv, out);
  }
  EXPECT_EQ(chunks, (std::vector<int>{8, 8, 4}));
  EXPECT_EQ(logits, (std::vector<bool>{false, false, true}));
  auto out = sched.schedule();  // decode
  ASSERT_EQ(out.scheduled.size(), 1u);
  EXPECT_EQ(out.scheduled[0].num_new_tokens, 1);
  EXPECT_EQ(out.scheduled[0].start_pos, 20);
}

TEST(Scheduler, DecodesAreScheduledBeforeAPrefillInProgressAndNewRequestsJoinBetweenSteps) {
  KvCacheManager kv(spec(32), false);
  Scheduler sched({8, 8, true}, kv);
  auto long_prompt = make_seq(0, 30);
  auto short_prompt = make_seq(1, 3, 500);
  sched.add_waiting(short_prompt.get());
  auto out = sched.schedule();
  complete(kv, out);  // short prompt prefilled, now decoding
  sched.add_waiting(long_prompt.get());
  out = sched.schedule();
  ASSERT_EQ(out.scheduled.size(), 2u);
  EXPECT_EQ(out.scheduled[0].seq, short_prompt.get());
  EXPECT_EQ(out.scheduled[0].num_new_tokens, 1);
  EXPECT_EQ(out.scheduled[1].seq, long_prompt.get());
  EXPECT_EQ(out.scheduled[1].num_new_tokens, 7);
  EXPECT_EQ(out.num_batched_tokens, 8);
  complete(kv, out);
  // Next step: the prompt in progress is running, still behind the decode.
  out = sched.schedule();
  ASSERT_EQ(out.scheduled.size(), 2u);
  EXPECT_EQ(out.scheduled[0].seq, short_prompt.get());
  EXPECT_EQ(out.scheduled[1].num_new_tokens, 7);
}

TEST(Scheduler, WithoutChunkedPrefillAPromptWaitsForAWholeBudget) {
  KvCacheManager kv(spec(32), false);
  Scheduler sched({8, 10, false}, kv);
  auto a = make_seq(0, 4), b = make_seq(1, 8, 300);
  sched.add_waiting(a.get());
  sched.add_waiting(b.get());
  auto out = sched.schedule();
  ASSERT_EQ(out.scheduled.size(), 1u);  // b (8) does not fit in the remaining 6
  complete(kv, out);
  out = sched.schedule();
  ASSERT_EQ(out.scheduled.size(), 2u);  // decode a (1) + b whole (8)
  EXPECT_EQ(out.scheduled[1].num_new_tokens, 8);
}

TEST(Scheduler, MaxNumSeqsCountsForkReservations) {
  KvCacheManager kv(spec(32), false);
  Scheduler sched({3, 100, true}, kv);
  auto a = make_seq(0, 4), b = make_seq(1, 4, 200), c = make_seq(2, 4, 300);
  a->num_pending_forks = 1;  // n = 2
  sched.add_waiting(a.get());
  sched.add_waiting(b.get());
  sched.add_waiting(c.get());
  auto out = sched.schedule();
  EXPECT_EQ(out.scheduled.size(), 2u);  // a (2 slots) + b
  EXPECT_EQ(sched.num_waiting(), 1);
  EXPECT_EQ(sched.num_reserved_seqs(), 3);
}

TEST(Scheduler, AdmissionStartsFromThePrefixCacheHit) {
  KvCacheManager kv(spec(32), true);
  Scheduler sched({8, 100, true}, kv);
  auto a = make_seq(0, 12);
  sched.add_waiting(a.get());
  complete(kv, sched.schedule());
  auto b = make_seq(1, 14);  // same first 12 tokens
  sched.add_waiting(b.get());
  auto out = sched.schedule();
  ASSERT_EQ(out.scheduled.size(), 2u);
  EXPECT_EQ(out.scheduled[1].start_pos, 12);
  EXPECT_EQ(out.scheduled[1].num_new_tokens, 2);
  EXPECT_EQ(out.prefix_cache_queries, 14);
  EXPECT_EQ(out.prefix_cache_hits, 12);
  EXPECT_EQ(b->blocks.full[0], a->blocks.full[0]);
}

TEST(Scheduler, PreemptsTheNewestRunningSequenceWhenBlocksRunOut) {
  // 4 blocks of 4 tokens: two sequences of 8 tokens hold 2 blocks each; the next decode of the
  // older one (position 8) needs a third block -> the newer one is preempted and recomputed later.
  KvCacheManager kv(spec(4), false);
  Scheduler sched({8, 100, true}, kv);
  auto a = make_seq(0, 8), b = make_seq(1, 8, 300);
  sched.add_waiting(a.get());
  sched.add_waiting(b.get());
  complete(kv, sched.schedule());  // both prefilled, 9 tokens each (one sampled)
  EXPECT_EQ(kv.full_pool().num_free_blocks(), 0);
  auto out = sched.schedule();
  ASSERT_EQ(out.preempted.size(), 1u);
  EXPECT_EQ(out.preempted[0], b.get());
  EXPECT_EQ(b->status, SequenceStatus::kPreempted);
  EXPECT_EQ(b->num_computed_tokens, 0);
  EXPECT_TRUE(b->blocks.full.empty());
  EXPECT_EQ(b->num_tokens(), 9);  // keeps its output: recomputed as a longer prompt
  ASSERT_EQ(out.scheduled.size(), 1u);
  EXPECT_EQ(out.scheduled[0].seq, a.get());
  EXPECT_EQ(sched.waiting().front(), b.get());
  complete(kv, out);
  // Preemption step admits nothing; once `a` finishes, `b` is recomputed whole (9 tokens).
  sched.finish(a.get(), SequenceStatus::kFinishedLength);
  out = sched.schedule();
  ASSERT_EQ(out.scheduled.size(), 1u);
  EXPECT_EQ(out.scheduled[0].seq, b.get());
  EXPECT_EQ(out.scheduled[0].num_new_tokens, 9);
  EXPECT_TRUE(out.scheduled[0].want_logits);
}

TEST(Scheduler, ASequenceThatCannotGrowPreemptsItself) {
  KvCacheManager kv(spec(2), false);
  Scheduler sched({8, 100, true}, kv);
  auto a = make_seq(0, 8);
  sched.add_waiting(a.get());
  complete(kv, sched.schedule());  // 8 computed tokens in 2 blocks, a 9th sampled
  auto out = sched.schedule();     // needs a third block: none anywhere
  EXPECT_EQ(out.preempted.size(), 1u);
  EXPECT_TRUE(out.scheduled.empty());
  EXPECT_EQ(kv.full_pool().num_free_blocks(), 2);
}

TEST(Scheduler, FinishRemovesFromEitherQueueAndFreesBlocks) {
  KvCacheManager kv(spec(8), false);
  Scheduler sched({8, 100, true}, kv);
  auto a = make_seq(0, 5), b = make_seq(1, 5, 200);
  sched.add_waiting(a.get());
  complete(kv, sched.schedule());
  sched.add_waiting(b.get());
  sched.finish(b.get(), SequenceStatus::kFinishedAborted);
  sched.finish(a.get(), SequenceStatus::kFinishedStopped);
  EXPECT_FALSE(sched.has_work());
  EXPECT_EQ(kv.full_pool().num_free_blocks(), 8);
  EXPECT_EQ(a->status, SequenceStatus::kFinishedStopped);
}

}  // namespace
}  // namespace quench
