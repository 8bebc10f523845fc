// quench/backend/cuda/linear.h: y = x · Wᵀ on the GPU for any stored weight format.
//
// M <= 8 rows (decode): our skinny GEMMs (gemv_kernels.cu) read W once in its stored format.
// 8 < M <= 128 with FP8/NVFP4 weights (batched decode): the tensor-core weight-only GEMM
// (mma_gemm.h), W dequantized in registers; gate/up and q/k/v groups in one launch.
// Otherwise (prefill, bf16 weights): cuBLAS bf16 GEMM with fp32 output; FP8/NVFP4 weights are
// first expanded into a per-call bf16 scratch the size of one weight matrix (never the whole
// model), which at M = 2048 is 3-4x faster than our kernel (H200 run 2).
#pragma once

#include <cublas_v2.h>

#include <span>

#include "backend/cuda/device_weights.h"

namespace quench::cuda {

struct GemmWeight;  // mma_gemm.h

/// One Linear of LinearExecutor::run_multi: y fp32 [M, W->N] = x · W->ᵀ.
struct LinearJob {
  const DeviceLinear* W = nullptr;
  float* y = nullptr;
};

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
  /// Several Linears on the same input x bf16 [M, K] (q, k, v of a layer): each jobs[j].y =
  /// x · W_jᵀ. For M <= kGemvMaxRows and one weight format: one launch (gemv_multi, up to
  /// kGemvMaxJobs Linears per launch); otherwise one run() per job. All jobs must share K.
  void run_multi(std::span<const LinearJob> jobs, const bf16* x, int M);
  /// The MLP's first half (gemma4-architecture.md §2.7): act bf16 [M, N] =
  /// bf16(gelu_tanh(x · gateᵀ) * (x · upᵀ)) for gate/up [N, K] of one format. For M <=
  /// kGemvMaxRows one fused launch (gemv_gate_up_gelu, the products stay in registers); otherwise
  /// two run() into an fp32 scratch kept here, then gelu_tanh_mul.
  void run_gate_up_gelu(const DeviceLinear& gate, const DeviceLinear& up, const bf16* x, int M, bf16* act);
  /// Allocates now the fp32 scratch run_gate_up_gelu needs for up to `max_rows` rows of
  /// `inter` features, so later calls (e.g. during CUDA-graph capture) allocate nothing.
  void reserve_mlp_scratch(int max_rows, int inter);
  /// Rows at or below which the skinny kernels are used.
  static constexpr int kGemvMaxRows = cuda::kGemvMaxRows;

 private:
  /// mma_gemm_multi over n <= 4 weights of one format and K (workspace in scratch_).
  void run_mma_multi(const GemmWeight* w, float* const* ys, int n, const bf16* x, int M);

  cublasHandle_t handle_ = nullptr;
  cudaStream_t stream_ = nullptr;
  DeviceBuffer scratch_;     // bf16 dequantized weight
  DeviceBuffer workspace_;   // cuBLAS workspace (fixed, so calls can be graph-captured)
  DeviceBuffer mlp_scratch_; // fp32 gate and up [M, N] each, for run_gate_up_gelu with M > 8
};

}  // namespace quench::cuda
