// quench/backend/cuda/fp8_gemm.cpp: the cuBLASLt FP8 GEMM (fp8_gemm.h).
//
// Column-major view (cuBLAS): yᵀ [N, M] = op(A) · B with A = W stored as K x N column-major
// (= W [N, K] row-major) and op(A) = Aᵀ, B = xq as K x M column-major (= xq [M, K] row-major):
// the "TN" layout, the only one Hopper's FP8 kernels take. alpha = x_scale * w_scale (host
// pointer mode), C = D = y fp32 with beta = 0. Same setup as NVIDIA's LtFp8Matmul sample
// (CUDALibrarySamples/cuBLASLt) with fp32 output instead of a rescaled FP8 one.
#include "backend/cuda/fp8_gemm.h"

#include <fmt/format.h>

namespace quench::cuda {
namespace {

/// Destroys the cuBLASLt descriptors of one call on every exit path.
struct LtDescriptors {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~LtDescriptors() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace

Fp8Gemm::Fp8Gemm() {
  QUENCH_CUBLAS_CHECK(cublasLtCreate(&handle_));
  workspace_.reset(kWorkspaceBytes);
}

Fp8Gemm::~Fp8Gemm() {
  if (handle_) cublasLtDestroy(handle_);
}

void Fp8Gemm::run(const uint8_t* W, float w_scale, int N, int K, const uint8_t* xq, float x_scale, int M, float* y,
                  cudaStream_t stream) {
  if (M < 1 || N < 1 || K < 1 || K % 16 != 0 || N % 4 != 0)
    throw InvalidArgument(fmt::format("FP8 GEMM: shape M={} N={} K={} (need K % 16 == 0 and N % 4 == 0)", M, N, K));
  if (!aligned16(W) || !aligned16(xq) || !aligned16(y))
    throw InvalidArgument(fmt::format("FP8 GEMM M={} N={} K={}: W, x and y must be 16-byte aligned", M, N, K));
  LtDescriptors d;
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  QUENCH_CUBLAS_CHECK(cublasLtMatmulDescCreate(&d.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  QUENCH_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  QUENCH_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  QUENCH_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d.a, CUDA_R_8F_E4M3, K, N, K));
  QUENCH_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d.b, CUDA_R_8F_E4M3, K, M, K));
  QUENCH_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d.c, CUDA_R_32F, N, M, N));
  const auto key = std::make_tuple(M, N, K);
  auto it = algos_.find(key);
  if (it == algos_.end()) {
    QUENCH_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&d.pref));
    const size_t ws = workspace_.bytes();
    QUENCH_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(d.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                                             sizeof(ws)));
    cublasLtMatmulHeuristicResult_t result = {};
    int found = 0;
    QUENCH_CUBLAS_CHECK(
        cublasLtMatmulAlgoGetHeuristic(handle_, d.op, d.a, d.b, d.c, d.c, d.pref, 1, &result, &found));
    if (found == 0)
      throw CudaError(fmt::format("FP8 GEMM M={} N={} K={}: cuBLASLt has no algorithm for E4M3 x E4M3 -> fp32", M, N, K));
    if (algos_.size() >= kMaxCachedShapes) algos_.clear();
    it = algos_.emplace(key, result.algo).first;
  }
  const float alpha = x_scale * w_scale, beta = 0.0f;
  QUENCH_CUBLAS_CHECK(cublasLtMatmul(handle_, d.op, &alpha, W, d.a, xq, d.b, &beta, y, d.c, y, d.c, &it->second,
                                     workspace_.get(), workspace_.bytes(), stream));
}

}  // namespace quench::cuda
