// quench/backend/cuda/device_weights.h: the model's weights resident on the GPU in their stored
// formats (BF16; FP8 E4M3 per-tensor; NVFP4 packed + E4M3 block scales + fp32 global scale).
// NVFP4 is never expanded in memory; norm vectors are uploaded as fp32.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/cuda/cuda_utils.h"
#include "backend/cuda/kernels.h"
#include "io/quant_config.h"

namespace quench {
struct LinearWeight;
class Model;
}  // namespace quench

namespace quench::cuda {

/// One Linear on the device. bf16: `data` bf16 [N, K]; fp8: `data` E4M3 [N, K] and `scale`;
/// nvfp4: `data` U8 [N, K/2], `block_scales` E4M3 [N, K/16], `scale` = weight_scale_2.
struct DeviceLinear {
  WeightFormat format = WeightFormat::kBF16;
  int N = 0, K = 0;
  DeviceBuffer data;
  DeviceBuffer block_scales;
  float scale = 1.0f;
  /// The checkpoint's per-tensor activation scale (`input_scale`, FP8 / NVFP4 checkpoints); 0 when
  /// absent. FP8 prefill GEMMs quantize their input with it (fp8_gemm.h).
  float input_scale = 0.0f;
  /// Bytes resident for this Linear.
  size_t bytes() const { return data.bytes() + block_scales.bytes(); }
};

struct DeviceLayer {
  DeviceBuffer input_norm, post_attn_norm, pre_ffn_norm, post_ffn_norm, q_norm, k_norm;  // fp32
  DeviceLinear q, k, v, o, gate, up, down;  // v.N == 0 on k_eq_v layers
  bool k_eq_v = false;
  float layer_scalar = 1.0f;
};

/// All weights of a Model on the current device. Throws CudaError (out of memory names the
/// tensor) or UnsupportedError for shapes the kernels cannot take (K not a multiple of 16).
struct DeviceWeights {
  DeviceBuffer embed;       ///< bf16 [V, H] (also the tied LM head)
  DeviceBuffer final_norm;  ///< fp32 [H]
  std::vector<DeviceLayer> layers;
  size_t total_bytes = 0;

  static DeviceWeights upload(const Model& model);
};

}  // namespace quench::cuda
