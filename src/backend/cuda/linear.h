// quench/backend/cuda/linear.h: y = x · Wᵀ on the GPU for any stored weight format.
//
// M <= 8 rows (decode): our skinny GEMMs (gemv_kernels.cu) read W once in its stored format.
// Larger M (prefill): cuBLAS bf16 GEMM with fp32 output; FP8/NVFP4 weights are first expanded
// into a per-call bf16 scratch the size of one weight matrix (never the whole model).
#pragma once

#include <cublas_v2.h>

#include "backend/cuda/device_weights.h"

namespace quench::cuda {

class LinearExecutor {
 public:
  LinearExecutor();
  ~LinearExecutor();
  LinearExecutor(const LinearExecutor&) = delete;
  LinearExecutor& operator=(const LinearExecutor&) = delete;

  void set_stream(cudaStream_t s);
  /// y fp32 [M, W.N] = x bf16 [M, W.K] · Wᵀ.
  void run(const DeviceLinear& W, const bf16* x, int M, float* y);
  /// Same for a raw bf16 weight [N, K] (the tied LM head).
  void run_bf16(const bf16* W, int N, int K, const bf16* x, int M, float* y);
  /// Rows at or below which the skinny kernels are used.
  static constexpr int kGemvMaxRows = 8;

 private:
  cublasHandle_t handle_ = nullptr;
  cudaStream_t stream_ = nullptr;
  DeviceBuffer scratch_;     // bf16 dequantized weight
  DeviceBuffer workspace_;   // cuBLAS workspace (fixed, so calls can be graph-captured)
};

}  // namespace quench::cuda
