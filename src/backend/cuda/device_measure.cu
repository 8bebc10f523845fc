// quench/backend/cuda/device_measure.cu: see device_measure.h.
#include <cublas_v2.h>

#include <algorithm>
#include <vector>

#include "backend/cuda/cuda_utils.h"
#include "backend/cuda/device_measure.h"
#include "backend/cuda/kernels.h"

namespace quench::cuda {
namespace {

__global__ void fill_random_bf16(bf16* p, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
    h ^= h >> 13;
    h *= 0x5bd1e995u;
    h ^= h >> 15;
    p[i] = __float2bfloat16((static_cast<float>(h & 0xffff) / 65536.0f - 0.5f));
  }
}

template <typename F>
double median_ms(F&& f, int reps) {
  cudaEvent_t a, b;
  QUENCH_CUDA_CHECK(cudaEventCreate(&a));
  QUENCH_CUDA_CHECK(cudaEventCreate(&b));
  for (int i = 0; i < 3; ++i) f();
  std::vector<float> ms;
  for (int i = 0; i < reps; ++i) {
    QUENCH_CUDA_CHECK(cudaEventRecord(a));
    f();
    QUENCH_CUDA_CHECK(cudaEventRecord(b));
    QUENCH_CUDA_CHECK(cudaEventSynchronize(b));
    float t = 0;
    QUENCH_CUDA_CHECK(cudaEventElapsedTime(&t, a, b));
    ms.push_back(t);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

double measure_copy_bandwidth() {
  const size_t bytes = 2ull << 30;
  DeviceBuffer src(bytes), dst(bytes);
  fill_random_bf16<<<4096, 256>>>(src.get<bf16>(), bytes / 2, 1);
  QUENCH_CUDA_LAUNCH_CHECK();
  const double ms = median_ms([&] { QUENCH_CUDA_CHECK(cudaMemcpyAsync(dst.get(), src.get(), bytes, cudaMemcpyDeviceToDevice)); }, 10);
  return 2.0 * bytes / (ms * 1e-3);
}

double measure_bf16_gemm_peak() {
  const int n = 8192;
  DeviceBuffer a(size_t(n) * n * 2), b(size_t(n) * n * 2), c(size_t(n) * n * 2);
  fill_random_bf16<<<4096, 256>>>(a.get<bf16>(), size_t(n) * n, 2);
  fill_random_bf16<<<4096, 256>>>(b.get<bf16>(), size_t(n) * n, 3);
  QUENCH_CUDA_LAUNCH_CHECK();
  cublasHandle_t h;
  QUENCH_CUBLAS_CHECK(cublasCreate(&h));
  const float alpha = 1.0f, beta = 0.0f;
  const double ms = median_ms(
      [&] {
        QUENCH_CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, a.get(), CUDA_R_16BF, n, b.get(),
                                         CUDA_R_16BF, n, &beta, c.get(), CUDA_R_16BF, n, CUBLAS_COMPUTE_32F,
                                         CUBLAS_GEMM_DEFAULT));
      },
      10);
  cublasDestroy(h);
  return 2.0 * n * double(n) * n / (ms * 1e-3);
}

}  // namespace quench::cuda
