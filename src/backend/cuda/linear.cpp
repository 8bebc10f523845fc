// quench/backend/cuda/linear.cpp: format dispatch of Linear layers (see linear.h).
#include "backend/cuda/linear.h"

#include <algorithm>

#include "backend/cuda/mma_gemm.h"

namespace quench::cuda {

LinearExecutor::LinearExecutor() {
  QUENCH_CUBLAS_CHECK(cublasCreate(&handle_));
  workspace_.reset(32u << 20);
  QUENCH_CUBLAS_CHECK(cublasSetWorkspace(handle_, workspace_.get(), workspace_.bytes()));
  QUENCH_CUBLAS_CHECK(cublasSetMathMode(handle_, CUBLAS_DEFAULT_MATH));
}

LinearExecutor::~LinearExecutor() {
  if (handle_) cublasDestroy(handle_);
}

void LinearExecutor::set_stream(cudaStream_t s) {
  stream_ = s;
  QUENCH_CUBLAS_CHECK(cublasSetStream(handle_, s));
}

void LinearExecutor::run_bf16(const bf16* W, int N, int K, const bf16* x, int M, float* y) {
  if (M <= kGemvMaxRows) {
    gemv_bf16(W, N, K, x, M, y, stream_);
    return;
  }
  // Column-major view: yᵀ [N, M] = (W [K, N])ᵀ · xᵀ [K, M].
  const float alpha = 1.0f, beta = 0.0f;
  QUENCH_CUBLAS_CHECK(cublasGemmEx(handle_, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &alpha, W, CUDA_R_16BF, K, x,
                                   CUDA_R_16BF, K, &beta, y, CUDA_R_32F, N, CUBLAS_COMPUTE_32F,
                                   CUBLAS_GEMM_DEFAULT));
}

void LinearExecutor::run(const DeviceLinear& W, const bf16* x, int M, float* y) {
  if (M == 0) return;
  if (M > kGemvMaxRows && mma_gemm_preferred(W, M)) {
    // Tensor-core GEMM on the stored format (mma_gemm.h). Its split-K workspace lives in scratch_,
    // sized at least like the bf16 copy the cuBLAS path below needs, so no later call regrows it
    // under a captured graph.
    const size_t deq = W.format == WeightFormat::kBF16 ? 0 : static_cast<size_t>(W.N) * W.K * sizeof(bf16);
    const size_t need = std::max({kMmaGemmMaxWorkspace, deq, mma_gemm_workspace_bytes(W, M)});
    if (scratch_.bytes() < need) scratch_.reset(need);
    mma_gemm(W, x, M, y, scratch_.get(), scratch_.bytes(), stream_);
    return;
  }
  switch (W.format) {
    case WeightFormat::kBF16:
      run_bf16(W.data.get<bf16>(), W.N, W.K, x, M, y);
      return;
    case WeightFormat::kFP8:
      if (M <= kGemvMaxRows) {
        gemv_fp8(W.data.get<uint8_t>(), W.scale, W.N, W.K, x, M, y, stream_);
        return;
      }
      break;
    case WeightFormat::kNVFP4:
      if (M <= kGemvMaxRows) {
        gemv_nvfp4(W.data.get<uint8_t>(), W.block_scales.get<uint8_t>(), W.scale, W.N, W.K, x, M, y, stream_);
        return;
      }
      break;
  }
  const size_t need = static_cast<size_t>(W.N) * W.K * sizeof(bf16);
  if (scratch_.bytes() < need) scratch_.reset(need);
  dequant_weight_to_bf16(gemm_weight(W), scratch_.get<bf16>(), stream_);  // coalesced (mma_gemm_dequant.cu)
  run_bf16(scratch_.get<bf16>(), W.N, W.K, x, M, y);
}

}  // namespace quench::cuda
