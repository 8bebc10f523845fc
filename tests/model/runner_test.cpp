// tests/model/runner_test.cpp: CpuModelRunner (paged KV cache, batched execute) against
// CpuForward on a random tiny checkpoint: chunked prefill of two interleaved sequences with
// block_size 4, sliding-window blocks outside the window passed as -1, KV dtypes, errors.
#include <numeric>

#include <gtest/gtest.h>

#include "backend/cpu/forward.h"
#include "backend/cpu/runner.h"
#include "core/error.h"
#include "model/model.h"
#include "model/naive_reference.h"
#include "model/tiny_checkpoint.h"

namespace quench {
namespace {

using test::kTinyVocab;
using test::kTinyWindow;

const std::vector<int32_t> kSeqA = {2, 5, 17, 33, 96, 0, 41, 8, 8, 71, 3, 60, 12, 29, 50, 1, 77, 4, 19};
const std::vector<int32_t> kSeqB = {2, 88, 7, 7, 7, 65, 14, 39, 92, 23, 11};

/// Engine-side bookkeeping of one sequence for the test: its block tables and chunk schedule.
struct TestSeq {
  const std::vector<int32_t>* tokens = nullptr;
  int chunk = 1;
  int pos = 0;
  std::vector<int32_t> full, sliding;
};

class TinyRunner : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = Model::load(test::write_tiny_checkpoint(tmp_));
    CpuForward fwd(*model_);
    for (const auto* seq : {&kSeqA, &kSeqB}) {
      auto cache = fwd.new_cache();
      expected_.emplace_back(seq->size() * kTinyVocab);
      fwd.forward(*seq, 0, cache, expected_.back().data(), nullptr, LogitsFor::kAll);
    }
  }

  /// Runs A (chunks of chunk_a) and B (chunks of chunk_b) interleaved in the same execute calls
  /// with block_size 4; returns the largest relative L2 error against CpuForward.
  double run_interleaved(KvCacheDtype dtype, int chunk_a, int chunk_b) {
    KvCacheConfig kv;
    kv.block_size = 4;
    kv.num_blocks_full = 16;
    kv.num_blocks_sliding = 16;
    kv.dtype = dtype;
    CpuModelRunner runner(model_, kv);
    EXPECT_EQ(runner.kv_cache_spec().sliding_window, kTinyWindow);
    EXPECT_EQ(runner.kv_cache_spec().block_size, 4);
    std::vector<TestSeq> seqs(2);
    seqs[0].tokens = &kSeqA;
    seqs[0].chunk = chunk_a;
    seqs[1].tokens = &kSeqB;
    seqs[1].chunk = chunk_b;
    // Physical blocks handed out in a scrambled order from each pool.
    std::vector<int32_t> free_full = {9, 3, 14, 0, 7, 11, 5, 1, 12, 15, 2, 6, 10, 4, 13, 8};
    std::vector<int32_t> free_sliding = free_full;
    std::reverse(free_sliding.begin(), free_sliding.end());
    double worst = 0;
    while (true) {
      std::vector<SeqStep> batch;
      std::vector<TestSeq*> in_batch;
      for (auto& s : seqs) {
        if (s.pos >= int(s.tokens->size())) continue;
        const int n = std::min<int>(s.chunk, s.tokens->size() - s.pos);
        const int last_block = (s.pos + n - 1) / 4;
        while (int(s.full.size()) <= last_block) {
          s.full.push_back(free_full.back());
          free_full.pop_back();
          s.sliding.push_back(free_sliding.back());
          free_sliding.pop_back();
        }
        // Sliding blocks wholly before the first key any query of this chunk can see are
        // released (-1, back to the pool): the runner must never read them.
        const int first_visible = std::max(0, s.pos - kTinyWindow + 1);
        for (int b = 0; b < first_visible / 4; ++b) {
          if (s.sliding[b] >= 0) free_sliding.insert(free_sliding.begin(), s.sliding[b]);
          s.sliding[b] = -1;
        }
        SeqStep step;
        step.tokens = std::span<const int32_t>(*s.tokens).subspan(s.pos, n);
        step.start_pos = s.pos;
        step.block_table_full = s.full;
        step.block_table_sliding = s.sliding;
        step.want_logits = true;
        batch.push_back(step);
        in_batch.push_back(&s);
      }
      if (batch.empty()) break;
      std::vector<float> logits(batch.size() * kTinyVocab);
      runner.execute(batch, logits);
      for (size_t i = 0; i < batch.size(); ++i) {
        TestSeq& s = *in_batch[i];
        s.pos += int(batch[i].tokens.size());
        const float* want = expected_[&s == &seqs[0] ? 0 : 1].data() + size_t(s.pos - 1) * kTinyVocab;
        const float* got = logits.data() + i * kTinyVocab;
        worst = std::max(worst, test::rel_l2(got, want, kTinyVocab));
        if (dtype == KvCacheDtype::kFP32) {
          EXPECT_EQ(test::argmax(got, kTinyVocab), test::argmax(want, kTinyVocab)) << "position " << s.pos - 1;
        }
      }
    }
    return worst;
  }

  test::TempDir tmp_{"runner"};
  std::shared_ptr<const Model> model_;
  std::vector<std::vector<float>> expected_;
};

TEST_F(TinyRunner, ChunkedPagedPrefillMatchesCpuForward) {
  EXPECT_LE(run_interleaved(KvCacheDtype::kFP32, 7, 3), 1e-5);
  EXPECT_LE(run_interleaved(KvCacheDtype::kFP32, 1, 4), 1e-5);  // pure decode for A
}

TEST_F(TinyRunner, NarrowKvDtypesStayClose) {
  const double bf16 = run_interleaved(KvCacheDtype::kBF16, 5, 2);
  EXPECT_GT(bf16, 0.0);  // the cache really rounds
  EXPECT_LE(bf16, 2e-2);
  const double fp8 = run_interleaved(KvCacheDtype::kFP8E4M3, 5, 2);
  EXPECT_GT(fp8, bf16);
  EXPECT_LE(fp8, 0.2);
}

TEST_F(TinyRunner, RejectsBadSteps) {
  KvCacheConfig kv;
  kv.block_size = 4;
  kv.num_blocks_full = 4;
  kv.num_blocks_sliding = 4;
  kv.dtype = KvCacheDtype::kFP32;
  CpuModelRunner runner(model_, kv);
  const std::vector<int32_t> table = {0, 1}, bad_block = {0, 9};
  const std::span<const int32_t> toks(kSeqA.data(), 8);
  SeqStep s{toks, 0, table, table, true};
  std::vector<float> logits(kTinyVocab);
  std::vector<float> wrong(kTinyVocab + 1);
  EXPECT_THROW(runner.execute({&s, 1}, wrong), InvalidArgument);  // logits size
  SeqStep b = s;
  b.block_table_full = bad_block;
  EXPECT_THROW(runner.execute({&b, 1}, logits), InvalidArgument);  // block id outside the pool
  b = s;
  b.block_table_full = std::span<const int32_t>(table.data(), 1);
  EXPECT_THROW(runner.execute({&b, 1}, logits), InvalidArgument);  // table too short
  runner.execute({&s, 1}, logits);
  // Position 8 sees keys 4..8 on sliding layers: block 0 may be released, block 1 may not.
  const std::vector<int32_t> t3 = {0, 1, 2}, s_ok = {-1, 1, 2}, s_bad = {0, -1, 2};
  const std::span<const int32_t> next(kSeqA.data() + 8, 1);
  SeqStep d{next, 8, t3, s_bad, true};
  EXPECT_THROW(runner.execute({&d, 1}, logits), InvalidArgument);
  d.block_table_sliding = s_ok;
  runner.execute({&d, 1}, logits);
  EXPECT_LE(test::rel_l2(logits.data(), expected_[0].data() + 8 * kTinyVocab, kTinyVocab), 1e-5);
  // A step without logits.
  SeqStep nl = d;
  nl.want_logits = false;
  EXPECT_NO_THROW(runner.execute({&nl, 1}, std::span<float>()));
}

}  // namespace
}  // namespace quench
