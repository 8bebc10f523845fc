// Tests of src/quant/nvfp4.cpp against the worked example of
// ../shared/reference/nvfp4-modelopt-format.md §10 (computed by hand there and re-checked with
// ModelOpt's formulas in torch on CPU and CUDA); the values are copied inline here.
#include "quant/nvfp4.h"

#include <cmath>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/numeric.h"

namespace quench {
namespace {

// The 16-element block of §10 (bf16 values), in a row whose tensor amax is 10.5 elsewhere.
const float kBlock[16] = {0.8125f,    -0.03515625f, 0.10546875f,  -0.17578125f,
                          0.24609375f, 0.3515625f,  -0.4921875f,  0.703125f,
                          0.0f,        -0.0625f,    0.2001953125f, -0.400390625f,
                          0.55078125f, -0.80078125f, 0.010009765625f, -0.125f};

TEST(Nvfp4, GlobalScaleOfWorkedExampleIsTwoToMinusEight) {
  const float g = nvfp4_global_scale(10.5f);
  uint32_t bits;
  std::memcpy(&bits, &g, 4);
  EXPECT_EQ(bits, 0x3B800000u);
}

TEST(Nvfp4, WorkedExampleBytes) {
  // Row 0 = the block; row 1 holds the tensor amax 10.5 in its first element.
  std::vector<float> w(32, 0.0f);
  std::memcpy(w.data(), kBlock, sizeof kBlock);
  w[16] = 10.5f;
  const float g = nvfp4_global_scale(10.5f);
  Nvfp4Tensor q = nvfp4_quantize(w, 2, 16, g);
  const uint8_t want[8] = {0x87, 0xA2, 0x44, 0x6E, 0x90, 0xD3, 0xF6, 0xA0};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(q.packed[i], want[i]) << "byte " << i;
  EXPECT_EQ(q.scales[0], 0x61);
  // "The row holding 10.5 gets scale 448 (0x7E) and code 7 for that element."
  EXPECT_EQ(q.scales[1], 0x7E);
  EXPECT_EQ(q.packed[8] & 0xF, 0x7);
  for (int i = 9; i < 16; ++i) EXPECT_EQ(q.packed[i], 0x00) << "zeros of row 1";
}

TEST(Nvfp4, WorkedExampleDequantizesToTable) {
  const float g = std::ldexp(1.0f, -8);
  Nvfp4Tensor q = nvfp4_quantize(std::vector<float>(kBlock, kBlock + 16), 1, 16, g);
  float out[16];
  nvfp4_dequantize_row(q.packed.data(), q.scales.data(), 16, g, out);
  const float want[16] = {0.84375f, 0.0f,       0.140625f, -0.140625f, 0.28125f,  0.28125f,
                          -0.5625f, 0.5625f,    0.0f,      -0.0703125f, 0.2109375f, -0.421875f,
                          0.5625f,  -0.84375f,  0.0f,      -0.140625f};
  for (int i = 0; i < 16; ++i) EXPECT_EQ(out[i], want[i]) << "element " << i;
}

TEST(Nvfp4, WholeTensorBlockGetsScale448) {
  // §10: "If this block were the whole tensor: g = 0.8125/2688, s = 447.99997 -> 0x7E (448)".
  const float g = nvfp4_global_scale(0.8125f);
  EXPECT_FLOAT_EQ(g, 3.0226936e-4f);
  EXPECT_EQ(nvfp4_block_scale(0.8125f, g), 0x7E);
}

TEST(Nvfp4, ZeroBlockGetsScaleOneAndTinyBlockClamps) {
  const float g = nvfp4_global_scale(6.0f);
  EXPECT_EQ(nvfp4_block_scale(0.0f, g), 0x38);  // 1.0 = exponent 7, mantissa 0
  EXPECT_EQ(nvfp4_block_scale(1e-9f, g), 0x01); // clamped to 2^-9, smallest subnormal
  EXPECT_EQ(nvfp4_block_scale(6.0f, g), 0x7E);
}

TEST(Nvfp4, AllZeroTensorHasZeroCodesAndUnitScales) {
  std::vector<float> w(64, 0.0f);
  Nvfp4Tensor q = nvfp4_quantize(w, 2, 32, nvfp4_global_scale(0.0f));
  EXPECT_EQ(q.global_scale, 0.0f);
  for (uint8_t b : q.packed) EXPECT_EQ(b, 0);
  for (uint8_t s : q.scales) EXPECT_EQ(s, 0x38);
}

TEST(Nvfp4, RejectsInputDimNotMultipleOf16) {
  std::vector<float> w(24, 1.0f);
  EXPECT_THROW(nvfp4_quantize(w, 1, 24, 1.0f), InvalidArgument);
}

}  // namespace
}  // namespace quench

namespace quench {
namespace {

TEST(Nvfp4, BranchFreeCodeEqualsCoreCastOnEveryBf16AndRandomFloats) {
  // core/numeric.h f32_to_e2m1 is the threshold form of spec §1.3; the quantizer's branch-free
  // ModelOpt searchsorted form must agree everywhere (incl. ties, -0, infinities, NaN).
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const float x = bf16_to_f32(static_cast<uint16_t>(b));
    ASSERT_EQ(nvfp4_e2m1_code(x), f32_to_e2m1(x)) << "bf16 bits 0x" << std::hex << b;
  }
  uint64_t s = 12345;
  for (int i = 0; i < 200000; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    float x;
    const uint32_t bits = static_cast<uint32_t>(s >> 32);
    std::memcpy(&x, &bits, 4);
    if (std::isnan(x)) continue;
    const float y = std::ldexp(static_cast<float>(static_cast<int32_t>(bits)) / 2147483648.0f, 3);  // (-8, 8)
    ASSERT_EQ(nvfp4_e2m1_code(x), f32_to_e2m1(x)) << x;
    ASSERT_EQ(nvfp4_e2m1_code(y), f32_to_e2m1(y)) << y;
  }
}

}  // namespace
}  // namespace quench
