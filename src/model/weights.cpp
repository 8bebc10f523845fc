// quench/model/weights.cpp: binding and validating the Gemma 4 text tensors (see weights.h).
#include "model/weights.h"

#include <set>

#include <fmt/format.h>

#include "core/error.h"
#include "io/safetensors.h"

namespace quench {
namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

bool is_float_dtype(DType d) { return d == DType::kBF16 || d == DType::kF16 || d == DType::kF32; }

bool starts_with(const std::string& s, std::string_view p) { return s.rfind(p, 0) == 0; }

/// Multimodal towers/embedders of gemma4_unified in Google's and in transformers' key layouts.
bool is_multimodal(const std::string& name) {
  static const char* kRoots[] = {"vision_embedder.", "embed_vision.", "embed_audio.", "vision_tower.",
                                 "audio_tower.", "multi_modal_projector."};
  for (const char* r : kRoots) {
    if (starts_with(name, r) || starts_with(name, std::string("model.") + r)) return true;
  }
  return false;
}

/// Tracks which checkpoint tensors were bound so leftovers can be reported.
class Binder {
 public:
  Binder(const Checkpoint& ckpt) : ckpt_(ckpt) {}

  const TensorView* find(const std::string& name) {
    const TensorView* t = ckpt_.find(name);
    if (t) used_.insert(name);
    return t;
  }
  const TensorView& get(const std::string& name) {
    const TensorView* t = find(name);
    if (!t) throw FormatError(fmt::format("{}: tensor '{}' not found (required by the Gemma 4 text decoder)",
                                          ckpt_.dir().string(), name));
    return *t;
  }
  /// A float tensor of exactly `shape`.
  const TensorView& get_float(const std::string& name, const std::vector<int64_t>& shape) {
    const TensorView& t = get(name);
    if (!is_float_dtype(t.dtype) || t.shape != shape)
      throw FormatError(fmt::format("{}: tensor '{}': expected a BF16/F16/F32 tensor of shape {}, got {} {}",
                                    ckpt_.dir().string(), name, shape_str(shape), dtype_name(t.dtype),
                                    t.shape_str()));
    return t;
  }
  void expect(const TensorView& t, DType dt, const std::vector<int64_t>& shape) {
    if (t.dtype != dt || t.shape != shape)
      throw FormatError(fmt::format("{}: tensor '{}': expected {} {}, got {} {}", ckpt_.dir().string(), t.name,
                                    dtype_name(dt), shape_str(shape), dtype_name(t.dtype), t.shape_str()));
  }
  float scalar(const std::string& name) { return read_scalar(get(name)); }
  std::optional<float> optional_scalar(const std::string& name) {
    const TensorView* t = find(name);
    if (!t) return std::nullopt;
    return read_scalar(*t);
  }
  const std::set<std::string>& used() const { return used_; }
  const Checkpoint& ckpt() const { return ckpt_; }

 private:
  const Checkpoint& ckpt_;
  std::set<std::string> used_;
};

LinearWeight bind_linear(Binder& b, const QuantConfig& quant, const std::string& module, int64_t out, int64_t in) {
  LinearWeight w;
  w.name = module;
  w.out_features = out;
  w.in_features = in;
  w.format = quant.format_of(module);
  const std::string wname = module + ".weight";
  switch (w.format) {
    case WeightFormat::kBF16:
      w.weight = b.get_float(wname, {out, in});
      break;
    case WeightFormat::kFP8:
      w.weight = b.get(wname);
      b.expect(w.weight, DType::kF8E4M3, {out, in});
      w.weight_scale_2 = b.scalar(module + ".weight_scale");
      w.input_scale = b.optional_scalar(module + ".input_scale");
      break;
    case WeightFormat::kNVFP4:
      if (in % 16 != 0)
        throw FormatError(fmt::format("{}: NVFP4 Linear '{}' has in_features {} (must be a multiple of 16)",
                                      b.ckpt().dir().string(), module, in));
      w.weight = b.get(wname);
      b.expect(w.weight, DType::kU8, {out, in / 2});
      w.weight_scale = b.get(module + ".weight_scale");
      b.expect(w.weight_scale, DType::kF8E4M3, {out, in / 16});
      w.weight_scale_2 = b.scalar(module + ".weight_scale_2");
      w.input_scale = b.optional_scalar(module + ".input_scale");
      break;
  }
  return w;
}

}  // namespace

float read_scalar(const TensorView& t) {
  if (t.numel() != 1 || t.shape.size() > 1 || !(is_float_dtype(t.dtype) || t.dtype == DType::kF64))
    throw FormatError(fmt::format("tensor '{}': expected a float scalar (shape [] or [1]), got {} {}", t.name,
                                  dtype_name(t.dtype), t.shape_str()));
  return t.get_f32(0);
}

ModelWeights ModelWeights::bind(const Checkpoint& ckpt, const ModelConfig& config, const QuantConfig& quant) {
  ModelWeights mw;
  Binder b(ckpt);
  if (ckpt.has("model.language_model.embed_tokens.weight")) {
    mw.prefix = "model.language_model.";
  } else if (ckpt.has("model.embed_tokens.weight")) {
    mw.prefix = "model.";
  } else {
    throw FormatError(fmt::format(
        "{}: no text embedding found (expected 'model.language_model.embed_tokens.weight' or "
        "'model.embed_tokens.weight')",
        ckpt.dir().string()));
  }
  const std::string& p = mw.prefix;
  const int64_t hidden = config.hidden_size, inter = config.intermediate_size, vocab = config.vocab_size;

  mw.embed_tokens = b.get_float(p + "embed_tokens.weight", {vocab, hidden});
  mw.norm = b.get_float(p + "norm.weight", {hidden});
  const TensorView* lm_head = b.find("lm_head.weight");
  if (!lm_head) lm_head = b.find(p + "lm_head.weight");
  if (config.tie_word_embeddings || !lm_head) {
    if (!config.tie_word_embeddings)
      throw FormatError(fmt::format("{}: tie_word_embeddings is false but no 'lm_head.weight' tensor exists",
                                    ckpt.dir().string()));
    mw.tied_lm_head = true;
    mw.lm_head.format = WeightFormat::kBF16;
    mw.lm_head.out_features = vocab;
    mw.lm_head.in_features = hidden;
    mw.lm_head.weight = mw.embed_tokens;
    mw.lm_head.name = p + "embed_tokens";
  } else {
    mw.tied_lm_head = false;
    mw.lm_head = bind_linear(b, quant, lm_head->name.substr(0, lm_head->name.size() - 7), vocab, hidden);
  }

  for (int l = 0; l < config.num_hidden_layers; ++l) {
    const LayerConfig& lc = config.layers.at(l);
    const std::string lp = p + "layers." + std::to_string(l) + ".";
    const int64_t D = lc.head_dim, q_width = int64_t(lc.num_heads) * D, kv_width = int64_t(lc.num_kv_heads) * D;
    LayerWeights lw;
    lw.input_layernorm = b.get_float(lp + "input_layernorm.weight", {hidden});
    lw.post_attention_layernorm = b.get_float(lp + "post_attention_layernorm.weight", {hidden});
    lw.pre_feedforward_layernorm = b.get_float(lp + "pre_feedforward_layernorm.weight", {hidden});
    lw.post_feedforward_layernorm = b.get_float(lp + "post_feedforward_layernorm.weight", {hidden});
    lw.q_proj = bind_linear(b, quant, lp + "self_attn.q_proj", q_width, hidden);
    lw.k_proj = bind_linear(b, quant, lp + "self_attn.k_proj", kv_width, hidden);
    const std::string vname = lp + "self_attn.v_proj";
    if (lc.k_eq_v) {
      if (ckpt.has(vname + ".weight"))
        throw FormatError(fmt::format("{}: tensor '{}.weight' present but layer {} is k_eq_v (attention_k_eq_v: "
                                      "V is the raw K projection, no v_proj expected)",
                                      ckpt.dir().string(), vname, l));
    } else {
      lw.v_proj = bind_linear(b, quant, vname, kv_width, hidden);
    }
    lw.o_proj = bind_linear(b, quant, lp + "self_attn.o_proj", hidden, q_width);
    lw.q_norm = b.get_float(lp + "self_attn.q_norm.weight", {D});
    lw.k_norm = b.get_float(lp + "self_attn.k_norm.weight", {D});
    lw.gate_proj = bind_linear(b, quant, lp + "mlp.gate_proj", inter, hidden);
    lw.up_proj = bind_linear(b, quant, lp + "mlp.up_proj", inter, hidden);
    lw.down_proj = bind_linear(b, quant, lp + "mlp.down_proj", hidden, inter);
    lw.layer_scalar = b.scalar(lp + "layer_scalar");
    for (const char* n : {"self_attn.k_proj.k_scale", "self_attn.k_scale", "self_attn.attn.k_scale"})
      if (auto s = b.optional_scalar(lp + n)) lw.k_scale = s;
    for (const char* n : {"self_attn.v_proj.v_scale", "self_attn.v_scale", "self_attn.attn.v_scale"})
      if (auto s = b.optional_scalar(lp + n)) lw.v_scale = s;
    mw.layers.push_back(std::move(lw));
  }

  // Everything else must be multimodal (skipped) or a tied duplicate of the embedding.
  for (const std::string& name : ckpt.names()) {
    if (b.used().count(name)) continue;
    if (is_multimodal(name)) {
      mw.skipped.push_back(name);
      continue;
    }
    throw FormatError(fmt::format("{}: tensor '{}' is not part of the Gemma 4 text decoder (prefix '{}', {} layers) "
                                  "nor a vision/audio tensor",
                                  ckpt.dir().string(), name, p, config.num_hidden_layers));
  }
  return mw;
}

}  // namespace quench
