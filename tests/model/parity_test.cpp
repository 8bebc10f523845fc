// tests/model/parity_test.cpp: greedy decoding of the embedded small model with CpuForward
// reproduces transformers' fp32 greedy generations token for token (issue 3 item 7).
// Goldens: tests/data/small_model/greedy_goldens.jsonl, made by tools/fixtures/train_small_model.py
// (`greedy_single`: unbatched fp32 eager forward with KV cache, argmax, at most 48 new tokens,
// stopping after any of the ids 1, 106, 50, which are kept in output_ids).
#include <algorithm>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "backend/cpu/forward.h"
#include "backend/cpu/runner.h"
#include "model/model.h"
#include "model/naive_reference.h"

namespace quench {
namespace {

const std::filesystem::path kSource(QUENCH_SOURCE_DIR);
constexpr int kMaxNewTokens = 48;
const int32_t kStopIds[] = {1, 106, 50};

struct GreedyGolden {
  std::string prompt_text;
  std::vector<int32_t> prompt_ids, output_ids;
  double min_margin = 0;
};

std::vector<GreedyGolden> read_goldens(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<GreedyGolden> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line);
    GreedyGolden g;
    g.prompt_text = j.at("prompt_text").get<std::string>();
    g.prompt_ids = j.at("prompt_ids").get<std::vector<int32_t>>();
    g.output_ids = j.at("output_ids").get<std::vector<int32_t>>();
    g.min_margin = j.value("min_margin", 0.0);
    out.push_back(std::move(g));
  }
  return out;
}

/// Greedy decode: prefill the prompt, then one token per step through the KV cache.
std::vector<int32_t> greedy(CpuForward& fwd, const std::vector<int32_t>& prompt) {
  const int vocab = fwd.config().vocab_size;
  std::vector<float> logits(vocab);
  auto cache = fwd.new_cache(static_cast<int>(prompt.size()) + kMaxNewTokens);
  fwd.forward(prompt, 0, cache, logits.data());
  std::vector<int32_t> out;
  for (int step = 0; step < kMaxNewTokens; ++step) {
    const int32_t next = test::argmax(logits.data(), vocab);  // first maximum, as torch.argmax
    out.push_back(next);
    if (std::find(std::begin(kStopIds), std::end(kStopIds), next) != std::end(kStopIds)) break;
    fwd.forward({&next, 1}, cache.length(), cache, logits.data());
  }
  return out;
}

TEST(SmallModelParity, GreedyMatchesTransformersTokenForToken) {
  const auto model_dir = kSource / "models/gemma4-tiny-it";
  const auto goldens_path = kSource / "tests/data/small_model/greedy_goldens.jsonl";
  ASSERT_TRUE(std::filesystem::exists(model_dir / "config.json")) << model_dir;
  ASSERT_TRUE(std::filesystem::exists(goldens_path)) << goldens_path;
  auto model = Model::load(model_dir);
  const auto goldens = read_goldens(goldens_path);
  ASSERT_GE(goldens.size(), 10u);
  CpuForward fwd(*model);
  int exact = 0;
  for (size_t i = 0; i < goldens.size(); ++i) {
    const GreedyGolden& g = goldens[i];
    const auto got = greedy(fwd, g.prompt_ids);
    size_t first_diff = 0;
    while (first_diff < std::min(got.size(), g.output_ids.size()) && got[first_diff] == g.output_ids[first_diff])
      ++first_diff;
    const bool same = got == g.output_ids;
    exact += same;
    EXPECT_TRUE(same) << "prompt " << i << " (min top1-top2 margin in transformers " << g.min_margin
                      << "): first difference at output token " << first_diff << " of " << g.output_ids.size()
                      << "\n  prompt: " << g.prompt_text.substr(0, 120);
  }
  std::printf("  %d / %zu greedy generations identical to transformers\n", exact, goldens.size());
}

// The same goldens through the engine's path: CpuModelRunner with a paged fp32 KV cache, all
// sequences of a group in one batch per step (prefills together, then one decode token each).
TEST(SmallModelParity, BatchedPagedRunnerMatchesTransformers) {
  const auto model_dir = kSource / "models/gemma4-tiny-it";
  const auto goldens = read_goldens(kSource / "tests/data/small_model/greedy_goldens.jsonl");
  ASSERT_GE(goldens.size(), 16u);
  std::shared_ptr<const Model> model = Model::load(model_dir);
  const int vocab = model->config().vocab_size, bs = 16, n_seqs = 16;
  KvCacheConfig kv;
  kv.block_size = bs;
  kv.dtype = KvCacheDtype::kFP32;
  kv.num_blocks_full = kv.num_blocks_sliding = 0;
  struct Seq {
    std::vector<int32_t> tokens;  // prompt + generated
    int computed = 0;             // tokens whose K/V are cached
    std::vector<int32_t> full, sliding, out;
    bool done = false;
  };
  std::vector<Seq> seqs(n_seqs);
  for (int i = 0; i < n_seqs; ++i) {
    seqs[i].tokens = goldens[i].prompt_ids;
    const int blocks = (static_cast<int>(goldens[i].prompt_ids.size()) + kMaxNewTokens + bs - 1) / bs;
    for (int b = 0; b < blocks; ++b) {
      seqs[i].full.push_back(kv.num_blocks_full++);
      seqs[i].sliding.push_back(kv.num_blocks_sliding++);
    }
  }
  CpuModelRunner runner(model, kv);
  while (true) {
    std::vector<SeqStep> batch;
    std::vector<Seq*> active;
    for (Seq& s : seqs) {
      if (s.done) continue;
      SeqStep step;
      step.tokens = std::span<const int32_t>(s.tokens).subspan(s.computed);
      step.start_pos = s.computed;
      step.block_table_full = s.full;
      step.block_table_sliding = s.sliding;
      batch.push_back(step);
      active.push_back(&s);
    }
    if (batch.empty()) break;
    std::vector<float> logits(batch.size() * vocab);
    runner.execute(batch, logits);
    for (size_t i = 0; i < active.size(); ++i) {
      Seq& s = *active[i];
      s.computed = static_cast<int>(s.tokens.size());
      const int32_t next = test::argmax(logits.data() + i * vocab, vocab);
      s.out.push_back(next);
      s.tokens.push_back(next);
      s.done = std::find(std::begin(kStopIds), std::end(kStopIds), next) != std::end(kStopIds) ||
               static_cast<int>(s.out.size()) == kMaxNewTokens;
    }
  }
  for (int i = 0; i < n_seqs; ++i) EXPECT_EQ(seqs[i].out, goldens[i].output_ids) << "prompt " << i;
}

}  // namespace
}  // namespace quench
