// Tests for core/tensor: element access per dtype, shape strings, expect().
#include "core/tensor.h"

#include <gtest/gtest.h>

#include <cstring>

#include "core/error.h"

namespace quench {
namespace {

template <typename T>
TensorView view_of(const std::vector<T>& v, DType dt, std::vector<int64_t> shape) {
  TensorView t;
  t.name = "t";
  t.dtype = dt;
  t.shape = std::move(shape);
  t.data = reinterpret_cast<const std::byte*>(v.data());
  t.nbytes = v.size() * sizeof(T);
  return t;
}

TEST(TensorView, NumelAndShapeStr) {
  TensorView t;
  EXPECT_EQ(t.numel(), 1);  // 0-dim scalar
  EXPECT_EQ(t.shape_str(), "[]");
  t.shape = {4096, 3840};
  EXPECT_EQ(t.numel(), 4096 * 3840);
  EXPECT_EQ(t.shape_str(), "[4096, 3840]");
  t.shape = {3, 0};
  EXPECT_EQ(t.numel(), 0);
}

TEST(TensorView, GetF32PerDtype) {
  const std::vector<uint16_t> bf = {0x3f80, 0xc040};  // 1.0, -3.0
  EXPECT_EQ(view_of(bf, DType::kBF16, {2}).get_f32(1), -3.0f);
  const std::vector<uint16_t> h = {0x3c00, 0xc500};  // 1.0, -5.0
  EXPECT_EQ(view_of(h, DType::kF16, {2}).to_f32(), (std::vector<float>{1.0f, -5.0f}));
  const std::vector<float> f = {0.5f, 2.0f, -1.0f};
  EXPECT_EQ(view_of(f, DType::kF32, {3}).to_f32(), f);
  const std::vector<double> d = {0.25};
  EXPECT_EQ(view_of(d, DType::kF64, {}).get_f32(0), 0.25f);
  const std::vector<uint8_t> e = {0x61, 0xb8};  // 36, -1.0
  EXPECT_EQ(view_of(e, DType::kF8E4M3, {2}).to_f32(), (std::vector<float>{36.0f, -1.0f}));
  const std::vector<uint8_t> u = {200};
  EXPECT_EQ(view_of(u, DType::kU8, {1}).get_f32(0), 200.0f);
  const std::vector<int8_t> i8 = {-7};
  EXPECT_EQ(view_of(i8, DType::kI8, {1}).get_f32(0), -7.0f);
  const std::vector<int16_t> i16 = {-300};
  EXPECT_EQ(view_of(i16, DType::kI16, {1}).get_f32(0), -300.0f);
  const std::vector<int32_t> i32 = {123456};
  EXPECT_EQ(view_of(i32, DType::kI32, {1}).get_f32(0), 123456.0f);
  const std::vector<int64_t> i64 = {-5};
  EXPECT_EQ(view_of(i64, DType::kI64, {1}).get_f32(0), -5.0f);
  const std::vector<uint8_t> b = {0, 1};
  EXPECT_EQ(view_of(b, DType::kBool, {2}).to_f32(), (std::vector<float>{0.0f, 1.0f}));
}

TEST(TensorView, OutOfRangeIsInvalidArgument) {
  const std::vector<float> f = {1, 2};
  auto t = view_of(f, DType::kF32, {2});
  EXPECT_THROW(t.get_f32(2), InvalidArgument);
  EXPECT_THROW(t.get_f32(-1), InvalidArgument);
  t.shape = {3};  // claims more than its bytes
  EXPECT_THROW(t.to_f32(), InvalidArgument);
}

TEST(TensorView, ExpectNamesTensorAndShapes) {
  const std::vector<float> f(6);
  auto t = view_of(f, DType::kF32, {2, 3});
  t.name = "model.norm.weight";
  EXPECT_NO_THROW(t.expect(DType::kF32, {2, 3}));
  try {
    t.expect(DType::kBF16, {3, 2});
    FAIL();
  } catch (const FormatError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("model.norm.weight"), std::string::npos) << m;
    EXPECT_NE(m.find("BF16 [3, 2]"), std::string::npos) << m;
    EXPECT_NE(m.find("F32 [2, 3]"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace quench
