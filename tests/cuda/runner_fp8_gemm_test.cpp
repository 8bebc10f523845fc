// tests/cuda/runner_fp8_gemm_test.cpp: the FP8 prefill path (fp8_gemm.h) on random data with
// poisoned outputs: the activation quantization byte for byte against the host's E4M3 rounding
// (core/numeric.h, itself checked against torch's casts), and the cuBLASLt E4M3 x E4M3 GEMM
// against a float64 product of the same codes times the two scales.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "backend/cuda/fp8_gemm.h"
#include "core/numeric.h"
#include "cuda_test_util.h"

namespace quench {
namespace {

/// Random E4M3 codes (NaN codes 0x7f / 0xff excluded).
std::vector<uint8_t> random_e4m3(size_t n, std::mt19937& rng) {
  std::uniform_int_distribution<int> b(0, 255);
  std::vector<uint8_t> v(n);
  for (auto& c : v) {
    do c = static_cast<uint8_t>(b(rng));
    while ((c & 0x7f) == 0x7f);
  }
  return v;
}

TEST(Fp8Prefill, QuantizeMatchesHostRounding) {
  QUENCH_SKIP_WITHOUT_GPU();
  std::mt19937 rng(11);
  for (const size_t n : {size_t(8), size_t(4099), size_t(3840) * 37}) {
    for (const float scale : {0.0123f, 1.0f, 7.5f}) {
      std::vector<float> f;
      // sigma 3 / scale 0.0123: most values saturate at +-448; scale 7.5: many subnormals.
      const std::vector<uint16_t> x = testing::random_bf16(n, 3.0f, rng, f);
      auto d_x = testing::to_device(x);
      cuda::DeviceBuffer d_q(n);
      testing::poison(d_q);
      cuda::quantize_fp8_e4m3(d_x.get<cuda::bf16>(), n, scale, d_q.get<uint8_t>(), nullptr);
      QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
      const auto q = testing::to_host<uint8_t>(d_q, n);
      const float inv = 1.0f / scale;
      int bad = 0;
      for (size_t i = 0; i < n; ++i) {
        const uint8_t want = f32_to_fp8e4m3(bf16_to_f32(x[i]) * inv, /*saturate=*/true);
        if (q[i] != want && ++bad <= 5)
          ADD_FAILURE() << "n " << n << " scale " << scale << " [" << i << "] x " << bf16_to_f32(x[i]) << ": got 0x"
                        << std::hex << int(q[i]) << ", want 0x" << int(want) << std::dec;
      }
      EXPECT_EQ(bad, 0);
    }
  }
  std::vector<uint16_t> one(8, 0);
  auto d1 = testing::to_device(one);
  cuda::DeviceBuffer dq(8);
  EXPECT_THROW(cuda::quantize_fp8_e4m3(d1.get<cuda::bf16>(), 8, 0.0f, dq.get<uint8_t>(), nullptr), InvalidArgument);
}

TEST(Fp8Prefill, GemmMatchesFloat64Reference) {
  QUENCH_SKIP_WITHOUT_GPU();
  std::mt19937 rng(23);
  cuda::Fp8Gemm gemm;
  // (M, N, K): prefill-sized row counts (> 128) on a thin slice of the 12B's K = 3840 / 15360.
  for (const auto& [M, N, K] : {std::tuple{129, 64, 3840}, std::tuple{300, 256, 1024}, std::tuple{160, 48, 15360}}) {
    const std::vector<uint8_t> w = random_e4m3(size_t(N) * K, rng), x = random_e4m3(size_t(M) * K, rng);
    const float w_scale = 0.0173f, x_scale = 0.31f;
    auto d_w = testing::to_device(w), d_x = testing::to_device(x);
    cuda::DeviceBuffer d_y(size_t(M) * N * 4);
    testing::poison(d_y);
    gemm.run(d_w.get<uint8_t>(), w_scale, N, K, d_x.get<uint8_t>(), x_scale, M, d_y.get<float>(), nullptr);
    QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
    const auto y = testing::to_host<float>(d_y, size_t(M) * N);
    std::vector<float> wf(w.size()), xf(x.size()), ref(size_t(M) * N);
    for (size_t i = 0; i < w.size(); ++i) wf[i] = fp8e4m3_to_f32(w[i]);
    for (size_t i = 0; i < x.size(); ++i) xf[i] = fp8e4m3_to_f32(x[i]);
    for (int m = 0; m < M; ++m)
      for (int n = 0; n < N; ++n) {
        double acc = 0;
        const float* a = xf.data() + size_t(m) * K;
        const float* b = wf.data() + size_t(n) * K;
        for (int k = 0; k < K; ++k) acc += double(a[k]) * b[k];
        ref[size_t(m) * N + n] = static_cast<float>(acc * x_scale * w_scale);
      }
    for (size_t i = 0; i < y.size(); ++i) ASSERT_TRUE(std::isfinite(y[i])) << "y[" << i << "] not written";
    const double err = testing::rel_l2(y.data(), ref.data(), y.size());
    std::printf("[ fp8 gemm ] M=%d N=%d K=%d: rel L2 vs float64 %.3e\n", M, N, K, err);
    // Exact products, fp32 accumulation (promoted periodically: cuBLASLt fast accumulation is off);
    // a layout or scale mistake is an O(1) error.
    EXPECT_LT(err, 1e-3);
  }
  cuda::DeviceBuffer big(64 * 64 * 4);
  EXPECT_THROW(gemm.run(big.get<uint8_t>(), 1.0f, 64, 40, big.get<uint8_t>(), 1.0f, 64, big.get<float>(), nullptr),
               InvalidArgument);  // K not a multiple of 16
}

}  // namespace
}  // namespace quench
