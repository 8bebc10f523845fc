// tests/engine/engine_small_model_test.cpp: the 64 greedy goldens of the small model
// (models/gemma4-tiny-it, tests/data/small_model/greedy_goldens.jsonl: transformers fp32 eager,
// unbatched, max 48 new tokens, stopping at generation_config's eos ids, written by
// tools/fixtures/train_small_model.py on the GPU host) through the Engine on the CPU backend, all
// requests at once under continuous batching, chunked prefill, prefix caching and preemption.
// Token ids must match exactly, and the streamed text must equal the golden's decoded text.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "backend/cpu/runner.h"
#include "engine/engine.h"
#include "model/model.h"
#include "tokenizer/generation_config.h"
#include "tokenizer/tokenizer.h"

namespace quench {
namespace {

const std::filesystem::path kRoot(QUENCH_SOURCE_DIR);

struct Golden {
  std::string kind;
  std::vector<int32_t> prompt_ids, output_ids;
  std::string output_text;
};

std::vector<Golden> load_goldens() {
  std::ifstream f(kRoot / "tests/data/small_model/greedy_goldens.jsonl");
  std::vector<Golden> out;
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    out.push_back({j.at("kind"), j.at("prompt_ids").get<std::vector<int32_t>>(),
                   j.at("output_ids").get<std::vector<int32_t>>(), j.at("output_text")});
  }
  return out;
}

TEST(EngineSmallModel, GreedyGoldensUnderBatchingChunkingAndPreemption) {
  const auto dir = kRoot / "models/gemma4-tiny-it";
  ASSERT_TRUE(std::filesystem::exists(dir / "model.safetensors")) << dir;
  const auto goldens = load_goldens();
  ASSERT_EQ(goldens.size(), 64u);

  std::shared_ptr<const Model> model = Model::load(dir);
  KvCacheConfig kv;
  kv.block_size = 8;
  kv.num_blocks_full = 64;  // 512 tokens for 16 running sequences of up to 84 tokens: preemption
  kv.num_blocks_sliding = 64;
  kv.dtype = KvCacheDtype::kFP32;
  EngineConfig cfg;
  cfg.max_model_len = 128;
  cfg.max_num_seqs = 16;
  cfg.max_num_batched_tokens = 96;
  auto tok = std::make_shared<const Tokenizer>(Tokenizer::load(dir / "tokenizer.json"));
  Engine engine(std::make_unique<CpuModelRunner>(model, kv), tok, GenerationConfig::load(dir), cfg);

  SamplingParams p;
  p.temperature = 0.0f;
  p.max_tokens = 48;
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& g : goldens) prompts.push_back(g.prompt_ids);
  auto res = generate(engine, prompts, p);
  int exact = 0;
  for (size_t i = 0; i < goldens.size(); ++i) {
    const SeqOutput& o = res[i].outputs[0];
    EXPECT_EQ(o.new_token_ids, goldens[i].output_ids) << goldens[i].kind << " golden " << i;
    EXPECT_EQ(o.new_text, goldens[i].output_text) << goldens[i].kind << " golden " << i;
    const bool eos = !o.new_token_ids.empty() && engine.generation_config().is_eos(o.new_token_ids.back());
    EXPECT_EQ(o.finish_reason, eos ? FinishReason::kStop : FinishReason::kLength);
    exact += o.new_token_ids == goldens[i].output_ids;
  }
  EngineMetrics m = engine.metrics();
  std::printf("[ small model ] %d/64 goldens exact; %llu preemptions, prefix cache %llu/%llu tokens, %llu steps\n", exact,
              static_cast<unsigned long long>(m.num_preemptions), static_cast<unsigned long long>(m.prefix_cache_hits),
              static_cast<unsigned long long>(m.prefix_cache_queries), static_cast<unsigned long long>(m.num_steps));
  EXPECT_GT(m.num_preemptions, 0u);
  EXPECT_GT(m.prefix_cache_hits, 0u);  // the chat prompts share their template prefix
  EXPECT_EQ(m.kv_blocks_used, 0);
}

}  // namespace
}  // namespace quench
