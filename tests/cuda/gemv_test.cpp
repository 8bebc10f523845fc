// tests/cuda/gemv_test.cpp: the decode GEMMs (bf16, FP8, NVFP4) against dequantize-then-matmul in
// double on the CPU, on fresh random data each check, with poisoned outputs.
#include <gtest/gtest.h>

#include "backend/cuda/kernels.h"
#include "cuda_test_util.h"
#include "io/dequant.h"

namespace quench {
namespace {

using testing::rel_l2;

struct Shape {
  int N, K, M;
};

std::vector<float> reference(const std::vector<float>& W, const std::vector<float>& x, int N, int K, int M) {
  std::vector<float> y(static_cast<size_t>(M) * N);
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double s = 0;
      for (int k = 0; k < K; ++k) s += static_cast<double>(W[static_cast<size_t>(n) * K + k]) * x[static_cast<size_t>(m) * K + k];
      y[static_cast<size_t>(m) * N + n] = static_cast<float>(s);
    }
  return y;
}

class GemvTest : public ::testing::TestWithParam<Shape> {};

TEST_P(GemvTest, Bf16MatchesReference) {
  QUENCH_SKIP_WITHOUT_GPU();
  const auto [N, K, M] = GetParam();
  std::mt19937 rng(1234 + N + K + M);
  std::vector<float> wf, xf;
  auto w = testing::random_bf16(static_cast<size_t>(N) * K, 0.05f, rng, wf);
  auto x = testing::random_bf16(static_cast<size_t>(M) * K, 1.0f, rng, xf);
  auto dw = testing::to_device(w), dx = testing::to_device(x);
  cuda::DeviceBuffer dy(static_cast<size_t>(M) * N * 4);
  testing::poison(dy);
  cuda::gemv_bf16(dw.get<cuda::bf16>(), N, K, dx.get<cuda::bf16>(), M, dy.get<float>(), nullptr);
  QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
  auto y = testing::to_host<float>(dy, static_cast<size_t>(M) * N);
  auto ref = reference(wf, xf, N, K, M);
  EXPECT_LT(rel_l2(y.data(), ref.data(), y.size()), 1e-5);
}

TEST_P(GemvTest, Fp8MatchesReference) {
  QUENCH_SKIP_WITHOUT_GPU();
  const auto [N, K, M] = GetParam();
  std::mt19937 rng(99 + N + K + M);
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<uint8_t> w(static_cast<size_t>(N) * K);
  for (auto& b : w) {
    do b = static_cast<uint8_t>(byte(rng));
    while ((b & 0x7f) == 0x7f);  // no NaN codes
  }
  const float scale = 0.0137f;
  TensorView tv{"w", DType::kF8E4M3, {N, K}, reinterpret_cast<const std::byte*>(w.data()), w.size()};
  const std::vector<float> wf = dequant_fp8(tv, scale);
  std::vector<float> xf;
  auto x = testing::random_bf16(static_cast<size_t>(M) * K, 1.0f, rng, xf);
  auto dw = testing::to_device(w), dx = testing::to_device(x);
  cuda::DeviceBuffer dy(static_cast<size_t>(M) * N * 4);
  testing::poison(dy);
  cuda::gemv_fp8(dw.get<uint8_t>(), scale, N, K, dx.get<cuda::bf16>(), M, dy.get<float>(), nullptr);
  QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
  auto y = testing::to_host<float>(dy, static_cast<size_t>(M) * N);
  auto ref = reference(wf, xf, N, K, M);
  EXPECT_LT(rel_l2(y.data(), ref.data(), y.size()), 1e-5);
}

TEST_P(GemvTest, Nvfp4MatchesDequantizedReference) {
  QUENCH_SKIP_WITHOUT_GPU();
  const auto [N, K, M] = GetParam();
  std::mt19937 rng(7 + N + K + M);
  std::uniform_int_distribution<int> byte(0, 255), sbyte(0x20, 0x60);
  std::vector<uint8_t> q(static_cast<size_t>(N) * K / 2), s(static_cast<size_t>(N) * K / 16);
  for (auto& b : q) b = static_cast<uint8_t>(byte(rng));
  for (auto& b : s) b = static_cast<uint8_t>(sbyte(rng));
  const float g = 0.00071f;
  TensorView tq{"w", DType::kU8, {N, K / 2}, reinterpret_cast<const std::byte*>(q.data()), q.size()};
  TensorView ts{"s", DType::kF8E4M3, {N, K / 16}, reinterpret_cast<const std::byte*>(s.data()), s.size()};
  const std::vector<float> wf = dequant_nvfp4(tq, ts, g);
  std::vector<float> xf;
  auto x = testing::random_bf16(static_cast<size_t>(M) * K, 1.0f, rng, xf);
  auto dq = testing::to_device(q), ds = testing::to_device(s), dx = testing::to_device(x);
  cuda::DeviceBuffer dy(static_cast<size_t>(M) * N * 4);
  testing::poison(dy);
  cuda::gemv_nvfp4(dq.get<uint8_t>(), ds.get<uint8_t>(), g, N, K, dx.get<cuda::bf16>(), M, dy.get<float>(), nullptr);
  QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
  auto y = testing::to_host<float>(dy, static_cast<size_t>(M) * N);
  auto ref = reference(wf, xf, N, K, M);
  EXPECT_LT(rel_l2(y.data(), ref.data(), y.size()), 1e-5);

  // The prefill path's dequantization: bf16(w) must equal the exact value rounded once.
  cuda::DeviceBuffer dwb(static_cast<size_t>(N) * K * 2);
  testing::poison(dwb);
  cuda::dequant_nvfp4_to_bf16(dq.get<uint8_t>(), ds.get<uint8_t>(), g, N, K, dwb.get<cuda::bf16>(), nullptr);
  QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
  auto wb = testing::to_host<uint16_t>(dwb, static_cast<size_t>(N) * K);
  size_t bad = 0;
  for (size_t i = 0; i < wb.size(); ++i) bad += wb[i] != f32_to_bf16(wf[i]);
  EXPECT_EQ(bad, 0u);
}

INSTANTIATE_TEST_SUITE_P(Shapes, GemvTest,
                         ::testing::Values(Shape{64, 64, 1}, Shape{256, 3840, 1}, Shape{513, 1024, 3},
                                           Shape{3840, 15360, 1}, Shape{15360, 3840, 8}, Shape{100, 512, 5}),
                         [](const ::testing::TestParamInfo<Shape>& i) {
                           return "N" + std::to_string(i.param.N) + "_K" + std::to_string(i.param.K) + "_M" +
                                  std::to_string(i.param.M);
                         });

}  // namespace
}  // namespace quench
