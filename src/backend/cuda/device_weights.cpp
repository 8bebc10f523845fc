// quench/backend/cuda/device_weights.cpp: upload of the bound checkpoint tensors to the GPU.
#include "backend/cuda/device_weights.h"

#include <fmt/format.h>

#include "core/numeric.h"
#include "model/model.h"
#include "model/weights.h"

namespace quench::cuda {
namespace {

DeviceBuffer upload_bytes(const void* src, size_t n, const std::string& what) {
  DeviceBuffer b;
  try {
    b.reset(n);
  } catch (const CudaError& e) {
    throw CudaError(fmt::format("uploading '{}' ({} bytes): {}", what, n, e.what()));
  }
  QUENCH_CUDA_CHECK(cudaMemcpy(b.get(), src, n, cudaMemcpyHostToDevice));
  return b;
}

/// Any float tensor -> fp32 device vector.
DeviceBuffer upload_f32(const TensorView& t) {
  const std::vector<float> v = t.to_f32();
  return upload_bytes(v.data(), v.size() * sizeof(float), t.name);
}

/// Any float tensor -> bf16 device tensor (BF16 copied as is; F16/F32 rounded RNE).
DeviceBuffer upload_bf16(const TensorView& t) {
  if (t.dtype == DType::kBF16) return upload_bytes(t.data, t.nbytes, t.name);
  std::vector<uint16_t> h(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < h.size(); ++i) h[i] = f32_to_bf16(t.get_f32(static_cast<int64_t>(i)));
  return upload_bytes(h.data(), h.size() * 2, t.name);
}

DeviceLinear upload_linear(const LinearWeight& w) {
  DeviceLinear d;
  d.format = w.format;
  d.N = static_cast<int>(w.out_features);
  d.K = static_cast<int>(w.in_features);
  d.input_scale = w.input_scale.value_or(0.0f);
  if (d.K % 16)
    throw UnsupportedError(fmt::format("{}: in_features {} is not a multiple of 16 (CUDA kernels)", w.name, d.K));
  switch (w.format) {
    case WeightFormat::kBF16: d.data = upload_bf16(w.weight); break;
    case WeightFormat::kFP8:
      d.data = upload_bytes(w.weight.data, w.weight.nbytes, w.name + ".weight");
      d.scale = w.weight_scale_2;
      break;
    case WeightFormat::kNVFP4:
      d.data = upload_bytes(w.weight.data, w.weight.nbytes, w.name + ".weight");
      d.block_scales = upload_bytes(w.weight_scale.data, w.weight_scale.nbytes, w.name + ".weight_scale");
      d.scale = w.weight_scale_2;
      break;
  }
  return d;
}

}  // namespace

DeviceWeights DeviceWeights::upload(const Model& model) {
  const ModelWeights& mw = model.weights();
  DeviceWeights dw;
  dw.embed = upload_bf16(mw.embed_tokens);
  dw.final_norm = upload_f32(mw.norm);
  dw.total_bytes = dw.embed.bytes() + dw.final_norm.bytes();
  for (const LayerWeights& lw : mw.layers) {
    DeviceLayer l;
    l.input_norm = upload_f32(lw.input_layernorm);
    l.post_attn_norm = upload_f32(lw.post_attention_layernorm);
    l.pre_ffn_norm = upload_f32(lw.pre_feedforward_layernorm);
    l.post_ffn_norm = upload_f32(lw.post_feedforward_layernorm);
    l.q_norm = upload_f32(lw.q_norm);
    l.k_norm = upload_f32(lw.k_norm);
    l.q = upload_linear(lw.q_proj);
    l.k = upload_linear(lw.k_proj);
    l.k_eq_v = !lw.v_proj.has_value();
    if (lw.v_proj) l.v = upload_linear(*lw.v_proj);
    l.o = upload_linear(lw.o_proj);
    l.gate = upload_linear(lw.gate_proj);
    l.up = upload_linear(lw.up_proj);
    l.down = upload_linear(lw.down_proj);
    l.layer_scalar = lw.layer_scalar;
    dw.total_bytes += l.q.bytes() + l.k.bytes() + l.v.bytes() + l.o.bytes() + l.gate.bytes() + l.up.bytes() +
                      l.down.bytes() + l.input_norm.bytes() * 4 + l.q_norm.bytes() + l.k_norm.bytes();
    dw.layers.push_back(std::move(l));
  }
  return dw;
}

}  // namespace quench::cuda
