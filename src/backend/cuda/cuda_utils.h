// quench/backend/cuda/cuda_utils.h: error checking and RAII device memory for the CUDA backend.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <string>
#include <utility>

#include "core/error.h"

namespace quench::cuda {

/// Thrown for any failed CUDA runtime / cuBLAS call; the message names the call and the location.
class CudaError : public Error {
 public:
  using Error::Error;
};

[[noreturn]] void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line);
[[noreturn]] void throw_cublas_error(int status, const char* expr, const char* file, int line);

#define QUENCH_CUDA_CHECK(expr)                                                     \
  do {                                                                              \
    cudaError_t quench_err_ = (expr);                                               \
    if (quench_err_ != cudaSuccess)                                                 \
      ::quench::cuda::throw_cuda_error(quench_err_, #expr, __FILE__, __LINE__);     \
  } while (0)

#define QUENCH_CUBLAS_CHECK(expr)                                                   \
  do {                                                                              \
    int quench_st_ = static_cast<int>(expr);                                        \
    if (quench_st_ != 0)                                                            \
      ::quench::cuda::throw_cublas_error(quench_st_, #expr, __FILE__, __LINE__);    \
  } while (0)

/// Checks the last launch error (call after every kernel launch).
#define QUENCH_CUDA_LAUNCH_CHECK() QUENCH_CUDA_CHECK(cudaGetLastError())

/// Owning device allocation (cudaMalloc; never managed memory).
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t bytes) { reset(bytes); }
  ~DeviceBuffer() { release(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      release();
      ptr_ = std::exchange(o.ptr_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }
  /// Frees any old allocation and allocates `bytes` (uninitialised).
  void reset(std::size_t bytes);
  void release() noexcept;
  template <typename T = void>
  T* get() const { return static_cast<T*>(ptr_); }
  std::size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};

/// True when a CUDA device is usable (tests skip otherwise).
bool cuda_device_available();
/// "NVIDIA H200 (sm_90, 132 SMs, 139.8 GiB)".
std::string cuda_device_description(int device = 0);

}  // namespace quench::cuda
