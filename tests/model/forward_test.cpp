// tests/model/forward_test.cpp: CpuForward on random tiny checkpoints against the plain
// double-precision reference (naive_reference.h), incremental decode, hooks and argument errors.
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "backend/cpu/forward.h"
#include "core/error.h"
#include "model/model.h"
#include "model/naive_reference.h"
#include "model/tiny_checkpoint.h"

namespace quench {
namespace {

using test::kTinyVocab;

// 17 tokens: longer than the sliding window (5) and than several KV blocks.
const std::vector<int32_t> kTokens = {2, 5, 17, 33, 96, 0, 41, 8, 8, 71, 3, 60, 12, 29, 50, 1, 77};

struct Case {
  DType dtype;
  const char* layout;
};

class ForwardVsNaive : public ::testing::TestWithParam<Case> {};

TEST_P(ForwardVsNaive, AllPositionsMatch) {
  test::TinyOptions opt;
  opt.dtype = GetParam().dtype;
  opt.layout = GetParam().layout;
  test::TempDir tmp("naive");
  auto model = Model::load(test::write_tiny_checkpoint(tmp, opt));
  const auto ref = test::naive_logits(model->checkpoint(), model->config(), model->weights().prefix, kTokens);

  CpuForward fwd(*model);
  auto cache = fwd.new_cache();
  const int N = static_cast<int>(kTokens.size());
  std::vector<float> logits(size_t(N) * kTinyVocab);
  fwd.forward(kTokens, 0, cache, logits.data(), nullptr, LogitsFor::kAll);
  EXPECT_EQ(cache.length(), N);
  for (int t = 0; t < N; ++t) {
    const float* got = logits.data() + size_t(t) * kTinyVocab;
    const double* want = ref.data() + size_t(t) * kTinyVocab;
    EXPECT_LE(test::rel_l2(got, want, kTinyVocab), 1e-5) << "position " << t;
    EXPECT_EQ(test::argmax(got, kTinyVocab), test::argmax(want, kTinyVocab)) << "position " << t;
  }
}

INSTANTIATE_TEST_SUITE_P(Checkpoints, ForwardVsNaive,
                         ::testing::Values(Case{DType::kF32, "unified"}, Case{DType::kBF16, "unified"},
                                           Case{DType::kF32, "text"}));

class TinyForward : public ::testing::Test {
 protected:
  void SetUp() override { model_ = Model::load(test::write_tiny_checkpoint(tmp_)); }
  test::TempDir tmp_{"fwd"};
  std::unique_ptr<Model> model_;
};

TEST_F(TinyForward, IncrementalDecodeMatchesFullPrefill) {
  CpuForward fwd(*model_);
  const int N = static_cast<int>(kTokens.size());
  std::vector<float> full(size_t(N) * kTinyVocab), step(kTinyVocab);
  auto cache = fwd.new_cache();
  fwd.forward(kTokens, 0, cache, full.data(), nullptr, LogitsFor::kAll);

  // Prefill 6, then chunks of 1 and 4 mixed.
  auto inc = fwd.new_cache();
  const std::span<const int32_t> all(kTokens);
  fwd.forward(all.subspan(0, 6), 0, inc, step.data());
  EXPECT_LE(test::rel_l2(step.data(), full.data() + 5 * kTinyVocab, kTinyVocab), 1e-5);
  int pos = 6;
  while (pos < N) {
    const int n = std::min(pos % 2 ? 1 : 4, N - pos);
    fwd.forward(all.subspan(pos, n), pos, inc, step.data());
    pos += n;
    EXPECT_LE(test::rel_l2(step.data(), full.data() + size_t(pos - 1) * kTinyVocab, kTinyVocab), 1e-5) << pos;
  }
  EXPECT_EQ(inc.length(), N);
  for (int l = 0; l < inc.num_layers(); ++l)
    for (int i = 0; i < N * inc.kv_dim(l); ++i) ASSERT_NEAR(inc.k_data(l)[i], cache.k_data(l)[i], 1e-5);

  // Re-running from an earlier position replaces the tail of the cache.
  fwd.forward(all.subspan(10, 1), 10, inc, step.data());
  EXPECT_EQ(inc.length(), 11);
  EXPECT_LE(test::rel_l2(step.data(), full.data() + 10 * kTinyVocab, kTinyVocab), 1e-5);
}

TEST_F(TinyForward, EmbedScaleRoundsToTheRequestedDtype) {
  // sqrt(32) = 5.656854...; bf16 keeps 8 significant bits: 5.65625.
  EXPECT_EQ(CpuDecoder(model_->config(), model_->weights()).embed_scale(), static_cast<float>(std::sqrt(32.0)));
  EXPECT_EQ(CpuDecoder(model_->config(), model_->weights(), DType::kBF16).embed_scale(), 5.65625f);
}

TEST_F(TinyForward, HooksSeeResidualsLinearInputsAndKv) {
  CpuForward fwd(*model_);
  std::vector<int> blocks;
  std::set<std::string> linears;
  std::vector<std::pair<int, int>> kv_calls;
  std::vector<float> last_residual;
  ForwardHooks hooks;
  hooks.after_block = [&](int layer, const float* r, int n, int hidden) {
    blocks.push_back(layer);
    EXPECT_EQ(n, 5);
    EXPECT_EQ(hidden, test::kTinyHidden);
    last_residual.assign(r, r + size_t(n) * hidden);
  };
  hooks.linear_input = [&](const std::string& name, const float*, int n, int in) {
    linears.insert(name);
    EXPECT_EQ(n, 5);
    if (name.find("down_proj") != std::string::npos) {
      EXPECT_EQ(in, 64);
    }
  };
  hooks.kv = [&](int layer, const float*, const float*, int n) { kv_calls.push_back({layer, n}); };
  auto cache = fwd.new_cache();
  std::vector<float> logits(kTinyVocab);
  fwd.forward(std::span<const int32_t>(kTokens).subspan(0, 5), 0, cache, logits.data(), &hooks);
  EXPECT_EQ(blocks, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(kv_calls.size(), 4u);
  EXPECT_EQ(linears.size(), 4u * 7 - 1);  // no v_proj on the k_eq_v layer
  EXPECT_TRUE(linears.count("model.language_model.layers.3.mlp.down_proj"));
  EXPECT_TRUE(linears.count("model.language_model.layers.0.self_attn.v_proj"));
  EXPECT_FALSE(linears.count("model.language_model.layers.3.self_attn.v_proj"));

  // The last residual, final-normed and projected on the tied embedding, gives the logits.
  std::vector<float> ref(kTinyVocab);
  const auto E = model_->weights().embed_tokens.to_f32();
  const auto w = model_->weights().norm.to_f32();
  const float* x = last_residual.data() + 4 * test::kTinyHidden;
  double ss = 0;
  for (int i = 0; i < test::kTinyHidden; ++i) ss += double(x[i]) * x[i];
  const double inv = 1.0 / std::sqrt(ss / test::kTinyHidden + 1e-6);
  for (int v = 0; v < kTinyVocab; ++v) {
    double acc = 0;
    for (int i = 0; i < test::kTinyHidden; ++i) acc += x[i] * inv * w[i] * E[size_t(v) * test::kTinyHidden + i];
    ref[v] = static_cast<float>(30.0 * std::tanh(acc / 30.0));
  }
  EXPECT_LE(test::rel_l2(logits.data(), ref.data(), kTinyVocab), 1e-5);
}

TEST_F(TinyForward, RejectsBadArguments) {
  CpuForward fwd(*model_);
  auto cache = fwd.new_cache();
  std::vector<float> logits(kTinyVocab);
  const std::vector<int32_t> bad = {2, kTinyVocab};
  EXPECT_THROW(fwd.forward(bad, 0, cache, logits.data()), InvalidArgument);
  EXPECT_THROW(fwd.forward(kTokens, 3, cache, logits.data()), InvalidArgument);  // gap: cache is empty
  EXPECT_THROW(fwd.forward({}, 0, cache, logits.data()), InvalidArgument);
}

}  // namespace
}  // namespace quench
