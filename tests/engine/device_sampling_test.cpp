// tests/engine/device_sampling_test.cpp: the engine's device-sampling path (ModelRunner::
// execute_sample), run in CI through a fake runner that implements execute_sample on the CPU with
// sample_device_row_on_host; the adjustments that carry the CPU sampler's steps 1-3 to a device;
// and the fallback to host logits when a request needs top-N logprobs.
#include "engine/device_sampling.h"

#include <algorithm>
#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include "engine/engine.h"
#include "engine/fake_runner.h"
#include "tokenizer/generation_config.h"

namespace quench {
namespace {

using test::FakeRunner;
using test::reference_greedy;

constexpr int kVocab = 64;
constexpr int kWindow = 8;

/// FakeRunner plus execute_sample: the wanted logits rows are computed by FakeRunner::execute and
/// each draw by sample_device_row_on_host, so only ids (and logprobs) reach the engine.
class FakeDeviceRunner : public FakeRunner {
 public:
  using FakeRunner::FakeRunner;
  bool supports_device_sampling() const override { return true; }
  void execute(std::span<const SeqStep> batch, std::span<float> logits) override {
    if (!in_sample_) ++host_logits_steps;
    FakeRunner::execute(batch, logits);
  }
  void execute_sample(std::span<const SeqStep> batch, std::span<const DeviceSamplingRow> rows,
                      std::span<int32_t> out_tokens, std::span<float> out_logprobs) override {
    ++device_steps;
    size_t want = 0;
    for (const SeqStep& s : batch) want += s.want_logits ? 1 : 0;
    if (out_tokens.size() != rows.size() || (!out_logprobs.empty() && out_logprobs.size() != rows.size()))
      throw InvalidArgument("fake device runner: output sizes");
    std::vector<float> logits(want * kVocab);
    in_sample_ = true;
    execute(batch, logits);
    in_sample_ = false;
    // Rows sharing a logits row must carry equal adjustments (backend.h contract).
    for (size_t i = 0; i < rows.size(); ++i)
      for (size_t j = 0; j < i; ++j)
        if (rows[i].logits_row == rows[j].logits_row && rows[i].adjustments.size() != rows[j].adjustments.size())
          throw InvalidArgument("fake device runner: rows sharing a logits row differ in adjustments");
    Sampler sampler(kVocab, {}, {});
    for (size_t i = 0; i < rows.size(); ++i) {
      const size_t r = static_cast<size_t>(rows[i].logits_row);
      if (r >= want) throw InvalidArgument("fake device runner: logits_row out of range");
      max_adjustments = std::max(max_adjustments, rows[i].adjustments.size());
      auto [tok, lp] = sample_device_row_on_host(std::span<const float>(logits.data() + r * kVocab, kVocab), rows[i], sampler);
      out_tokens[i] = tok;
      if (!out_logprobs.empty()) out_logprobs[i] = lp;
    }
  }
  int device_steps = 0;
  int host_logits_steps = 0;
  size_t max_adjustments = 0;

 private:
  bool in_sample_ = false;
};

template <class R>
std::pair<std::unique_ptr<Engine>, R*> build(GenerationConfig gen = {}, EngineConfig cfg = {}) {
  auto r = std::make_unique<R>(kVocab, 4, 96, 96, kWindow, 256);
  R* raw = r.get();
  return {std::make_unique<Engine>(std::move(r), nullptr, std::move(gen), cfg), raw};
}

std::vector<int32_t> prompt_of(int len, int salt) {
  std::vector<int32_t> p(static_cast<size_t>(len));
  for (int i = 0; i < len; ++i) p[static_cast<size_t>(i)] = (i * 11 + salt * 5 + 1) % kVocab;
  return p;
}

SamplingParams rich_params() {
  SamplingParams p;
  p.temperature = 0.8f;
  p.top_k = 20;
  p.top_p = 0.9f;
  p.min_p = 0.02f;
  p.repetition_penalty = 1.3f;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.3f;
  p.logit_bias = {{5, 2.0f}, {7, -100.0f}, {9, 1.5f}};
  p.min_tokens = 4;
  p.stop_token_ids = {3};
  p.seed = 77;
  p.n = 2;
  p.max_tokens = 24;
  p.logprobs = 0;
  return p;
}

GenerationConfig gen_config() {
  GenerationConfig g;
  g.eos_token_ids = {2};
  g.suppress_tokens = {0, 1};
  return g;
}

TEST(DeviceSampling, GreedyGoesThroughTheDeviceAndEqualsTheOracle) {
  auto [engine, runner] = build<FakeDeviceRunner>();
  SamplingParams p;
  p.temperature = 0.0f;
  p.max_tokens = 16;
  p.ignore_eos = true;
  auto prompt = prompt_of(10, 1);
  auto res = generate(*engine, {prompt}, p);
  EXPECT_EQ(res[0].outputs[0].new_token_ids, reference_greedy(prompt, 16, kVocab, kWindow));
  EXPECT_EQ(runner->host_logits_steps, 0);  // no logits row ever crossed to the engine
  EXPECT_GT(runner->device_steps, 0);
  EXPECT_EQ(engine->metrics().num_device_sampled_steps, static_cast<uint64_t>(runner->device_steps));
}

TEST(DeviceSampling, PenaltiesBiasMasksAndSeedsGiveTheHostPathsTokensAndLogprobs) {
  // The same requests through the CPU sampler (FakeRunner: logits cross) and through the device
  // path (adjustments + DeviceSamplingRow): tokens and logprobs must agree exactly.
  const SamplingParams p = rich_params();
  std::vector<std::vector<int32_t>> prompts = {prompt_of(9, 2), prompt_of(14, 3), prompt_of(5, 4)};
  auto [host, host_runner] = build<FakeRunner>(gen_config());
  auto [dev, dev_runner] = build<FakeDeviceRunner>(gen_config());
  auto a = generate(*host, prompts, p);
  auto b = generate(*dev, prompts, p);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_GT(dev_runner->device_steps, 0);
  EXPECT_EQ(dev_runner->host_logits_steps, 0);
  EXPECT_GT(dev_runner->max_adjustments, 5u);  // masks, biases, seen ids, counts reached the device
  for (size_t r = 0; r < a.size(); ++r) {
    ASSERT_EQ(a[r].outputs.size(), 2u);
    ASSERT_EQ(b[r].outputs.size(), 2u);
    for (size_t k = 0; k < 2; ++k) {
      const SeqOutput& x = a[r].outputs[k];
      const SeqOutput& y = b[r].outputs[k];
      EXPECT_EQ(x.new_token_ids, y.new_token_ids) << "request " << r << " sequence " << k;
      ASSERT_EQ(x.new_logprobs.size(), y.new_logprobs.size());
      for (size_t i = 0; i < x.new_logprobs.size(); ++i) {
        EXPECT_EQ(x.new_logprobs[i].token_id, y.new_logprobs[i].token_id);
        EXPECT_FLOAT_EQ(x.new_logprobs[i].logprob, y.new_logprobs[i].logprob);
        EXPECT_TRUE(y.new_logprobs[i].top.empty());
      }
      // min_tokens: no stop id among the first 4 tokens; suppressed ids never appear.
      for (size_t i = 0; i < y.new_token_ids.size(); ++i) {
        EXPECT_GT(y.new_token_ids[i], 1);
        if (i < 4) {
          EXPECT_NE(y.new_token_ids[i], 3);
          EXPECT_NE(y.new_token_ids[i], 2);
        }
      }
    }
  }
  EXPECT_NE(b[0].outputs[0].new_token_ids, b[0].outputs[1].new_token_ids);  // n = 2 draws differ
}

TEST(DeviceSampling, TopLogprobsFallBackToHostLogitsForTheWholeStep) {
  auto [engine, runner] = build<FakeDeviceRunner>();
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 5;
  p.max_tokens = 6;
  p.ignore_eos = true;
  p.logprobs = 2;  // top-2 alternatives need the whole row
  auto res = generate(*engine, {prompt_of(7, 1)}, p);
  EXPECT_EQ(runner->device_steps, 0);
  EXPECT_GT(runner->host_logits_steps, 0);
  ASSERT_EQ(res[0].outputs[0].new_logprobs.size(), 6u);
  EXPECT_EQ(res[0].outputs[0].new_logprobs[0].top.size(), 2u);
}

TEST(DeviceSampling, EngineOptionTurnsTheDevicePathOff) {
  EngineConfig cfg;
  cfg.device_sampling = false;
  auto [engine, runner] = build<FakeDeviceRunner>(GenerationConfig{}, cfg);
  SamplingParams p;
  p.temperature = 0.0f;
  p.max_tokens = 4;
  p.ignore_eos = true;
  auto prompt = prompt_of(6, 2);
  auto res = generate(*engine, {prompt}, p);
  EXPECT_EQ(res[0].outputs[0].new_token_ids, reference_greedy(prompt, 4, kVocab, kWindow));
  EXPECT_EQ(runner->device_steps, 0);
  EXPECT_EQ(engine->metrics().num_device_sampled_steps, 0u);
}

TEST(DeviceSampling, ARowWithEveryIdMaskedFailsItsRequestOnly) {
  GenerationConfig g;
  for (int i = 0; i < kVocab - 1; ++i) g.suppress_tokens.push_back(i);
  g.eos_token_ids = {kVocab - 1};
  auto [engine, runner] = build<FakeDeviceRunner>(g);
  SamplingParams masked;
  masked.min_tokens = 2;  // the only unsuppressed id is EOS, masked under min_tokens
  masked.max_tokens = 4;
  masked.temperature = 0.0f;
  SamplingParams fine = masked;
  fine.min_tokens = 0;
  auto h1 = engine->add_request("masked", prompt_of(5, 1), masked);
  auto h2 = engine->add_request("fine", prompt_of(5, 2), fine);
  while (engine->step()) {
  }
  RequestOutput d;
  bool failed = false;
  while (h1->wait_next(d, std::chrono::milliseconds(0))) {
    if (d.error) {
      failed = true;
      EXPECT_NE(d.error->find("every token id is masked"), std::string::npos) << *d.error;
    }
  }
  EXPECT_TRUE(failed);
  std::vector<int32_t> toks;
  while (h2->wait_next(d, std::chrono::milliseconds(0))) {
    EXPECT_FALSE(d.error);
    for (auto& o : d.outputs) toks.insert(toks.end(), o.new_token_ids.begin(), o.new_token_ids.end());
  }
  EXPECT_EQ(toks, std::vector<int32_t>{kVocab - 1});  // EOS at once
  EXPECT_GT(runner->device_steps, 0);
}

TEST(DeviceSampling, AdjustmentsCarryStepsOneToThree) {
  SamplingParams p;
  p.repetition_penalty = 1.2f;
  p.frequency_penalty = 0.5f;
  p.presence_penalty = 0.25f;
  p.logit_bias = {{4, 3.0f}, {200, 1.0f}};  // 200 is outside the vocabulary: skipped
  p.min_tokens = 2;
  p.stop_token_ids = {6};
  std::unordered_set<int32_t> seen = {4, 8, 9};
  std::unordered_map<int32_t, int> counts = {{8, 3}, {9, 0}};
  SamplerSeqState st;
  st.params = &p;
  st.seen_ids = &seen;
  st.output_counts = &counts;
  st.num_output_tokens = 1;
  std::vector<LogitAdjustment> adj;
  const std::vector<int32_t> suppress = {0, -5};
  const std::vector<int32_t> eos = {1};
  build_logit_adjustments(st, suppress, eos, kVocab, adj);
  ASSERT_EQ(adj.size(), 6u);  // 0, 1, 4, 6, 8, 9
  const int32_t ids[] = {0, 1, 4, 6, 8, 9};
  for (size_t i = 0; i < adj.size(); ++i) EXPECT_EQ(adj[i].token_id, ids[i]);
  EXPECT_EQ(adj[0].flags, LogitAdjustment::kMasked);
  EXPECT_EQ(adj[1].flags, LogitAdjustment::kMasked);  // EOS under min_tokens
  EXPECT_EQ(adj[2].flags, LogitAdjustment::kSeen);
  EXPECT_EQ(adj[2].bias, 3.0f);
  EXPECT_EQ(adj[3].flags, LogitAdjustment::kMasked);  // stop_token_ids under min_tokens
  EXPECT_EQ(adj[4].output_count, 3);
  EXPECT_EQ(adj[5].output_count, 0);
  // Past min_tokens (or with ignore_eos for the EOS) the stop ids are free again.
  st.num_output_tokens = 2;
  build_logit_adjustments(st, suppress, eos, kVocab, adj);
  EXPECT_EQ(adj.size(), 4u);
  p.ignore_eos = true;
  st.num_output_tokens = 0;
  build_logit_adjustments(st, suppress, eos, kVocab, adj);
  EXPECT_TRUE(std::none_of(adj.begin(), adj.end(), [](const LogitAdjustment& a) { return a.token_id == 1; }));
  EXPECT_TRUE(std::any_of(adj.begin(), adj.end(), [](const LogitAdjustment& a) { return a.token_id == 6; }));

  // Applied to a random row they give exactly the CPU sampler's processed row.
  p.ignore_eos = false;
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  std::vector<float> row(kVocab);
  for (float& v : row) v = nd(rng);
  row[8] = -std::fabs(row[8]);  // a negative seen logit (multiplied by the penalty)
  row[9] = std::fabs(row[9]);
  std::vector<float> want = row;
  Sampler sampler(kVocab, suppress, eos);
  sampler.apply_processors(want, st);
  build_logit_adjustments(st, suppress, eos, kVocab, adj);
  const DeviceSamplingRow dr = make_device_sampling_row(st, 0, adj);
  std::vector<float> got = row;
  apply_logit_adjustments(got, adj, dr);
  for (int i = 0; i < kVocab; ++i) EXPECT_EQ(got[static_cast<size_t>(i)], want[static_cast<size_t>(i)]) << "id " << i;
}

TEST(DeviceSampling, OnlyTopLogprobsNeedHostLogits) {
  SamplingParams p;
  EXPECT_TRUE(can_sample_on_device(p));
  p.logprobs = 0;
  EXPECT_TRUE(can_sample_on_device(p));
  p.logit_bias = {{1, 2.0f}};
  p.repetition_penalty = 1.5f;
  EXPECT_TRUE(can_sample_on_device(p));
  p.logprobs = 1;
  EXPECT_FALSE(can_sample_on_device(p));
}

}  // namespace
}  // namespace quench
