// quench/ablate/edit.cpp: see edit.h.
#include "ablate/edit.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/numeric.h"
#include "io/model_config.h"

namespace quench::ablate {

std::vector<float> tensor_to_f32(const TensorView& t) {
  if (t.dtype != DType::kBF16 && t.dtype != DType::kF16 && t.dtype != DType::kF32)
    throw UnsupportedError("tensor '" + t.name + "' is " + std::string(dtype_name(t.dtype)) +
                           ": ablation edits BF16/F16/F32 weights; ablate the BF16 checkpoint and quantize after");
  return t.to_f32();
}

namespace {

// fp32 values rounded once (round to nearest even) to `dtype`, as bytes.
std::vector<std::byte> to_storage(const std::vector<float>& v, DType dtype) {
  std::vector<std::byte> out(v.size() * dtype_size(dtype));
  if (dtype == DType::kF32) {
    std::memcpy(out.data(), v.data(), out.size());
  } else {
    auto* p = reinterpret_cast<uint16_t*>(out.data());
    for (std::size_t i = 0; i < v.size(); ++i) p[i] = dtype == DType::kBF16 ? f32_to_bf16(v[i]) : f32_to_f16(v[i]);
  }
  return out;
}

// Largest ||Q^T (g ⊙ w_j)|| over the write vectors w_j of `w` ([d, k] columns, or [n, d] rows).
double max_leak(const std::vector<float>& w, int64_t d, int64_t k, bool columns, const Vectors& q,
                const std::vector<float>* g) {
  const int64_t n = columns ? k : static_cast<int64_t>(w.size()) / d;
  double worst = 0.0;
#pragma omp parallel for reduction(max : worst) schedule(static) if (n * d > (1 << 16))
  for (int64_t j = 0; j < n; ++j) {
    double s2 = 0.0;
    for (const auto& qi : q) {
      double c = 0.0;
      for (int64_t r = 0; r < d; ++r) {
        const double x = columns ? w[r * k + j] : w[j * d + r];
        c += qi[r] * x * (g ? (*g)[r] : 1.0f);
      }
      s2 += c * c;
    }
    worst = std::max(worst, std::sqrt(s2));
  }
  return worst;
}

std::vector<double> write_norms(const std::vector<float>& w, int64_t d, int64_t k, bool columns) {
  const int64_t n = columns ? k : static_cast<int64_t>(w.size()) / d;
  std::vector<double> out(n, 0.0);
  if (columns) {
    for (int64_t r = 0; r < d; ++r)
      for (int64_t j = 0; j < k; ++j) out[j] += static_cast<double>(w[r * k + j]) * w[r * k + j];
  } else {
    for (int64_t j = 0; j < n; ++j)
      for (int64_t r = 0; r < d; ++r) out[j] += static_cast<double>(w[j * d + r]) * w[j * d + r];
  }
  for (double& x : out) x = std::sqrt(x);
  return out;
}

// Edits one writer and records its checks. `columns`: W [d, k] (Linear); else rows [n, d].
EditedTensor edit_writer(const TensorView& t, const std::string& name, int layer, int64_t d, bool columns,
                         const Vectors& q, const std::vector<float>* gain, const EditOptions& opts) {
  std::vector<float> w = tensor_to_f32(t);
  const int64_t k = columns ? t.shape.at(1) : 0;
  const int64_t n = columns ? t.shape.at(0) : t.shape.at(0);
  if ((columns && n != d) || (!columns && t.shape.at(1) != d))
    throw InvalidArgument("tensor '" + name + "' has shape " + t.shape_str() + ": expected the residual axis of size " +
                          std::to_string(d));
  const Vectors u = (gain && opts.post_norm_correction) ? post_norm_basis(q, *gain) : q;
  const double before = max_leak(w, d, k, columns, q, gain);
  const std::vector<double> norms_before = write_norms(w, d, k, columns);
  if (columns) ablate_columns(w.data(), d, k, u, opts.scale, opts.norm_preserving);
  else ablate_rows(w.data(), n, d, u, opts.scale, opts.norm_preserving);
  EditedTensor e;
  e.name = name;
  e.dtype = t.dtype;
  e.shape = t.shape;
  e.bytes = to_storage(w, t.dtype);
  e.layer = layer;
  e.rank = static_cast<int>(q.size());
  // Checks on the rounded weights, as they will be stored.
  TensorView rounded = t;
  rounded.data = e.bytes.data();
  const std::vector<float> wr = rounded.to_f32();
  e.leftover_ratio = before > 0 ? max_leak(wr, d, k, columns, q, gain) / before : 0.0;
  const std::vector<double> norms_after = write_norms(wr, d, k, columns);
  for (std::size_t j = 0; j < norms_after.size(); ++j)
    if (norms_before[j] > 0) e.max_col_norm_change = std::max(e.max_col_norm_change, std::abs(norms_after[j] / norms_before[j] - 1.0));
  return e;
}

void check_linear(const LinearWeight& lw) {
  if (lw.format != WeightFormat::kBF16)
    throw UnsupportedError(lw.name + " is quantized: quench ablate edits BF16 weights only; ablate the BF16 checkpoint "
                           "and quantize after (quench quantize)");
}

std::string tensor_name(const LinearWeight& lw) { return lw.weight.name.empty() ? lw.name + ".weight" : lw.weight.name; }

}  // namespace

EditedModel apply_edit(const ModelWeights& weights, const ModelConfig& config, const std::vector<int>& edit_layers,
                       const std::vector<Vectors>& subspace, const Vectors& embed_subspace, const EditOptions& opts) {
  EditedModel out;
  out.weights = weights;
  const int64_t d = config.hidden_size;
  for (const auto& lw : weights.layers) {
    check_linear(lw.o_proj);
    check_linear(lw.down_proj);
  }
  // Reserve so views into tensors[i].bytes stay valid.
  out.tensors.reserve(edit_layers.size() * 2 + 1);
  for (int l : edit_layers) {
    if (l < 0 || l >= static_cast<int>(weights.layers.size()))
      throw InvalidArgument("--edit-layers: layer " + std::to_string(l) + " out of range [0, " +
                            std::to_string(weights.layers.size()) + ")");
    const Vectors& q = subspace.at(l);
    if (q.empty()) continue;
    const LayerWeights& lw = weights.layers[l];
    if (opts.targets.o_proj) {
      const std::vector<float> g = tensor_to_f32(lw.post_attention_layernorm);
      out.tensors.push_back(edit_writer(lw.o_proj.weight, tensor_name(lw.o_proj), l, d, true, q, &g, opts));
      out.weights.layers[l].o_proj.weight.data = out.tensors.back().bytes.data();
    }
    if (opts.targets.down_proj) {
      const std::vector<float> g = tensor_to_f32(lw.post_feedforward_layernorm);
      out.tensors.push_back(edit_writer(lw.down_proj.weight, tensor_name(lw.down_proj), l, d, true, q, &g, opts));
      out.weights.layers[l].down_proj.weight.data = out.tensors.back().bytes.data();
    }
  }
  if (opts.targets.embed && !embed_subspace.empty()) {
    const TensorView& e = weights.embed_tokens;
    out.tensors.push_back(edit_writer(e, e.name, -1, d, false, embed_subspace, nullptr, opts));
    out.weights.embed_tokens.data = out.tensors.back().bytes.data();
    if (weights.tied_lm_head) out.weights.lm_head.weight.data = out.tensors.back().bytes.data();
  }
  return out;
}

}  // namespace quench::ablate
