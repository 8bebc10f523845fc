// tests/model/matmul_test.cpp: the CPU Linear in every weight format equals io/dequant.h's
// dequantization followed by a plain fp32 matmul (nvfp4-modelopt-format.md §4, §7.1).
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "backend/cpu/matmul.h"
#include "core/numeric.h"
#include "io/dequant.h"

namespace quench {
namespace {

struct Owned {
  std::vector<std::byte> bytes;
  TensorView view(const std::string& name, DType dt, std::vector<int64_t> shape) const {
    TensorView t;
    t.name = name;
    t.dtype = dt;
    t.shape = std::move(shape);
    t.data = bytes.data();
    t.nbytes = bytes.size();
    return t;
  }
};

std::vector<float> randn(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

/// Random bytes that are never an E4M3FN NaN (0x7f / 0xff).
Owned random_fp8(size_t n, uint32_t seed, int max_exp_byte = 0x7e) {
  std::mt19937 rng(seed);
  Owned o;
  o.bytes.resize(n);
  for (auto& b : o.bytes) {
    uint8_t v = uint8_t(rng() % (max_exp_byte + 1));
    if (rng() & 1) v |= 0x80;
    b = std::byte(v);
  }
  return o;
}

void check_linear(const LinearWeight& w, const std::vector<float>& dense, int n_tokens) {
  const int64_t in = w.in_features, out = w.out_features;
  // decode_weight_row equals the dequantized tensor bit for bit (== so that -0 == +0).
  std::vector<float> row(in);
  for (int64_t r = 0; r < out; ++r) {
    decode_weight_row(w, r, row.data());
    for (int64_t i = 0; i < in; ++i) ASSERT_EQ(row[i], dense[r * in + i]) << w.name << " row " << r << " col " << i;
  }
  const auto x = randn(size_t(n_tokens) * in, 77);
  std::vector<float> y(size_t(n_tokens) * out);
  linear(w, x.data(), n_tokens, y.data());
  for (int t = 0; t < n_tokens; ++t)
    for (int64_t o = 0; o < out; ++o) {
      double ref = 0, mag = 0;
      for (int64_t i = 0; i < in; ++i) {
        ref += double(x[t * in + i]) * dense[o * in + i];
        mag += std::fabs(double(x[t * in + i]) * dense[o * in + i]);
      }
      ASSERT_NEAR(y[t * out + o], ref, 1e-5 * mag + 1e-30) << w.name << " token " << t << " row " << o;
    }
}

class LinearFormats : public ::testing::TestWithParam<int> {};

TEST_P(LinearFormats, F32AndBf16) {
  const int n_tokens = GetParam();
  const int64_t out = 7, in = 48;
  auto wf = randn(out * in, 1);
  Owned f32;
  f32.bytes.resize(wf.size() * 4);
  std::memcpy(f32.bytes.data(), wf.data(), f32.bytes.size());
  LinearWeight w;
  w.format = WeightFormat::kBF16;
  w.out_features = out;
  w.in_features = in;
  w.name = "f32";
  w.weight = f32.view("w", DType::kF32, {out, in});
  check_linear(w, wf, n_tokens);

  Owned bf;
  bf.bytes.resize(wf.size() * 2);
  std::vector<float> dense(wf.size());
  for (size_t i = 0; i < wf.size(); ++i) {
    const uint16_t b = f32_to_bf16(wf[i]);
    std::memcpy(bf.bytes.data() + 2 * i, &b, 2);
    dense[i] = bf16_to_f32(b);
  }
  w.name = "bf16";
  w.weight = bf.view("w", DType::kBF16, {out, in});
  check_linear(w, dense, n_tokens);
}

TEST_P(LinearFormats, Fp8PerTensor) {
  const int n_tokens = GetParam();
  const int64_t out = 9, in = 32;
  Owned q = random_fp8(out * in, 2);
  LinearWeight w;
  w.format = WeightFormat::kFP8;
  w.out_features = out;
  w.in_features = in;
  w.name = "fp8";
  w.weight = q.view("w", DType::kF8E4M3, {out, in});
  w.weight_scale_2 = 0.0123f;
  check_linear(w, dequant_fp8(w.weight, w.weight_scale_2), n_tokens);
}

TEST_P(LinearFormats, Nvfp4BlockScaled) {
  const int n_tokens = GetParam();
  const int64_t out = 6, in = 64;
  std::mt19937 rng(3);
  Owned codes;
  codes.bytes.resize(out * in / 2);
  for (auto& b : codes.bytes) b = std::byte(rng() & 0xff);
  Owned scales = random_fp8(out * in / 16, 4, 0x5f);  // positive and negative block scales, no NaN
  for (auto& b : scales.bytes) b &= std::byte(0x7f);   // ModelOpt scales are positive
  LinearWeight w;
  w.format = WeightFormat::kNVFP4;
  w.out_features = out;
  w.in_features = in;
  w.name = "nvfp4";
  w.weight = codes.view("w", DType::kU8, {out, in / 2});
  w.weight_scale = scales.view("s", DType::kF8E4M3, {out, in / 16});
  w.weight_scale_2 = 3.1e-4f;
  check_linear(w, dequant_nvfp4(w.weight, w.weight_scale, w.weight_scale_2), n_tokens);
}

INSTANTIATE_TEST_SUITE_P(Tokens, LinearFormats, ::testing::Values(1, 3, 70));

}  // namespace
}  // namespace quench
