// tests/model/golden_test.cpp: logits of tiny random Gemma 4 checkpoints against transformers
// 5.17 (fp32, eager attention) from tests/data/golden/ (made by tools/fixtures/make_golden_logits.py
// on the GPU host; see tests/data/golden/README.md). Criteria: relative L2 <= 1e-4 and the same
// argmax at every position, for a full prefill (CpuForward), prefill P + one-token decode
// (CpuForward), and chunked prefill + decode through CpuModelRunner's paged cache.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <gtest/gtest.h>

#include "backend/cpu/forward.h"
#include "backend/cpu/runner.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "model/naive_reference.h"

namespace quench {
namespace {

constexpr double kTol = 1e-4;

std::filesystem::path golden_dir(const std::string& name) {
  return std::filesystem::path(QUENCH_SOURCE_DIR) / "tests/data/golden" / name;
}

struct Golden {
  std::shared_ptr<const Model> model;
  std::unique_ptr<SafetensorsFile> ref;
  std::vector<int32_t> ids;
  int prefix_len = 0;
  int vocab = 0;
  std::vector<float> logits, decode_logits;  // [N, V], [N - P, V]
};

Golden load_golden(const std::string& name) {
  Golden g;
  const auto dir = golden_dir(name);
  g.model = Model::load(dir);
  g.ref = SafetensorsFile::open(dir / "reference.safetensors");
  const auto& t = g.ref->tensors();
  for (float v : t.at("input_ids").to_f32()) g.ids.push_back(static_cast<int32_t>(v));
  g.prefix_len = static_cast<int>(t.at("decode_prefix_len").get_f32(0));
  g.vocab = g.model->config().vocab_size;
  g.logits = t.at("logits").to_f32();
  g.decode_logits = t.at("decode_logits").to_f32();
  EXPECT_EQ(g.logits.size(), g.ids.size() * g.vocab);
  EXPECT_EQ(g.decode_logits.size(), (g.ids.size() - g.prefix_len) * g.vocab);
  return g;
}

double g_worst = 0;  // largest relative L2 seen by the current test, printed at its end

void expect_close(const float* got, const float* want, int vocab, const std::string& what) {
  const double e = test::rel_l2(got, want, vocab);
  g_worst = std::max(g_worst, e);
  EXPECT_LE(e, kTol) << what;
  EXPECT_EQ(test::argmax(got, vocab), test::argmax(want, vocab)) << what;
}

class GoldenLogits : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { g_worst = 0; }
  void TearDown() override {
    std::printf("  %s: max relative L2 vs transformers %.3g\n", GetParam().c_str(), g_worst);
    RecordProperty("max_rel_l2", std::to_string(g_worst));
  }
};

TEST_P(GoldenLogits, FullPrefill) {
  Golden g = load_golden(GetParam());
  CpuForward fwd(*g.model);
  auto cache = fwd.new_cache();
  const int N = static_cast<int>(g.ids.size());
  std::vector<float> out(size_t(N) * g.vocab);
  fwd.forward(g.ids, 0, cache, out.data(), nullptr, LogitsFor::kAll);
  for (int t = 0; t < N; ++t)
    expect_close(out.data() + size_t(t) * g.vocab, g.logits.data() + size_t(t) * g.vocab, g.vocab,
                 GetParam() + " prefill position " + std::to_string(t));
}

TEST_P(GoldenLogits, PrefillThenOneTokenDecode) {
  Golden g = load_golden(GetParam());
  CpuForward fwd(*g.model);
  auto cache = fwd.new_cache();
  const int N = static_cast<int>(g.ids.size()), P = g.prefix_len;
  const std::span<const int32_t> ids(g.ids);
  std::vector<float> out(g.vocab);
  fwd.forward(ids.subspan(0, P), 0, cache, out.data());
  expect_close(out.data(), g.logits.data() + size_t(P - 1) * g.vocab, g.vocab, GetParam() + " prefill last");
  for (int pos = P; pos < N; ++pos) {
    fwd.forward(ids.subspan(pos, 1), pos, cache, out.data());
    expect_close(out.data(), g.decode_logits.data() + size_t(pos - P) * g.vocab, g.vocab,
                 GetParam() + " decode position " + std::to_string(pos));
  }
}

TEST_P(GoldenLogits, ChunkedPagedPrefillThroughRunner) {
  Golden g = load_golden(GetParam());
  KvCacheConfig kv;
  kv.block_size = 4;
  kv.num_blocks_full = 16;
  kv.num_blocks_sliding = 16;
  kv.dtype = KvCacheDtype::kFP32;
  CpuModelRunner runner(g.model, kv);
  const int window = g.model->config().sliding_window;
  const int N = static_cast<int>(g.ids.size()), P = g.prefix_len;
  const std::span<const int32_t> ids(g.ids);
  std::vector<int32_t> full, sliding;
  int next_full = 0, next_sliding = 15;
  std::vector<float> out(g.vocab);
  int pos = 0;
  while (pos < N) {
    const int n = pos < P ? std::min(7, P - pos) : 1;  // chunks of 7 up to P, then decode
    while (int(full.size()) * 4 < pos + n) {
      full.push_back(next_full++);
      sliding.push_back(next_sliding--);
    }
    // Sliding blocks wholly outside the window of this chunk's first query are released (-1).
    for (int b = 0; b < std::max(0, pos - window + 1) / 4; ++b) sliding[b] = -1;
    SeqStep step{ids.subspan(pos, n), pos, full, sliding, true};
    runner.execute({&step, 1}, out);
    pos += n;
    const float* want = pos <= P ? g.logits.data() + size_t(pos - 1) * g.vocab
                                 : g.decode_logits.data() + size_t(pos - 1 - P) * g.vocab;
    expect_close(out.data(), want, g.vocab, GetParam() + " runner position " + std::to_string(pos - 1));
  }
}

INSTANTIATE_TEST_SUITE_P(Tiny, GoldenLogits, ::testing::Values("tiny-fp32", "tiny-bf16", "tiny-globalkeys"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s) if (c == '-') c = '_';
                           return s;
                         });

}  // namespace
}  // namespace quench
