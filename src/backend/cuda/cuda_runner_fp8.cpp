// quench/backend/cuda/cuda_runner_fp8.cpp: the CUDA runner's FP8 prefill path (set_fp8_prefill):
// FP8 weights with a checkpoint input_scale at more than kFp8MinRows rows run as E4M3 activations
// x E4M3 weights on the FP8 tensor cores (fp8_gemm.h, cuBLASLt), as vLLM runs FP8 checkpoints
// with static activation scales; everything else goes through the LinearExecutor.
#include "backend/cuda/cuda_runner.h"

#include <algorithm>
#include <utility>

namespace quench::cuda {

void CudaModelRunner::fp8_quantize(const bf16* x, int M, int K, float scale) {
  if (x == fp8_x_src_ && M == fp8_x_rows_ && scale == fp8_x_scale_) return;
  quantize_fp8_e4m3(x, static_cast<size_t>(M) * K, scale, fp8_x_.get<uint8_t>(), stream_);
  fp8_x_src_ = x;
  fp8_x_rows_ = M;
  fp8_x_scale_ = scale;
}

void CudaModelRunner::linear(const DeviceLinear& W, const bf16* x, int M, float* y) {
  if (!use_fp8(W, M)) {
    linear_.run(W, x, M, y);
    return;
  }
  fp8_x_src_ = nullptr;  // x changed since any earlier quantization
  fp8_quantize(x, M, W.K, W.input_scale);
  fp8_gemm_->run(W.data.get<uint8_t>(), W.scale, W.N, W.K, fp8_x_.get<uint8_t>(), W.input_scale, M, y, stream_);
}

void CudaModelRunner::fp8_attention_in_proj(const DeviceLayer& L, int T) {
  // q, k, v read the same hb_: quantized once when their input scales agree (vLLM fuses qkv
  // with one scale; ModelOpt exports usually give each its own calibrated amax).
  fp8_x_src_ = nullptr;
  const std::pair<const DeviceLinear*, float*> jobs[3] = {
      {&L.q, qf_.get<float>()}, {&L.k, kf_.get<float>()}, {&L.v, vf_.get<float>()}};
  for (int j = 0; j < (L.k_eq_v ? 2 : 3); ++j) {
    const DeviceLinear& W = *jobs[j].first;
    fp8_quantize(hb_.get<bf16>(), T, W.K, W.input_scale);
    fp8_gemm_->run(W.data.get<uint8_t>(), W.scale, W.N, W.K, fp8_x_.get<uint8_t>(), W.input_scale, T,
                   jobs[j].second, stream_);
  }
}

void CudaModelRunner::fp8_gate_up_gelu(const DeviceLayer& L, int T) {
  // Row chunks bound the fp32 gate/up scratch; each chunk's rows are quantized once when the
  // two input scales agree.
  const int I = L.gate.N, H = L.gate.K;
  float* g = fp8_mlp_.get<float>();
  float* u = g + static_cast<size_t>(kFp8MlpChunkRows) * I;
  for (int r0 = 0; r0 < T; r0 += kFp8MlpChunkRows) {
    const int rows = std::min(kFp8MlpChunkRows, T - r0);
    const bf16* x = hb_.get<bf16>() + static_cast<size_t>(r0) * H;
    fp8_x_src_ = nullptr;
    for (const auto& [W, y] : {std::pair{&L.gate, g}, std::pair{&L.up, u}}) {
      fp8_quantize(x, rows, H, W->input_scale);
      fp8_gemm_->run(W->data.get<uint8_t>(), W->scale, W->N, W->K, fp8_x_.get<uint8_t>(), W->input_scale, rows, y,
                     stream_);
    }
    gelu_tanh_mul(g, I, u, I, rows, I, actb_.get<bf16>() + static_cast<size_t>(r0) * I, stream_);
  }
}

}  // namespace quench::cuda
