// tests/engine/sampler_test.cpp: each logits processor against hand-computed values, truncation,
// logprobs of the sampled distribution, seeded determinism and the draw's distribution.
// Reference numbers: Python 3.11 math (log-sum-exp of the listed logits), printed to 1e-6.
#include "engine/sampler.h"

#include <cmath>
#include <limits>
#include <map>
#include <numeric>

#include <gtest/gtest.h>

#include "core/error.h"

namespace quench {
namespace {

const std::vector<float> kLogits{1.0f, 2.0f, -1.0f, 0.5f, 3.0f};
const float kInf = std::numeric_limits<float>::infinity();

struct Fixture {
  SamplingParams p;
  std::unordered_set<int32_t> seen;
  std::unordered_map<int32_t, int> counts;
  SamplerSeqState st(int num_out = 0, uint64_t seed = 1, int index = 0) {
    SamplerSeqState s;
    s.params = &p;
    s.seen_ids = &seen;
    s.output_counts = &counts;
    s.num_output_tokens = num_out;
    s.seed = seed;
    s.index = index;
    return s;
  }
};

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  Fixture f;
  f.p.repetition_penalty = 2.0f;
  f.seen = {1, 2};
  Sampler s(5, {}, {});
  std::vector<float> row = kLogits;
  s.apply_processors(row, f.st());
  EXPECT_FLOAT_EQ(row[1], 1.0f);   // 2 / 2
  EXPECT_FLOAT_EQ(row[2], -2.0f);  // -1 * 2
  EXPECT_FLOAT_EQ(row[0], 1.0f);   // unseen: unchanged
}

TEST(Sampler, FrequencyAndPresencePenaltiesActOnOutputCounts) {
  Fixture f;
  f.p.frequency_penalty = 0.5f;
  f.p.presence_penalty = 0.25f;
  f.counts = {{4, 2}, {0, 1}};
  f.seen = {4, 0, 3};  // 3 only in the prompt: no OpenAI penalty
  Sampler s(5, {}, {});
  std::vector<float> row = kLogits;
  s.apply_processors(row, f.st(3));
  EXPECT_FLOAT_EQ(row[4], 1.75f);  // 3 - 0.5*2 - 0.25
  EXPECT_FLOAT_EQ(row[0], 0.25f);  // 1 - 0.5 - 0.25
  EXPECT_FLOAT_EQ(row[3], 0.5f);
}

TEST(Sampler, LogitBiasIsClampedAndSuppressionAndMinTokensMask) {
  Fixture f;
  f.p.logit_bias = {{0, 5.0f}, {2, 150.0f}};
  f.p.min_tokens = 2;
  f.p.stop_token_ids = {3};
  Sampler s(5, /*suppress=*/{1}, /*eos=*/{4});
  std::vector<float> row = kLogits;
  s.apply_processors(row, f.st(1));
  EXPECT_FLOAT_EQ(row[0], 6.0f);
  EXPECT_FLOAT_EQ(row[2], 99.0f);  // -1 + 100
  EXPECT_EQ(row[1], -kInf);         // suppressed
  EXPECT_EQ(row[4], -kInf);         // EOS under min_tokens
  EXPECT_EQ(row[3], -kInf);         // stop id under min_tokens
  row = kLogits;
  s.apply_processors(row, f.st(2));  // min_tokens reached
  EXPECT_FLOAT_EQ(row[4], 3.0f);
  EXPECT_FLOAT_EQ(row[3], 0.5f);
}

TEST(Sampler, GreedyTakesTheArgmaxAndReportsLogprobsOfThePenalisedRow) {
  Fixture f;
  f.p.temperature = 0.0f;
  f.p.logprobs = 2;
  Sampler s(5, {}, {});
  SampleResult r = s.sample(kLogits, f.st());
  EXPECT_EQ(r.token_id, 4);
  ASSERT_TRUE(r.logprob);
  EXPECT_NEAR(r.logprob->logprob, -0.472261, 1e-5);
  ASSERT_EQ(r.logprob->top.size(), 2u);
  EXPECT_EQ(r.logprob->top[0].first, 4);
  EXPECT_EQ(r.logprob->top[1].first, 1);
  EXPECT_NEAR(r.logprob->top[1].second, -1.472261, 1e-5);
  // Ties: lowest id.
  std::vector<float> tie{0.0f, 5.0f, 5.0f, 1.0f, 0.0f};
  EXPECT_EQ(s.sample(tie, f.st()).token_id, 1);
}

TEST(Sampler, TemperatureScalesTheLogprobs) {
  Fixture f;
  f.p.temperature = 0.5f;
  f.p.logprobs = 0;
  Sampler s(5, {}, {});
  for (uint64_t seed = 0; seed < 20; ++seed) {
    SampleResult r = s.sample(kLogits, f.st(0, seed));
    const double expect[] = {-4.149044, -2.149044, -8.149044, -5.149044, -0.149044};
    EXPECT_NEAR(r.logprob->logprob, expect[r.token_id], 1e-5);
    EXPECT_TRUE(r.logprob->top.empty());
  }
}

TEST(Sampler, TopKKeepsTheKBestAndLogprobsAreOfTheTruncatedDistribution) {
  Fixture f;
  f.p.top_k = 2;
  f.p.logprobs = 3;
  Sampler s(5, {}, {});
  for (uint64_t seed = 0; seed < 50; ++seed) {
    SampleResult r = s.sample(kLogits, f.st(0, seed));
    EXPECT_TRUE(r.token_id == 4 || r.token_id == 1) << r.token_id;
    ASSERT_EQ(r.logprob->top.size(), 3u);
    EXPECT_NEAR(r.logprob->top[0].second, -0.313262, 1e-5);
    EXPECT_NEAR(r.logprob->top[1].second, -1.313262, 1e-5);
    EXPECT_EQ(r.logprob->top[2].second, -9999.0f);  // truncated away: -inf clamped
  }
}

TEST(Sampler, TopPKeepsTheSmallestSetReachingTheMass) {
  // probabilities: 0.0844, 0.2294, 0.0114, 0.0512, 0.6236
  Fixture f;
  f.p.top_p = 0.6f;
  Sampler s(5, {}, {});
  for (uint64_t seed = 0; seed < 30; ++seed) EXPECT_EQ(s.sample(kLogits, f.st(0, seed)).token_id, 4);
  f.p.top_p = 0.7f;  // 0.6236 < 0.7 -> also id 1; 0.8530 >= 0.7 -> stop
  f.p.logprobs = 0;
  std::map<int, int> seen;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    SampleResult r = s.sample(kLogits, f.st(0, seed));
    ++seen[r.token_id];
    EXPECT_NEAR(r.logprob->logprob, r.token_id == 4 ? -0.313262 : -1.313262, 1e-5);
  }
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_TRUE(seen.count(1) && seen.count(4));
}

TEST(Sampler, MinPDropsTokensBelowAFractionOfTheBest) {
  Fixture f;
  f.p.min_p = 0.3f;  // p/p_max: id1 e^-1 = 0.37 kept; id0 e^-2 = 0.14 dropped
  f.p.logprobs = 0;
  Sampler s(5, {}, {});
  std::map<int, int> seen;
  for (uint64_t seed = 0; seed < 200; ++seed) ++seen[s.sample(kLogits, f.st(0, seed)).token_id];
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_TRUE(seen.count(1) && seen.count(4));
}

TEST(Sampler, SeededDrawsAreReproducibleAndFollowTheDistribution) {
  Fixture f;
  Sampler s(5, {}, {});
  // Same (seed, index, step) -> same token; the draw depends on nothing else.
  for (int step = 0; step < 20; ++step)
    EXPECT_EQ(s.sample(kLogits, f.st(step, 42, 1)).token_id, s.sample(kLogits, f.st(step, 42, 1)).token_id);
  // Frequencies over many steps match softmax(kLogits) (5 sigma of a binomial with n = 20000).
  const double probs[] = {0.0843939, 0.2294063, 0.0114215, 0.0511875, 0.6235909};
  const int n = 20000;
  int count[5] = {0, 0, 0, 0, 0};
  for (int step = 0; step < n; ++step) ++count[s.sample(kLogits, f.st(step, 7, 0)).token_id];
  for (int i = 0; i < 5; ++i) {
    const double sd = std::sqrt(n * probs[i] * (1 - probs[i]));
    EXPECT_NEAR(count[i], n * probs[i], 5 * sd) << "id " << i;
  }
  // Different indices (n > 1) give different streams.
  int differ = 0;
  for (int step = 0; step < 50; ++step)
    differ += s.sample(kLogits, f.st(step, 42, 0)).token_id != s.sample(kLogits, f.st(step, 42, 1)).token_id;
  EXPECT_GT(differ, 5);
}

TEST(Sampler, SeededUniformIsInTheUnitInterval) {
  double lo = 1, hi = 0, sum = 0;
  for (uint64_t i = 0; i < 10000; ++i) {
    const double u = seeded_uniform(3, 0, i);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    lo = std::min(lo, u);
    hi = std::max(hi, u);
    sum += u;
  }
  EXPECT_LT(lo, 0.001);
  EXPECT_GT(hi, 0.999);
  EXPECT_NEAR(sum / 10000, 0.5, 0.01);
  EXPECT_NE(seeded_uniform(3, 0, 0), seeded_uniform(4, 0, 0));
}

TEST(Sampler, RejectsAWrongRowLengthAndAFullyMaskedRow) {
  Fixture f;
  Sampler s(5, {0, 1, 2, 3, 4}, {});
  EXPECT_THROW(s.sample(std::vector<float>(4, 0.0f), f.st()), InvalidArgument);
  EXPECT_THROW(s.sample(kLogits, f.st()), InvalidArgument);
}

TEST(SamplingParams, ValidateNamesTheField) {
  auto msg = [](SamplingParams p) {
    try {
      p.validate(100, 50);
    } catch (const InvalidArgument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  SamplingParams p;
  EXPECT_EQ(msg(p), "");
  p.top_p = 0.0f;
  EXPECT_NE(msg(p).find("top_p must be in (0, 1], got 0"), std::string::npos);
  p = {};
  p.temperature = -1;
  EXPECT_NE(msg(p).find("temperature"), std::string::npos);
  p = {};
  p.top_k = -2;
  EXPECT_NE(msg(p).find("top_k"), std::string::npos);
  p = {};
  p.presence_penalty = 3;
  EXPECT_NE(msg(p).find("presence_penalty must be in [-2, 2]"), std::string::npos);
  p = {};
  p.repetition_penalty = 0;
  EXPECT_NE(msg(p).find("repetition_penalty"), std::string::npos);
  p = {};
  p.max_tokens = 0;
  EXPECT_NE(msg(p).find("max_tokens must be at least 1"), std::string::npos);
  p = {};
  p.stop = {"a", ""};
  EXPECT_NE(msg(p).find("stop[1]"), std::string::npos);
  p = {};
  p.logprobs = 21;
  EXPECT_NE(msg(p).find("logprobs"), std::string::npos);
  p = {};
  p.logit_bias = {{50, 1.0f}};
  EXPECT_NE(msg(p).find("out-of-vocab"), std::string::npos);
  p = {};
  p.n = 0;
  EXPECT_NE(msg(p).find("n must be at least 1"), std::string::npos);
  p = {};
  p.min_p = 1.5f;
  EXPECT_NE(msg(p).find("min_p"), std::string::npos);
}

}  // namespace
}  // namespace quench

namespace quench {
namespace {

TEST(Sampler, GreedyFastPathSkipsSuppressedIds) {
  Fixture f;
  f.p.temperature = 0.0f;
  Sampler s(5, /*suppress=*/{4}, {});
  EXPECT_EQ(s.sample(kLogits, f.st()).token_id, 1);  // 4 is the argmax but suppressed
}

TEST(Sampler, TopPOnALargeFlatVocabularyMatchesAFullSort) {
  // 3000 ids with slowly decreasing logits: reaching top_p = 0.9 takes far more than 64 ids,
  // so the head of the ranking must grow. Reference: full sort in the test.
  const int V = 3000;
  std::vector<float> row(V);
  for (int i = 0; i < V; ++i) row[static_cast<size_t>(i)] = -0.001f * static_cast<float>((i * 7919) % V);
  std::vector<int> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return row[a] != row[b] ? row[a] > row[b] : a < b; });
  double total = 0;
  for (float v : row) total += std::exp(static_cast<double>(v));
  std::vector<bool> kept(V, false);
  double before = 0, kept_mass = 0;
  for (int j = 0; j < V; ++j) {
    if (j > 0 && before >= 0.9 * total) break;
    kept[static_cast<size_t>(order[j])] = true;
    before += std::exp(static_cast<double>(row[order[j]]));
  }
  kept_mass = before;
  int n_kept = 0;
  for (bool k : kept) n_kept += k;
  ASSERT_GT(n_kept, 1000);

  Fixture f;
  f.p.top_p = 0.9f;
  f.p.logprobs = 0;
  Sampler s(V, {}, {});
  for (uint64_t seed = 0; seed < 200; ++seed) {
    SampleResult r = s.sample(row, f.st(0, seed));
    ASSERT_TRUE(kept[static_cast<size_t>(r.token_id)]) << r.token_id;
    EXPECT_NEAR(r.logprob->logprob, row[static_cast<size_t>(r.token_id)] - std::log(kept_mass), 1e-4);
  }
}

}  // namespace
}  // namespace quench

namespace quench {
namespace {

TEST(Sampler, TopKKeepsEveryIdTiedWithTheKth) {
  Fixture f;
  f.p.top_k = 2;
  f.p.logprobs = 0;
  Sampler s(5, {}, {});
  const std::vector<float> tied{1.0f, 3.0f, 3.0f, 2.0f, 3.0f};
  std::map<int, int> seen;
  for (uint64_t seed = 0; seed < 300; ++seed) {
    SampleResult r = s.sample(tied, f.st(0, seed));
    ++seen[r.token_id];
    EXPECT_NEAR(r.logprob->logprob, -std::log(3.0), 1e-5);  // three equal survivors
  }
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_TRUE(seen.count(1) && seen.count(2) && seen.count(4));
}

}  // namespace
}  // namespace quench
