// tests/engine/engine_test.cpp: the Engine end to end on FakeRunner (fake_runner.h), whose logits
// come from the tokens it reads back from its paged KV cache: greedy outputs under continuous
// batching, chunked prefill, preemption, prefix caching and sliding-window release must equal the
// KV-free oracle; seeded sampling must not depend on batching; stops, aborts, failures, threads.
#include "engine/engine.h"

#include <cmath>
#include <numeric>
#include <thread>

#include <gtest/gtest.h>

#include "core/error.h"
#include "engine/fake_runner.h"
#include "engine/sampler.h"
#include "engine/test_tokenizer.h"
#include "tokenizer/generation_config.h"

namespace quench {
namespace {

using test::FakeRunner;
using test::reference_greedy;
using test::reference_logits;

constexpr int kVocab = 64;
constexpr int kWindow = 8;

struct Built {
  std::unique_ptr<Engine> engine;
  FakeRunner* runner = nullptr;
};

Built build(EngineConfig cfg, int full_blocks, int sliding_blocks, int max_pos = 128, GenerationConfig gen = {},
            bool with_tokenizer = false) {
  auto r = std::make_unique<FakeRunner>(kVocab, 4, full_blocks, sliding_blocks, kWindow, max_pos);
  Built b;
  b.runner = r.get();
  b.engine = std::make_unique<Engine>(std::move(r), with_tokenizer ? test::make_test_tokenizer() : nullptr,
                                      std::move(gen), cfg);
  return b;
}

std::vector<int32_t> prompt_of(int len, int salt) {
  std::vector<int32_t> p(static_cast<size_t>(len));
  for (int i = 0; i < len; ++i) p[static_cast<size_t>(i)] = (i * 7 + salt * 13 + 3) % kVocab;
  return p;
}

SamplingParams greedy(int max_tokens) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.max_tokens = max_tokens;
  p.ignore_eos = true;
  return p;
}

TEST(Engine, GreedyOutputEqualsTheOracle) {
  EngineConfig cfg;
  auto b = build(cfg, 64, 64);
  auto prompt = prompt_of(10, 1);
  auto res = generate(*b.engine, {prompt}, greedy(20));
  ASSERT_EQ(res.size(), 1u);
  ASSERT_TRUE(res[0].finished);
  const SeqOutput& o = res[0].outputs[0];
  EXPECT_EQ(o.new_token_ids, reference_greedy(prompt, 20, kVocab, kWindow));
  EXPECT_EQ(o.finish_reason, FinishReason::kLength);
  EXPECT_EQ(o.num_output_tokens, 20);
  EXPECT_EQ(res[0].num_prompt_tokens, 10);
  EXPECT_TRUE(o.new_text.empty());  // no tokenizer
}

struct Scenario {
  const char* name;
  EngineConfig cfg;
  int full_blocks, sliding_blocks;
  bool expect_preemption;
  bool expect_prefix_hits;  ///< blocks are cached after the step that computed them, so prompts
                            ///< admitted together in one step cannot hit each other
};

class EngineBatching : public ::testing::TestWithParam<Scenario> {};

TEST_P(EngineBatching, GreedyOutputsEqualSingleRequestOracle) {
  const Scenario& sc = GetParam();
  auto b = build(sc.cfg, sc.full_blocks, sc.sliding_blocks);
  // 10 prompts, lengths 3..45; prompts 5..9 share a 20-token prefix with prompt 4.
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 5; ++i) prompts.push_back(prompt_of(3 + 9 * i, i));
  for (int i = 5; i < 10; ++i) {
    auto p = prompt_of(20, 4);
    auto tail = prompt_of(2 + i, 50 + i);
    p.insert(p.end(), tail.begin(), tail.end());
    prompts.push_back(p);
  }
  const int max_len = b.engine->max_model_len();
  auto res = generate(*b.engine, prompts, greedy(24));
  for (size_t i = 0; i < prompts.size(); ++i) {
    const int expect_n = std::min<int>(24, max_len - static_cast<int>(prompts[i].size()));
    EXPECT_EQ(res[i].outputs[0].new_token_ids, reference_greedy(prompts[i], expect_n, kVocab, kWindow))
        << sc.name << " prompt " << i;
    EXPECT_EQ(res[i].outputs[0].finish_reason, FinishReason::kLength);
  }
  EngineMetrics m = b.engine->metrics();
  EXPECT_LE(b.runner->max_tokens_per_step, sc.cfg.max_num_batched_tokens);
  EXPECT_LE(b.runner->max_seqs_per_step, sc.cfg.max_num_seqs);
  EXPECT_GT(b.runner->max_seqs_per_step, 1) << "requests were never batched";
  if (sc.expect_preemption) EXPECT_GT(m.num_preemptions, 0u) << sc.name;
  if (sc.expect_prefix_hits) EXPECT_GT(m.prefix_cache_hits, 0u) << sc.name;
  if (!sc.cfg.enable_prefix_caching) EXPECT_EQ(m.prefix_cache_hits, 0u);
  EXPECT_EQ(m.kv_blocks_used, 0);
  EXPECT_EQ(m.num_requests_running, 0);
  EXPECT_EQ(m.num_requests_finished_length, 10u);
  EXPECT_EQ(m.generation_tokens, [&] {
    uint64_t n = 0;
    for (auto& r : res) n += r.outputs[0].new_token_ids.size();
    return n;
  }());
}

EngineConfig cfg_of(int seqs, int batched, bool prefix, bool chunked, int max_len = 64) {
  EngineConfig c;
  c.max_num_seqs = seqs;
  c.max_num_batched_tokens = batched;
  c.enable_prefix_caching = prefix;
  c.enable_chunked_prefill = chunked;
  c.max_model_len = max_len;
  return c;
}

INSTANTIATE_TEST_SUITE_P(
    Scenarios, EngineBatching,
    ::testing::Values(Scenario{"roomy", cfg_of(16, 256, true, true), 200, 200, false, false},
                      Scenario{"chunked_small_budget", cfg_of(4, 16, true, true), 200, 200, false, true},
                      Scenario{"preempting", cfg_of(8, 32, true, true), 17, 30, true, true},
                      Scenario{"preempting_no_prefix_cache", cfg_of(8, 32, false, true), 17, 30, true, false},
                      Scenario{"tight_sliding_pool", cfg_of(8, 16, true, true), 60, 8, true, true},
                      Scenario{"no_chunking", cfg_of(6, 64, true, false), 40, 40, false, true}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Engine, SeededSamplingDoesNotDependOnBatchingOrPreemption) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_p = 0.9f;
  p.seed = 1234;
  p.n = 3;
  p.max_tokens = 20;
  p.ignore_eos = true;
  auto prompt = prompt_of(13, 9);
  auto alone = build(cfg_of(16, 256, true, true), 100, 100);
  auto a = generate(*alone.engine, {prompt}, p);
  // Crowded: small budget and a small cache, with other (unseeded) requests around it.
  auto crowded = build(cfg_of(6, 16, true, true), 17, 30);
  SamplingParams other = p;
  other.seed.reset();
  other.n = 1;
  for (int i = 0; i < 4; ++i) crowded.engine->add_request("other-" + std::to_string(i), prompt_of(30, i), other);
  auto c = generate(*crowded.engine, {prompt}, p);
  ASSERT_EQ(a[0].outputs.size(), 3u);
  for (int k = 0; k < 3; ++k) {
    EXPECT_EQ(a[0].outputs[k].new_token_ids, c[0].outputs[k].new_token_ids) << "sequence " << k;
    EXPECT_EQ(a[0].outputs[k].new_token_ids.size(), 20u);
  }
  EXPECT_NE(a[0].outputs[0].new_token_ids, a[0].outputs[1].new_token_ids);
  EXPECT_GT(crowded.engine->metrics().num_preemptions, 0u);
  while (crowded.engine->step()) {
  }
}

TEST(Engine, NGreedySequencesShareThePromptAndAgree) {
  SamplingParams p = greedy(12);
  p.n = 4;
  auto b = build(cfg_of(8, 64, false, true), 60, 60);
  auto prompt = prompt_of(22, 3);
  auto res = generate(*b.engine, {prompt}, p);
  ASSERT_EQ(res[0].outputs.size(), 4u);
  auto expect = reference_greedy(prompt, 12, kVocab, kWindow);
  for (auto& o : res[0].outputs) {
    EXPECT_EQ(o.new_token_ids, expect) << "index " << o.index;
    EXPECT_EQ(o.finish_reason, FinishReason::kLength);
  }
  // Prefill of the prompt ran once (22 tokens), each child recomputed only its partial block.
  EXPECT_EQ(b.engine->metrics().kv_blocks_used, 0);
}

TEST(Engine, LogprobsAreLogSoftmaxOfTheLogits) {
  SamplingParams p = greedy(5);
  p.logprobs = 3;
  auto b = build(EngineConfig{}, 64, 64);
  auto prompt = prompt_of(9, 2);
  auto res = generate(*b.engine, {prompt}, p);
  const auto& o = res[0].outputs[0];
  ASSERT_EQ(o.new_logprobs.size(), 5u);
  std::vector<int32_t> hist = prompt;
  for (size_t i = 0; i < 5; ++i) {
    auto l = reference_logits(hist, kVocab, kWindow);
    double mx = *std::max_element(l.begin(), l.end()), sum = 0;
    for (float v : l) sum += std::exp(v - mx);
    const int32_t t = o.new_token_ids[i];
    EXPECT_EQ(o.new_logprobs[i].token_id, t);
    EXPECT_NEAR(o.new_logprobs[i].logprob, l[static_cast<size_t>(t)] - mx - std::log(sum), 1e-5);
    ASSERT_EQ(o.new_logprobs[i].top.size(), 3u);
    EXPECT_EQ(o.new_logprobs[i].top[0].first, t);  // greedy: the best is the sampled one
    hist.push_back(t);
  }
}

TEST(Engine, EosStopsUnlessIgnoredAndStopTokenIdsGiveAStopReason) {
  auto prompt = prompt_of(11, 5);
  auto ref = reference_greedy(prompt, 30, kVocab, kWindow);
  // The first position where the token has not occurred before.
  size_t k = 2;
  while (std::find(ref.begin(), ref.begin() + static_cast<std::ptrdiff_t>(k), ref[k]) != ref.begin() + static_cast<std::ptrdiff_t>(k)) ++k;
  GenerationConfig gen;
  gen.eos_token_ids = {ref[k]};
  auto b = build(EngineConfig{}, 64, 64, 128, gen);
  SamplingParams p = greedy(30);
  p.ignore_eos = false;
  auto res = generate(*b.engine, {prompt}, p);
  std::vector<int32_t> expect(ref.begin(), ref.begin() + static_cast<std::ptrdiff_t>(k) + 1);
  EXPECT_EQ(res[0].outputs[0].new_token_ids, expect);
  EXPECT_EQ(res[0].outputs[0].finish_reason, FinishReason::kStop);
  EXPECT_FALSE(res[0].outputs[0].stop_reason);
  p.ignore_eos = true;
  res = generate(*b.engine, {prompt}, p);
  EXPECT_EQ(res[0].outputs[0].new_token_ids.size(), 30u);
  p.stop_token_ids = {ref[k]};
  res = generate(*b.engine, {prompt}, p);
  EXPECT_EQ(res[0].outputs[0].new_token_ids, expect);
  EXPECT_EQ(res[0].outputs[0].stop_reason, std::to_string(ref[k]));
  EXPECT_EQ(b.engine->metrics().num_requests_finished_stop, 2u);
}

TEST(Engine, ContextLengthEndsWithLength) {
  auto b = build(cfg_of(4, 64, true, true, 64), 40, 40);
  auto prompt = prompt_of(60, 1);
  auto res = generate(*b.engine, {prompt}, greedy(16));
  EXPECT_EQ(res[0].outputs[0].new_token_ids, reference_greedy(prompt, 4, kVocab, kWindow));
  EXPECT_EQ(res[0].outputs[0].finish_reason, FinishReason::kLength);
}

TEST(Engine, StopStringSpanningTokensIsNotEmittedAndTextIsUtf8Complete) {
  GenerationConfig gen;
  auto b = build(EngineConfig{}, 64, 64, 128, gen, /*with_tokenizer=*/true);
  // Scripted: after 'A' (38) the model writes <0xE4><0xB8><0xAD> "ST" "OP" "!" <eos>.
  b.runner->transitions = {{38, 3}, {3, 4}, {4, 5}, {5, 34}, {34, 35}, {35, 36}, {36, 1}};
  std::vector<int32_t> prompt{2, 7, 8, 38};
  SamplingParams p = greedy(20);
  p.ignore_eos = false;
  auto res = generate(*b.engine, {prompt}, p);  // EOS id comes from request stop ids below
  (void)res;
  p.stop_token_ids = {1};
  res = generate(*b.engine, {prompt}, p);
  EXPECT_EQ(res[0].outputs[0].new_text, "\xE4\xB8\xAD" "STOP!");  // <eos> text not emitted
  EXPECT_EQ(res[0].outputs[0].stop_reason, "1");

  p.stop = {"TO"};  // spans the "ST" | "OP" boundary
  auto h = b.engine->add_request("stream", prompt, p);
  std::string streamed;
  RequestOutput d;
  bool finished = false;
  while (!finished) {
    b.engine->step();
    while (h->wait_next(d, std::chrono::milliseconds(0))) {
      for (auto& so : d.outputs) {
        // Every delta is whole UTF-8: never a lone lead or continuation byte of 中.
        if (!so.new_text.empty()) {
          EXPECT_NE(static_cast<unsigned char>(so.new_text[0]) & 0xC0, 0x80u);
          EXPECT_TRUE(so.new_text.find("\xE4") == std::string::npos || so.new_text.find("\xE4\xB8\xAD") != std::string::npos);
        }
        streamed += so.new_text;
        if (so.finish_reason) {
          EXPECT_EQ(*so.finish_reason, FinishReason::kStop);
          EXPECT_EQ(so.stop_reason, "TO");
        }
      }
      finished = d.finished;
    }
  }
  EXPECT_EQ(streamed, "\xE4\xB8\xAD" "S");
  p.include_stop_str_in_output = true;
  res = generate(*b.engine, {prompt}, p);
  EXPECT_EQ(res[0].outputs[0].new_text, "\xE4\xB8\xAD" "STO");
}

TEST(Engine, AbortFreesBlocksAndFinishesWithAbort) {
  auto b = build(cfg_of(4, 64, true, true, 2000), 600, 600, 4096);
  b.engine->start();
  auto h = b.engine->add_request("long", prompt_of(10, 1), greedy(1900));
  RequestOutput d;
  ASSERT_TRUE(h->wait_next(d, std::chrono::seconds(10)));
  b.engine->abort("long");
  bool saw_abort = false;
  while (h->wait_next(d, std::chrono::seconds(10))) {
    for (auto& so : d.outputs)
      if (so.finish_reason) saw_abort = *so.finish_reason == FinishReason::kAbort;
    if (d.finished) break;
  }
  EXPECT_TRUE(saw_abort);
  EXPECT_TRUE(h->finished());
  // The id can be reused once retired; the blocks are back.
  auto h2 = b.engine->add_request("next", prompt_of(5, 2), greedy(3));
  while (h2->wait_next(d, std::chrono::seconds(10)) && !d.finished) {
  }
  EngineMetrics m = b.engine->metrics();
  EXPECT_EQ(m.kv_blocks_used, 0);
  EXPECT_EQ(m.num_requests_finished_abort, 1u);
  b.engine->shutdown(false);
}

TEST(Engine, BackendFailureFailsTheBatchAndTheEngineKeepsServing) {
  auto b = build(EngineConfig{}, 64, 64);
  b.runner->fail_next = true;
  auto res = generate(*b.engine, {prompt_of(6, 1)}, greedy(4));
  ASSERT_TRUE(res[0].error);
  EXPECT_NE(res[0].error->find("injected failure"), std::string::npos);
  EXPECT_EQ(res[0].outputs[0].finish_reason, FinishReason::kAbort);
  res = generate(*b.engine, {prompt_of(6, 1)}, greedy(4));
  EXPECT_FALSE(res[0].error);
  EXPECT_EQ(res[0].outputs[0].new_token_ids, reference_greedy(prompt_of(6, 1), 4, kVocab, kWindow));
  EXPECT_EQ(b.engine->metrics().kv_blocks_used, 0);
}

TEST(Engine, ARequestFailingInDetokenizationFailsAloneAndTheOthersFinish) {
  // Model vocabulary 70 > tokenizer vocabulary 64: a sampled id 65 cannot be decoded.
  auto r = std::make_unique<FakeRunner>(70, 4, 64, 64, kWindow, 128);
  r->transitions = {{38, 65}};
  Engine engine(std::move(r), test::make_test_tokenizer(), GenerationConfig{}, EngineConfig{});
  auto res = generate(engine, {{2, 7, 38}, {2, 7, 8}}, greedy(5));
  ASSERT_TRUE(res[0].error);
  EXPECT_NE(res[0].error->find("request gen-"), std::string::npos);
  EXPECT_FALSE(res[1].error);
  EXPECT_EQ(res[1].outputs[0].new_token_ids.size(), 5u);
  EXPECT_EQ(engine.metrics().kv_blocks_used, 0);
}

TEST(Engine, ConcurrentClientsOnTheLoopThread) {
  auto b = build(cfg_of(8, 32, true, true), 100, 100);
  b.engine->start();
  std::vector<std::thread> clients;
  std::vector<int> ok(4, 0);
  for (int t = 0; t < 4; ++t)
    clients.emplace_back([&, t] {
      std::vector<std::vector<int32_t>> prompts{prompt_of(5 + t, t), prompt_of(17 + t, t + 10)};
      auto res = generate(*b.engine, prompts, greedy(10));
      for (size_t i = 0; i < prompts.size(); ++i)
        ok[static_cast<size_t>(t)] += res[i].outputs[0].new_token_ids == reference_greedy(prompts[i], 10, kVocab, kWindow);
    });
  for (auto& c : clients) c.join();
  EXPECT_EQ(ok, (std::vector<int>{2, 2, 2, 2}));
  b.engine->shutdown(false);
  EXPECT_FALSE(b.engine->is_running());
  EXPECT_THROW(b.engine->add_request("late", prompt_of(3, 1), greedy(2)), Unavailable);
}

TEST(Engine, ShutdownWithoutAbortFinishesQueuedWork) {
  auto b = build(EngineConfig{}, 64, 64);
  auto h = b.engine->add_request("q", prompt_of(4, 1), greedy(6));
  b.engine->shutdown(false);
  RequestOutput d;
  std::vector<int32_t> got;
  while (h->wait_next(d, std::chrono::milliseconds(0)))
    for (auto& so : d.outputs) got.insert(got.end(), so.new_token_ids.begin(), so.new_token_ids.end());
  EXPECT_EQ(got, reference_greedy(prompt_of(4, 1), 6, kVocab, kWindow));
}

TEST(Engine, AddRequestValidatesAndNamesTheProblem) {
  auto b = build(cfg_of(4, 64, true, true, 32), 20, 20);
  auto what = [&](auto&& f) {
    try {
      f();
    } catch (const InvalidArgument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(what([&] { b.engine->add_request("a", prompt_of(32, 1), greedy(1)); }).find("maximum context length is 32"),
            std::string::npos);
  EXPECT_NE(what([&] { b.engine->add_request("b", {1, 99}, greedy(1)); }).find("outside the vocabulary"), std::string::npos);
  EXPECT_NE(what([&] { b.engine->add_request("c", {}, greedy(1)); }).find("empty"), std::string::npos);
  SamplingParams bad = greedy(1);
  bad.top_p = 0;
  EXPECT_NE(what([&] { b.engine->add_request("d", {1}, bad); }).find("top_p"), std::string::npos);
  SamplingParams many = greedy(1);
  many.n = 5;
  EXPECT_NE(what([&] { b.engine->add_request("e", {1}, many); }).find("max-num-seqs"), std::string::npos);
  SamplingParams stop = greedy(1);
  stop.stop = {"x"};
  EXPECT_NE(what([&] { b.engine->add_request("f", {1}, stop); }).find("tokenizer"), std::string::npos);
  b.engine->add_request("dup", {1, 2}, greedy(1));
  EXPECT_NE(what([&] { b.engine->add_request("dup", {1, 2}, greedy(1)); }).find("already in use"), std::string::npos);
  // Engine limits: a cache smaller than one max_model_len sequence is refused at construction.
  EXPECT_THROW(build(cfg_of(4, 64, true, true, 64), 10, 40), InvalidArgument);
  EXPECT_THROW(build(cfg_of(4, 16, true, false, 64), 40, 40), InvalidArgument);
  EXPECT_THROW(build(cfg_of(4, 64, true, true, 200), 100, 100), InvalidArgument);  // > max_position_embeddings
}

}  // namespace
}  // namespace quench
