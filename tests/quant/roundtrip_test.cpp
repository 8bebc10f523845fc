// Round trip: calibrate the transformers-made tiny BF16 checkpoint (tests/data/golden/tiny-bf16)
// with quench's CPU forward, export every scheme, load it back with quench's Model loader and
// compare next-token distributions with the BF16 model.
#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "io/safetensors.h"
#include "model/model.h"
#include "quant/calibration.h"
#include "quant/export.h"
#include "quant/quality.h"
#include "quant/tiny_checkpoint.h"

namespace quench {
namespace {

const std::string kGolden = QUENCH_SOURCE_DIR "/tests/data/golden/tiny-bf16";

std::vector<std::vector<int32_t>> random_samples(int n, int len, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> tok(3, 511);
  std::vector<std::vector<int32_t>> out(n);
  for (auto& s : out) {
    s.push_back(2);
    for (int i = 1; i < len; ++i) s.push_back(tok(rng));
  }
  return out;
}

class RoundTrip : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ref_ = Model::load(kGolden).release();
    calib_ = new ActivationAmax(calibrate(*ref_, random_samples(4, 24, 1)));
  }
  static void TearDownTestSuite() {
    delete ref_;
    delete calib_;
  }
  LogitQuality run(QuantScheme s) {
    test::ScratchDir out("rt");
    ExportOptions o;
    o.scheme = s;
    o.kv_cache_fp8 = true;
    export_quantized(kGolden, out.path, o, calib_);
    auto q = Model::load(out.path);
    EXPECT_TRUE(q->weights().layers[0].k_scale.has_value());
    EXPECT_FLOAT_EQ(*q->weights().layers[0].k_scale, calib_->k_amax[0] / 448.0f);
    EXPECT_TRUE(q->weights().layers[0].gate_proj.input_scale.has_value());
    return compare_logits(*ref_, *q, random_samples(3, 32, 2));
  }
  static Model* ref_;
  static ActivationAmax* calib_;
};
Model* RoundTrip::ref_ = nullptr;
ActivationAmax* RoundTrip::calib_ = nullptr;

TEST_F(RoundTrip, CalibrationSeesEveryLinearAndKv) {
  // 12 layers x (q, k, o, gate, up, down) + v on the 10 sliding layers.
  EXPECT_EQ(calib_->linear_input.size(), 12u * 6 + 10);
  for (const auto& [name, amax] : calib_->linear_input) EXPECT_GT(amax, 0.0f) << name;
  for (float a : calib_->k_amax) EXPECT_GT(a, 0.0f);
  EXPECT_EQ(calib_->tokens, 4 * 24);
}

TEST_F(RoundTrip, EverySchemeLoadsAndFp8IsClosest) {
  const LogitQuality nv_mlp = run(QuantScheme::kNvfp4Mlp);
  const LogitQuality nv_all = run(QuantScheme::kNvfp4);
  const LogitQuality fp8 = run(QuantScheme::kFp8);
  const LogitQuality mixed = run(QuantScheme::kNvfp4MlpFp8Attn);
  for (const auto* q : {&nv_mlp, &nv_all, &fp8, &mixed}) {
    EXPECT_EQ(q->positions, 3 * 31);
    EXPECT_GT(q->kl_mean, 0.0);
    EXPECT_LT(q->kl_mean, 0.5);
    EXPECT_GT(q->top1_agreement, 0.6);
  }
  EXPECT_LT(fp8.kl_mean, nv_mlp.kl_mean);
  EXPECT_LT(nv_mlp.kl_mean, nv_all.kl_mean);
  EXPECT_GT(fp8.top1_agreement, 0.9);
}

TEST(KlDivergence, MatchesHandComputedValue) {
  // p = softmax([0, ln 3]) = (1/4, 3/4); q = uniform: KL = 1/4 ln(1/2) + 3/4 ln(3/2).
  const float p[2] = {0.0f, std::log(3.0f)}, q[2] = {5.0f, 5.0f};
  EXPECT_NEAR(kl_divergence(p, q, 2), 0.25 * std::log(0.5) + 0.75 * std::log(1.5), 1e-7);
  EXPECT_NEAR(kl_divergence(p, p, 2), 0.0, 1e-12);
}

}  // namespace
}  // namespace quench
