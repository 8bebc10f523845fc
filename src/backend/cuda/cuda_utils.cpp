// quench/backend/cuda/cuda_utils.cpp: implementations for cuda_utils.h.
#include "backend/cuda/cuda_utils.h"

#include <fmt/format.h>

namespace quench::cuda {

void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line) {
  throw CudaError(fmt::format("CUDA error {} ({}) in {} at {}:{}", static_cast<int>(err),
                              cudaGetErrorString(err), expr, file, line));
}

void throw_cublas_error(int status, const char* expr, const char* file, int line) {
  throw CudaError(fmt::format("cuBLAS status {} in {} at {}:{}", status, expr, file, line));
}

void DeviceBuffer::reset(std::size_t bytes) {
  release();
  if (bytes == 0) return;
  QUENCH_CUDA_CHECK(cudaMalloc(&ptr_, bytes));
  bytes_ = bytes;
}

void DeviceBuffer::release() noexcept {
  if (ptr_) cudaFree(ptr_);
  ptr_ = nullptr;
  bytes_ = 0;
}

bool cuda_device_available() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

std::string cuda_device_description(int device) {
  cudaDeviceProp p{};
  QUENCH_CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  return fmt::format("{} (sm_{}{}, {} SMs, {:.1f} GiB)", p.name, p.major, p.minor, p.multiProcessorCount,
                     p.totalGlobalMem / double(1ull << 30));
}

}  // namespace quench::cuda
