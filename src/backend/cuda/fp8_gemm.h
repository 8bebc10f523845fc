// quench/backend/cuda/fp8_gemm.h: prefill GEMMs on FP8 E4M3 weights with FP8 activations
// (cuBLASLt, the H200's FP8 tensor cores), as vLLM runs FP8 checkpoints with static activation
// scales: the activations are quantized with the checkpoint's per-tensor `input_scale`
// (vllm/_custom_ops.py scaled_fp8_quant with a given scale: q = sat_e4m3(x / scale)), then
// y = (q · Wᵀ) * (input_scale * weight_scale) with fp32 accumulation (torch._scaled_mm /
// cutlass_scaled_mm). For M > 128 rows this replaces "dequantize W to a bf16 scratch + cuBLAS
// bf16": half the operand bytes, twice the tensor-core rate, no per-call expansion of W.
#pragma once

#include <cublasLt.h>

#include <cstdint>
#include <map>
#include <tuple>

#include "backend/cuda/cuda_utils.h"
#include "backend/cuda/kernels.h"

namespace quench::cuda {

/// out[i] = E4M3 code of saturate(float(x[i]) * (1 / scale)) rounded to nearest even (the
/// host's f32_to_fp8e4m3(v, saturate=true), core/numeric.h); x bf16 [n], out u8 [n]. scale > 0.
/// Throws InvalidArgument for scale <= 0 (or not finite), CudaError on a failed launch.
void quantize_fp8_e4m3(const bf16* x, size_t n, float scale, uint8_t* out, cudaStream_t stream);

/// cuBLASLt FP8 GEMM with per-tensor scales; one handle and workspace, heuristic results cached
/// per (M, N, K) (at most kMaxCachedShapes, then the cache restarts).
class Fp8Gemm {
 public:
  Fp8Gemm();
  ~Fp8Gemm();
  Fp8Gemm(const Fp8Gemm&) = delete;
  Fp8Gemm& operator=(const Fp8Gemm&) = delete;

  /// y fp32 [M, N] = (xq · Wᵀ) * (x_scale * w_scale), with W E4M3 [N, K] (row-major, as stored),
  /// xq E4M3 [M, K] (quantize_fp8_e4m3 with x_scale), fp32 accumulation. Needs K % 16 == 0 and
  /// N % 4 == 0 and 16-byte aligned pointers (cuBLASLt's FP8 rules); throws InvalidArgument
  /// otherwise (naming the shape), CudaError when cuBLASLt offers no algorithm or fails.
  void run(const uint8_t* W, float w_scale, int N, int K, const uint8_t* xq, float x_scale, int M, float* y,
           cudaStream_t stream);

  static constexpr size_t kWorkspaceBytes = 32u << 20;
  static constexpr size_t kMaxCachedShapes = 256;

 private:
  cublasLtHandle_t handle_ = nullptr;
  DeviceBuffer workspace_;
  std::map<std::tuple<int, int, int>, cublasLtMatmulAlgo_t> algos_;
};

}  // namespace quench::cuda
