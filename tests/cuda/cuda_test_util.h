// tests/cuda/cuda_test_util.h: helpers shared by the GPU tests (skip without a device, random
// data, relative L2 error).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "backend/cuda/cuda_utils.h"
#include "core/numeric.h"

#define QUENCH_SKIP_WITHOUT_GPU()                                                        \
  do {                                                                                   \
    if (!::quench::cuda::cuda_device_available())                                        \
      GTEST_SKIP() << "no CUDA device: GPU test skipped (runs on the GPU host through "  \
                      "scripts/gpu-check.sh)";                                           \
  } while (0)

namespace quench::testing {

/// ||a - b|| / ||b|| in double.
inline double rel_l2(const float* a, const float* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / (den > 0 ? den : 1e-300));
}

/// n bf16 values ~ N(0, sigma), returned as bits; `f` gets the exact fp32 values.
inline std::vector<uint16_t> random_bf16(size_t n, float sigma, std::mt19937& rng, std::vector<float>& f) {
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<uint16_t> b(n);
  f.resize(n);
  for (size_t i = 0; i < n; ++i) {
    b[i] = f32_to_bf16(d(rng));
    f[i] = bf16_to_f32(b[i]);
  }
  return b;
}

template <typename T>
inline cuda::DeviceBuffer to_device(const std::vector<T>& v) {
  cuda::DeviceBuffer b(v.size() * sizeof(T));
  QUENCH_CUDA_CHECK(cudaMemcpy(b.get(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  return b;
}

template <typename T>
inline std::vector<T> to_host(const cuda::DeviceBuffer& b, size_t n) {
  std::vector<T> v(n);
  QUENCH_CUDA_CHECK(cudaMemcpy(v.data(), b.get(), n * sizeof(T), cudaMemcpyDeviceToHost));
  return v;
}

/// Fills a device buffer with a NaN pattern so unwritten outputs are caught.
inline void poison(cuda::DeviceBuffer& b) { QUENCH_CUDA_CHECK(cudaMemset(b.get(), 0xff, b.bytes())); }

}  // namespace quench::testing
