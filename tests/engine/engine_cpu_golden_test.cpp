// tests/engine/engine_cpu_golden_test.cpp: the Engine on the real CPU backend (CpuModelRunner) and
// the tiny random Gemma 4 checkpoint of tests/data/golden/tiny-fp32 (12 layers, sliding window 8,
// vocab 512), whose reference logits come from transformers 5.17 (see that folder's README.md).
//  1. Teacher-forced golden: for every prefix ids[:k] of the reference input, the engine's greedy
//     next token equals argmax of transformers' logits at position k-1 and its logprob equals
//     log_softmax of those logits, with all 39 prompts batched together under a small token budget
//     (chunked prefill) and prefix caching (every prompt is a prefix of the others, so the full and
//     sliding KV groups are shared through the prefix cache).
//  2. Greedy generations under batching, chunked prefill and preemption (a KV cache too small for
//     all requests at once) equal the same requests run one at a time.
#include <cmath>
#include <filesystem>

#include <gtest/gtest.h>

#include "backend/cpu/runner.h"
#include "engine/engine.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "tokenizer/generation_config.h"

namespace quench {
namespace {

const std::filesystem::path kDir = std::filesystem::path(QUENCH_SOURCE_DIR) / "tests/data/golden/tiny-fp32";

std::unique_ptr<Engine> make_engine(std::shared_ptr<const Model> model, int blocks, EngineConfig cfg) {
  KvCacheConfig kv;
  kv.block_size = 4;
  kv.num_blocks_full = blocks;
  kv.num_blocks_sliding = blocks;
  kv.dtype = KvCacheDtype::kFP32;
  auto runner = std::make_unique<CpuModelRunner>(model, kv);
  GenerationConfig gen = GenerationConfig::load(kDir);
  return std::make_unique<Engine>(std::move(runner), nullptr, gen, cfg);
}

TEST(EngineCpuGolden, NextTokenOfEveryPrefixMatchesTransformers) {
  std::shared_ptr<const Model> model = Model::load(kDir);
  auto ref = SafetensorsFile::open(kDir / "reference.safetensors");
  std::vector<int32_t> ids;
  for (float v : ref->tensors().at("input_ids").to_f32()) ids.push_back(static_cast<int32_t>(v));
  const std::vector<float> logits = ref->tensors().at("logits").to_f32();
  const int vocab = model->config().vocab_size;
  ASSERT_EQ(logits.size(), ids.size() * static_cast<size_t>(vocab));

  EngineConfig cfg;
  cfg.max_model_len = 64;
  cfg.max_num_batched_tokens = 24;
  cfg.max_num_seqs = 8;
  auto engine = make_engine(model, 64, cfg);
  std::vector<std::vector<int32_t>> prompts;
  for (size_t k = 2; k <= ids.size(); ++k) prompts.emplace_back(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k));
  SamplingParams p;
  p.temperature = 0.0f;
  p.max_tokens = 1;
  p.ignore_eos = true;
  p.logprobs = 0;
  auto res = generate(*engine, prompts, p);
  int cached = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const float* row = logits.data() + (prompts[i].size() - 1) * static_cast<size_t>(vocab);
    int best = 0;
    double mx = row[0], sum = 0;
    for (int v = 1; v < vocab; ++v) {
      if (row[v] > row[best]) best = v;
      mx = std::max(mx, static_cast<double>(row[v]));
    }
    for (int v = 0; v < vocab; ++v) sum += std::exp(row[v] - mx);
    const auto& o = res[i].outputs[0];
    ASSERT_EQ(o.new_token_ids.size(), 1u);
    EXPECT_EQ(o.new_token_ids[0], best) << "prefix length " << prompts[i].size();
    ASSERT_EQ(o.new_logprobs.size(), 1u);
    EXPECT_NEAR(o.new_logprobs[0].logprob, row[best] - mx - std::log(sum), 1e-3) << "prefix length " << prompts[i].size();
    cached += res[i].num_cached_tokens;
  }
  EXPECT_GT(cached, 0) << "the prefix cache was never used";
  EXPECT_GT(engine->metrics().prefix_cache_hits, 0u);
}

TEST(EngineCpuGolden, GreedyUnderBatchingChunkingAndPreemptionEqualsOneAtATime) {
  std::shared_ptr<const Model> model = Model::load(kDir);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 6; ++i) {
    std::vector<int32_t> p{2};
    for (int j = 0; j < 5 + 7 * i; ++j) p.push_back(3 + (j * 37 + i * 101) % 509);
    prompts.push_back(p);
  }
  SamplingParams p;
  p.temperature = 0.0f;
  p.max_tokens = 20;
  p.ignore_eos = true;

  EngineConfig roomy;
  roomy.max_model_len = 64;
  auto single = make_engine(model, 128, roomy);
  std::vector<std::vector<int32_t>> expect;
  for (const auto& pr : prompts) expect.push_back(generate(*single, {pr}, p)[0].outputs[0].new_token_ids);

  EngineConfig tight;
  tight.max_model_len = 64;
  tight.max_num_batched_tokens = 12;
  tight.max_num_seqs = 6;
  auto crowded = make_engine(model, 24, tight);
  auto res = generate(*crowded, prompts, p);
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(res[i].outputs[0].new_token_ids, expect[i]) << "prompt " << i;
    EXPECT_EQ(res[i].outputs[0].new_token_ids.size(), 20u);
  }
  EXPECT_GT(crowded->metrics().num_preemptions, 0u);
  EXPECT_EQ(crowded->metrics().kv_blocks_used, 0);
}

}  // namespace
}  // namespace quench
