// Dequantization of tensors written by an independent ModelOpt re-implementation
// (tests/data/quant/modelopt_random.safetensors, numpy, tools/fixtures/modelopt_reference.py).
// Expected sums were computed by a separate pure-Python decoder written from
// nvfp4-modelopt-format.md §1 and §4 (not from quench): per element fl32(e2m1 * fl32(e4m3 * g)),
// summed in double. The error bound checks that the codes reconstruct the BF16 inputs.
#include <gtest/gtest.h>

#include <cmath>

#include "io/dequant.h"
#include "io/safetensors.h"

namespace quench {
namespace {

const char* kFixture = QUENCH_SOURCE_DIR "/tests/data/quant/modelopt_random.safetensors";

struct Sums {
  const char* name;
  double nvfp4_sum, nvfp4_abs_sum, fp8_sum, fp8_abs_sum;
};

TEST(ModelOptFixture, DequantMatchesIndependentDecoder) {
  const auto f = SafetensorsFile::open(kFixture);
  const auto& t = f->tensors();
  const Sums cases[] = {
      {"normal.0", -0.9080149453366175, 64.72800864314195, -0.8760035794107921, 65.16078848021465},
      {"outliers.0", 4.197910928574856, 43.31394804100273, 4.21914246401866, 43.80602016991179},
      {"edges.0", 68.49107123911381, 456.15179742872715, 71.64121755841188, 464.314770021243},
  };
  for (const auto& c : cases) {
    const std::string p = c.name;
    const auto w = dequant_nvfp4(t.at(p + ".nvfp4.weight"), t.at(p + ".nvfp4.weight_scale"),
                                 t.at(p + ".nvfp4.weight_scale_2").get_f32(0));
    double s = 0, sa = 0;
    for (float v : w) {
      s += v;
      sa += std::fabs(v);
    }
    // Same elements, same per-element fp32 values, same summation order -> identical doubles.
    EXPECT_EQ(s, c.nvfp4_sum) << p;
    EXPECT_EQ(sa, c.nvfp4_abs_sum) << p;
    const auto w8 = dequant_fp8(t.at(p + ".fp8.weight"), t.at(p + ".fp8.weight_scale").get_f32(0));
    double s8 = 0, sa8 = 0;
    for (float v : w8) {
      s8 += v;
      sa8 += std::fabs(v);
    }
    EXPECT_EQ(s8, c.fp8_sum) << p;
    EXPECT_EQ(sa8, c.fp8_abs_sum) << p;
  }
}

TEST(ModelOptFixture, CodesReconstructInputsWithinRoundingBound) {
  const auto f = SafetensorsFile::open(kFixture);
  const auto& t = f->tensors();
  for (const char* name : {"normal.0", "heavy_tailed.0", "outliers.0", "edges.0", "uniform_wide.0", "fused.0"}) {
    const std::string p = name;
    const auto x = t.at(p + ".input").to_f32();
    const auto& ws = t.at(p + ".nvfp4.weight_scale");
    const float g = t.at(p + ".nvfp4.weight_scale_2").get_f32(0);
    const auto w = dequant_nvfp4(t.at(p + ".nvfp4.weight"), ws, g);
    ASSERT_EQ(w.size(), x.size()) << p;
    const int64_t in = t.at(p + ".nvfp4.weight").shape[1] * 2;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const int64_t r = static_cast<int64_t>(i) / in, k = static_cast<int64_t>(i) % in;
      const float d = ws.get_f32(r * (in / 16) + k / 16) * g;
      // The E2M1 grid's widest gap is 2 (4 -> 6), so RNE is within 1*d; values past 6*d clip
      // (a block scale rounded down), which the ModelOpt scale rule keeps within 6*d*(1+1/16).
      const float tol = d * 1.0f + std::max(0.0f, std::fabs(x[i]) - 6 * d);
      ASSERT_LE(std::fabs(w[i] - x[i]), tol * 1.0001f + 1e-30f) << p << " element " << i << " x=" << x[i];
    }
    const auto w8 = dequant_fp8(t.at(p + ".fp8.weight"), t.at(p + ".fp8.weight_scale").get_f32(0));
    const float s8 = t.at(p + ".fp8.weight_scale").get_f32(0);
    for (std::size_t i = 0; i < x.size(); ++i) {
      // E4M3 relative step is 2^-3 (half-step 2^-4) for normals; subnormal step 2^-9 * scale.
      const float tol = std::max(std::fabs(x[i]) * 0.0625f, 0x1p-10f * s8);
      ASSERT_LE(std::fabs(w8[i] - x[i]), tol * 1.0001f) << p << " fp8 element " << i;
    }
  }
}

}  // namespace
}  // namespace quench
