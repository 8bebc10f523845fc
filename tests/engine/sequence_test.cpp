// tests/engine/sequence_test.cpp: block hashes follow the tokens, penalty bookkeeping, statuses.
#include "engine/sequence.h"

#include <gtest/gtest.h>

#include "engine/block_hash.h"

namespace quench {
namespace {

TEST(Sequence, BlockHashesCoverFullBlocksAndGrowWithOutput) {
  Sequence s(7, 2, {10, 11, 12, 13, 14, 15}, 4);
  EXPECT_EQ(s.seq_id(), 7);
  EXPECT_EQ(s.index(), 2);
  ASSERT_EQ(s.block_hashes().size(), 1u);
  EXPECT_EQ(s.block_hashes()[0], hash_block_tokens(kRootBlockHash, std::vector<int32_t>{10, 11, 12, 13}));
  s.append_token(16);
  EXPECT_EQ(s.block_hashes().size(), 1u);
  s.append_token(17);
  ASSERT_EQ(s.block_hashes().size(), 2u);  // prompt tail + output tokens form block 1
  EXPECT_EQ(s.block_hashes()[1], hash_block_tokens(s.block_hashes()[0], std::vector<int32_t>{14, 15, 16, 17}));
  EXPECT_EQ(s.num_prompt_tokens(), 6);
  EXPECT_EQ(s.num_output_tokens(), 2);
  EXPECT_EQ(std::vector<int32_t>(s.output_ids().begin(), s.output_ids().end()), (std::vector<int32_t>{16, 17}));
}

TEST(Sequence, CountsOutputTokensAndRemembersSeenIds) {
  Sequence s(0, 0, {5, 6}, 16);
  s.append_token(9);
  s.append_token(9);
  s.append_token(5);
  EXPECT_EQ(s.output_count(9), 2);
  EXPECT_EQ(s.output_count(5), 1);  // prompt occurrences do not count (OpenAI penalties)
  EXPECT_EQ(s.output_count(6), 0);
  EXPECT_EQ(s.seen_ids(), (std::unordered_set<int32_t>{5, 6, 9}));
  EXPECT_EQ(s.last_token(), 5);
}

TEST(SequenceStatus, FinishedStatesMapToFinishReasons) {
  EXPECT_FALSE(is_finished(SequenceStatus::kPreempted));
  EXPECT_TRUE(is_finished(SequenceStatus::kFinishedAborted));
  EXPECT_EQ(finish_reason_of(SequenceStatus::kFinishedStopped), FinishReason::kStop);
  EXPECT_EQ(finish_reason_of(SequenceStatus::kFinishedLength), FinishReason::kLength);
  EXPECT_EQ(finish_reason_of(SequenceStatus::kFinishedAborted), FinishReason::kAbort);
  EXPECT_FALSE(finish_reason_of(SequenceStatus::kRunning));
  EXPECT_STREQ(finish_reason_name(FinishReason::kLength), "length");
}

}  // namespace
}  // namespace quench
