// quench/backend/cuda/linear.cpp: format dispatch of Linear layers (see linear.h).
#include "backend/cuda/linear.h"

#include <algorithm>
#include <string>

#include "backend/cuda/mma_gemm.h"

namespace quench::cuda {

namespace {

/// The skinny-GEMM view of a resident Linear writing to y.
GemvJob gemv_job(const DeviceLinear& W, float* y) {
  GemvJob j;
  j.format = W.format == WeightFormat::kBF16  ? GemvFormat::kBF16
             : W.format == WeightFormat::kFP8 ? GemvFormat::kFP8
                                              : GemvFormat::kNVFP4;
  j.W = W.data.get();
  j.scales = W.format == WeightFormat::kNVFP4 ? W.block_scales.get<uint8_t>() : nullptr;
  j.scale = W.scale;
  j.N = W.N;
  j.y = y;
  return j;
}

}  // namespace

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
  if (W.format == WeightFormat::kFP8)
    dequant_fp8_to_bf16(W.data.get<uint8_t>(), W.scale, W.N, W.K, scratch_.get<bf16>(), stream_);
  else
    dequant_nvfp4_to_bf16(W.data.get<uint8_t>(), W.block_scales.get<uint8_t>(), W.scale, W.N, W.K,
                          scratch_.get<bf16>(), stream_);
  run_bf16(scratch_.get<bf16>(), W.N, W.K, x, M, y);
}

}  // namespace quench::cuda

namespace quench::cuda {

void LinearExecutor::run_multi(std::span<const LinearJob> jobs, const bf16* x, int M) {
  if (M == 0 || jobs.empty()) return;
  const int K = jobs[0].W->K;
  for (size_t j = 0; j < jobs.size(); ++j)
    if (jobs[j].W->K != K)
      throw InvalidArgument("LinearExecutor::run_multi: job " + std::to_string(j) + " has K = " +
                            std::to_string(jobs[j].W->K) + ", job 0 has K = " + std::to_string(K) +
                            "; all jobs read the same input");
  bool one_format = true;
  for (const LinearJob& j : jobs) one_format = one_format && j.W->format == jobs[0].W->format;
  if (M > kGemvMaxRows && one_format && jobs.size() <= 4) {
    bool preferred = true;
    for (const LinearJob& j : jobs) preferred = preferred && mma_gemm_preferred(*j.W, M);
    if (preferred) {  // one tensor-core launch for the group (mma_gemm_multi)
      GemmWeight w[4];
      float* ys[4];
      for (size_t j = 0; j < jobs.size(); ++j) {
        w[j] = gemm_weight(*jobs[j].W);
        ys[j] = jobs[j].y;
      }
      run_mma_multi(w, ys, static_cast<int>(jobs.size()), x, M);
      return;
    }
  }
  if (M > kGemvMaxRows || !one_format) {
    for (const LinearJob& j : jobs) run(*j.W, x, M, j.y);
    return;
  }
  for (size_t first = 0; first < jobs.size(); first += kGemvMaxJobs) {
    GemvJob g[kGemvMaxJobs];
    const size_t n = std::min(jobs.size() - first, static_cast<size_t>(kGemvMaxJobs));
    for (size_t j = 0; j < n; ++j) g[j] = gemv_job(*jobs[first + j].W, jobs[first + j].y);
    gemv_multi(g, static_cast<int>(n), K, x, M, stream_);
  }
}

void LinearExecutor::run_mma_multi(const GemmWeight* w, float* const* ys, int n, const bf16* x, int M) {
  // The workspace lives in scratch_, sized at least like run()'s (the bf16 copy of the largest
  // member), so a later run() on any of these weights never regrows it under a captured graph.
  size_t need = std::max(kMmaGemmMaxWorkspace, mma_gemm_multi_workspace_bytes(w, n, M));
  for (int j = 0; j < n; ++j)
    if (w[j].format != WeightFormat::kBF16) need = std::max(need, static_cast<size_t>(w[j].N) * w[j].K * sizeof(bf16));
  if (scratch_.bytes() < need) scratch_.reset(need);
  mma_gemm_multi(w, ys, n, x, M, scratch_.get(), scratch_.bytes(), stream_);
}

void LinearExecutor::reserve_mlp_scratch(int max_rows, int inter) {
  const size_t need = 2 * static_cast<size_t>(max_rows) * inter * sizeof(float);
  if (mlp_scratch_.bytes() < need) mlp_scratch_.reset(need);
}

void LinearExecutor::run_gate_up_gelu(const DeviceLinear& gate, const DeviceLinear& up, const bf16* x, int M,
                                      bf16* act) {
  if (M == 0) return;
  if (gate.N != up.N || gate.K != up.K)
    throw InvalidArgument("LinearExecutor::run_gate_up_gelu: gate [" + std::to_string(gate.N) + ", " +
                          std::to_string(gate.K) + "] and up [" + std::to_string(up.N) + ", " +
                          std::to_string(up.K) + "] must have the same shape");
  const int N = gate.N;
  if (M <= kGemvMaxRows && gate.format == up.format) {
    gemv_gate_up_gelu(gemv_job(gate, nullptr), gemv_job(up, nullptr), gate.K, x, M, act, stream_);
    return;
  }
  const size_t half = static_cast<size_t>(M) * N;
  if (mlp_scratch_.bytes() < 2 * half * sizeof(float)) {
    cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    QUENCH_CUDA_CHECK(cudaStreamIsCapturing(stream_, &cs));
    if (cs != cudaStreamCaptureStatusNone)
      throw InvalidArgument("LinearExecutor::run_gate_up_gelu: M = " + std::to_string(M) + " rows of " +
                            std::to_string(N) + " features need an fp32 scratch that was not reserved before "
                            "graph capture (call reserve_mlp_scratch)");
    reserve_mlp_scratch(M, N);
  }
  float* g = mlp_scratch_.get<float>();
  float* u = g + half;
  if (M > kGemvMaxRows && gate.format == up.format && mma_gemm_preferred(gate, M) && mma_gemm_preferred(up, M)) {
    // gate and up in one tensor-core launch (H200 run 2: NVFP4 M=64 122 us vs 168 us as two).
    const GemmWeight w[2] = {gemm_weight(gate), gemm_weight(up)};
    float* ys[2] = {g, u};
    run_mma_multi(w, ys, 2, x, M);
  } else {
    run(gate, x, M, g);
    run(up, x, M, u);
  }
  gelu_tanh_mul(g, N, u, N, M, N, act, stream_);
}

}  // namespace quench::cuda
