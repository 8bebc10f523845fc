// quench/model/weights.h: the Gemma 4 text decoder's tensors, bound by name from a checkpoint and
// validated against the config (../shared/reference/gemma4-architecture.md §3 inventory,
// ../shared/reference/nvfp4-modelopt-format.md §2 and §7 for quantized Linears).
//
// Views only: every TensorView points into the Checkpoint's mmap and is valid while it lives.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/model_config.h"
#include "io/quant_config.h"

namespace quench {

class Checkpoint;

/// One Linear layer `y = x · Wᵀ` (no bias; W logically [out_features, in_features]) in its stored
/// format. Decoders: backend/cpu/matmul.h (CPU), the CUDA GEMMs.
///  - WeightFormat::kBF16 (unquantized): `weight` is BF16, F16 or F32 [out, in] as stored;
///    `weight_scale` empty, `weight_scale_2` = 1.
///  - WeightFormat::kFP8: `weight` F8_E4M3 [out, in]; `weight_scale_2` holds the per-tensor F32
///    `weight_scale` (w = fp32(e4m3) · scale); `weight_scale` view empty.
///  - WeightFormat::kNVFP4: `weight` U8 [out, in/2] (two E2M1 codes per byte, low nibble = even
///    column); `weight_scale` F8_E4M3 [out, in/16] block scales; `weight_scale_2` the F32 global
///    scale: w[r, 16b+i] = fl32(e2m1(code) · fl32(fp32(weight_scale[r,b]) · weight_scale_2)).
/// `input_scale` is the optional per-tensor activation scale (FP8 / NVFP4 checkpoints).
/// `name` is the checkpoint module name, e.g. "model.language_model.layers.3.mlp.down_proj".
struct LinearWeight {
  WeightFormat format = WeightFormat::kBF16;
  int64_t out_features = 0;
  int64_t in_features = 0;
  TensorView weight;
  TensorView weight_scale;
  float weight_scale_2 = 1.0f;
  std::optional<float> input_scale;
  std::string name;
};

/// Tensors of one decoder layer (§2.3). Norm weights are [hidden] (q_norm/k_norm [head_dim]) in
/// the checkpoint's float dtype; they are full scales (`x̂·w`, not `x̂·(1+w)`).
struct LayerWeights {
  TensorView input_layernorm;
  TensorView post_attention_layernorm;
  TensorView pre_feedforward_layernorm;
  TensorView post_feedforward_layernorm;
  LinearWeight q_proj;                  ///< [num_heads·head_dim, hidden]
  LinearWeight k_proj;                  ///< [num_kv_heads·head_dim, hidden]
  std::optional<LinearWeight> v_proj;   ///< absent when the layer is k_eq_v (V = raw K projection)
  LinearWeight o_proj;                  ///< [hidden, num_heads·head_dim]
  TensorView q_norm;                    ///< [head_dim]
  TensorView k_norm;                    ///< [head_dim]
  LinearWeight gate_proj;               ///< [intermediate, hidden]
  LinearWeight up_proj;                 ///< [intermediate, hidden]
  LinearWeight down_proj;               ///< [hidden, intermediate]
  float layer_scalar = 1.0f;            ///< multiplies the residual stream after both adds
  /// FP8 KV-cache scales (`self_attn.k_proj.k_scale` / `self_attn.v_proj.v_scale`, also the
  /// `self_attn.k_scale` / `self_attn.attn.k_scale` spellings); absent = 1.0.
  std::optional<float> k_scale, v_scale;
};

/// All text-decoder weights of a checkpoint.
struct ModelWeights {
  std::string prefix;             ///< "model.language_model." (gemma4_unified) or "model." (gemma4_text)
  TensorView embed_tokens;        ///< [vocab, hidden], BF16/F16/F32
  TensorView norm;                ///< final norm [hidden]
  LinearWeight lm_head;           ///< tied: a kBF16 LinearWeight viewing embed_tokens
  bool tied_lm_head = true;
  std::vector<LayerWeights> layers;
  std::vector<std::string> skipped;  ///< multimodal tensors present but not used (vision/audio)

  /// Binds every text tensor by name. Accepts the `model.language_model.` and `model.` layouts;
  /// skips `vision_embedder.*`, `embed_vision.*`, `embed_audio.*`, `vision_tower.*`,
  /// `audio_tower.*` (with or without a leading `model.`). Throws FormatError naming the tensor
  /// and the expected vs actual dtype/shape for every mismatch, a missing tensor, a v_proj on a
  /// k_eq_v layer, or a tensor under the text prefix that this decoder does not use.
  static ModelWeights bind(const Checkpoint& ckpt, const ModelConfig& config, const QuantConfig& quant);
};

/// Reads a scalar tensor (shape [] or [1], any float dtype) as fp32; throws FormatError naming it.
float read_scalar(const TensorView& t);

}  // namespace quench
