// Tests of src/quant/fp8.cpp against the FP8 example of
// ../shared/reference/nvfp4-modelopt-format.md §10 (values copied inline).
#include "quant/fp8.h"

#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"

namespace quench {
namespace {

TEST(Fp8, WorkedExample) {
  // scale = 10.5/448 = 0.0234375; 0.2001953125 -> 8.5416670 -> e4m3 9.0 = 0x51.
  const float scale = fp8_scale(10.5f);
  EXPECT_EQ(scale, 0.0234375f);
  std::vector<float> w = {0.2001953125f, 10.5f, -10.5f, 0.0f};
  std::vector<uint8_t> out(4);
  fp8_quantize(w, scale, out);
  EXPECT_EQ(out[0], 0x51);
  EXPECT_EQ(out[1], 0x7E);  // amax maps to 448
  EXPECT_EQ(out[2], 0xFE);
  EXPECT_EQ(out[3], 0x00);
}

TEST(Fp8, ZeroTensorScaleIsOne) { EXPECT_EQ(fp8_scale(0.0f), 1.0f); }

TEST(Fp8, RejectsSizeMismatchAndBadScale) {
  std::vector<float> w(4, 1.0f);
  std::vector<uint8_t> out(3);
  EXPECT_THROW(fp8_quantize(w, 1.0f, out), InvalidArgument);
  std::vector<uint8_t> out4(4);
  EXPECT_THROW(fp8_quantize(w, 0.0f, out4), InvalidArgument);
}

}  // namespace
}  // namespace quench
