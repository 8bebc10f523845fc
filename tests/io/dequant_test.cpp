// Tests for io/dequant against nvfp4-modelopt-format.md §10's worked example (computed by hand
// and with ModelOpt/torch by the spec's author): packed bytes 87 A2 44 6E 90 D3 F6 A0, block
// scale 0x61, weight_scale_2 = 2^-8, and the decoded column of its table. The quantization side
// of the example is reproduced with core/numeric's primitives (§3.2-§3.3 formulas).
#include "io/dequant.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>

#include "core/error.h"
#include "core/numeric.h"

namespace quench {
namespace {

const float kW[16] = {0.8125f,     -0.03515625f, 0.10546875f,     -0.17578125f, 0.24609375f, 0.3515625f,
                      -0.4921875f, 0.703125f,    0.0f,            -0.0625f,     0.2001953125f, -0.400390625f,
                      0.55078125f, -0.80078125f, 0.010009765625f, -0.125f};
const uint8_t kPacked[8] = {0x87, 0xA2, 0x44, 0x6E, 0x90, 0xD3, 0xF6, 0xA0};
const float kDecoded[16] = {0.84375f,  0.0f,      0.140625f, -0.140625f, 0.28125f,  0.28125f,
                            -0.5625f,  0.5625f,   0.0f,      -0.0703125f, 0.2109375f, -0.421875f,
                            0.5625f,   -0.84375f, 0.0f,      -0.140625f};

TensorView view(const char* name, DType dt, std::vector<int64_t> shape, const void* p, std::size_t n) {
  TensorView t;
  t.name = name;
  t.dtype = dt;
  t.shape = std::move(shape);
  t.data = static_cast<const std::byte*>(p);
  t.nbytes = n;
  return t;
}

TEST(WorkedExample, QuantizeReproducesBytes) {
  const float g = 10.5f / 2688.0f;  // §3.1 with amax_W = 10.5
  EXPECT_EQ(std::bit_cast<uint32_t>(g), 0x3B800000u);
  float amax_b = 0;
  for (float w : kW) amax_b = std::max(amax_b, std::fabs(w));
  const float s = amax_b / (6.0f * g);  // §3.2 step 2
  EXPECT_FLOAT_EQ(s, 34.6666679f);
  const uint8_t scale = f32_to_fp8e4m3(s, false);
  EXPECT_EQ(scale, 0x61);
  const float d = fp8e4m3_to_f32(scale) * g;
  EXPECT_EQ(d, 0.140625f);
  uint8_t packed[8] = {};
  for (int i = 0; i < 16; ++i) {
    const uint8_t code = f32_to_e2m1(kW[i] / d);
    packed[i / 2] |= static_cast<uint8_t>(i % 2 ? code << 4 : code);
  }
  for (int j = 0; j < 8; ++j) EXPECT_EQ(packed[j], kPacked[j]) << "byte " << j;
  // Whole-tensor variant of §10: g = 0.8125/2688, s = 447.99997 -> 0x7E.
  const float g2 = 0.8125f / 2688.0f;
  EXPECT_EQ(f32_to_fp8e4m3(amax_b / (6.0f * g2), false), 0x7E);
}

TEST(WorkedExample, DequantizeRow) {
  const uint8_t scale = 0x61;
  const auto w = view("m.weight", DType::kU8, {1, 8}, kPacked, 8);
  const auto ws = view("m.weight_scale", DType::kF8E4M3, {1, 1}, &scale, 1);
  float out[16];
  dequant_nvfp4_row(w, ws, 0x1p-8f, 0, out);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(out[i], kDecoded[i]) << i;  // == so -0 equals +0
  EXPECT_EQ(dequant_nvfp4(w, ws, 0x1p-8f), std::vector<float>(kDecoded, kDecoded + 16));
}

TEST(Dequant, MultiRowMultiBlockOrder) {
  // Two rows x 32 inputs: row r, block b has scale code (0x38 + r*8 + b) -> 1, 2 / 4, 8 (E4M3).
  uint8_t codes[2 * 16];
  for (int i = 0; i < 32; ++i) codes[i] = static_cast<uint8_t>((i % 8) | ((7 - i % 8) << 4));
  const uint8_t scales[4] = {0x38, 0x40, 0x48, 0x50};  // 1, 2, 4, 8
  const auto w = view("w", DType::kU8, {2, 16}, codes, 32);
  const auto ws = view("s", DType::kF8E4M3, {2, 2}, scales, 4);
  const auto out = dequant_nvfp4(w, ws, 0.5f);
  ASSERT_EQ(out.size(), 64u);
  const float lut[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
  for (int r = 0; r < 2; ++r) {
    for (int k = 0; k < 32; ++k) {
      const int byte = r * 16 + k / 2;
      const int nib = k % 2 ? (codes[byte] >> 4) : (codes[byte] & 15);
      const float scale = static_cast<float>(1 << (r * 2 + k / 16));
      EXPECT_EQ(out[static_cast<std::size_t>(r * 32 + k)], lut[nib & 7] * (scale * 0.5f)) << r << "," << k;
    }
  }
  float row[32];
  EXPECT_THROW(dequant_nvfp4_row(w, ws, 0.5f, 2, row), InvalidArgument);
}

TEST(Dequant, ShapeMismatchesAreFormatErrors) {
  uint8_t codes[8] = {};
  uint8_t scale[2] = {};
  const auto ws = view("s", DType::kF8E4M3, {1, 1}, scale, 1);
  EXPECT_THROW(dequant_nvfp4(view("w", DType::kBF16, {1, 8}, codes, 8), ws, 1.0f), FormatError);
  EXPECT_THROW(dequant_nvfp4(view("w", DType::kU8, {1, 4}, codes, 4), ws, 1.0f), FormatError);  // in = 8
  EXPECT_THROW(dequant_nvfp4(view("w", DType::kU8, {1, 8}, codes, 8), view("s", DType::kF8E4M3, {1, 2}, scale, 2), 1.0f),
               FormatError);
  EXPECT_THROW(dequant_nvfp4(view("w", DType::kU8, {1, 8}, codes, 8), view("s", DType::kF32, {1, 1}, scale, 1), 1.0f),
               FormatError);
  EXPECT_THROW(dequant_fp8(view("w", DType::kU8, {1}, codes, 1), 1.0f), FormatError);
}

TEST(Dequant, Fp8WorkedExample) {
  // §10: scale = 10.5/448; w = 0.2001953125 -> 8.541667 -> e4m3 9.0 (0x51); dequant 0.2109375.
  const float scale = 10.5f / 448.0f;
  EXPECT_EQ(scale, 0.0234375f);
  const uint8_t code = f32_to_fp8e4m3(0.2001953125f / scale, false);
  EXPECT_EQ(code, 0x51);
  const uint8_t codes[3] = {code, 0xb8, 0x00};  // 9, -1, 0
  const auto out = dequant_fp8(view("w", DType::kF8E4M3, {3}, codes, 3), scale);
  EXPECT_EQ(out, (std::vector<float>{0.2109375f, -0.0234375f, 0.0f}));
}

}  // namespace
}  // namespace quench
