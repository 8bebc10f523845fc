// quench/backend/cpu/decoder.cpp: the Gemma 4 text decoder on the CPU, top to bottom
// (gemma4-architecture.md §2; every activation fp32, weights decoded from their stored format).
#include "backend/cpu/decoder.h"

#include <cmath>
#include <cstring>

#include "backend/cpu/activation.h"
#include "backend/cpu/attention.h"
#include "backend/cpu/matmul.h"
#include "backend/cpu/rmsnorm.h"
#include "backend/cpu/rope.h"
#include "core/error.h"
#include "core/numeric.h"

namespace quench {

std::vector<float> to_f32_checked(const TensorView& t, int64_t expected) {
  if (t.numel() != expected || !(t.dtype == DType::kBF16 || t.dtype == DType::kF16 || t.dtype == DType::kF32))
    throw FormatError("tensor '" + t.name + "': expected " + std::to_string(expected) +
                      " BF16/F16/F32 values, got " + std::string(dtype_name(t.dtype)) + " " + t.shape_str());
  return t.to_f32();
}

CpuDecoder::CpuDecoder(const ModelConfig& config, const ModelWeights& weights, DType embed_scale_dtype)
    : config_(config), weights_(weights), eps_(static_cast<float>(config.rms_norm_eps)) {
  // transformers: embed_scale = torch.tensor(hidden_size ** 0.5) (fp32), then .to(weight.dtype).
  const float s = static_cast<float>(std::sqrt(static_cast<double>(config.hidden_size)));
  switch (embed_scale_dtype) {
    case DType::kBF16: embed_scale_ = round_bf16(s); break;
    case DType::kF16: embed_scale_ = f16_to_f32(f32_to_f16(s)); break;
    default: embed_scale_ = s; break;
  }
  const int hidden = config.hidden_size;
  embedding_.format = WeightFormat::kBF16;  // the unquantized row decoder (BF16/F16/F32 storage)
  embedding_.out_features = config.vocab_size;
  embedding_.in_features = hidden;
  embedding_.weight = weights.embed_tokens;
  embedding_.name = weights.prefix + "embed_tokens";
  final_norm_ = to_f32_checked(weights.norm, hidden);
  for (int l = 0; l < config.num_hidden_layers; ++l) {
    const LayerWeights& lw = weights.layers.at(l);
    const LayerConfig& lc = config.layers.at(l);
    LayerPrep p;
    p.input_layernorm = to_f32_checked(lw.input_layernorm, hidden);
    p.post_attention_layernorm = to_f32_checked(lw.post_attention_layernorm, hidden);
    p.pre_feedforward_layernorm = to_f32_checked(lw.pre_feedforward_layernorm, hidden);
    p.post_feedforward_layernorm = to_f32_checked(lw.post_feedforward_layernorm, hidden);
    p.q_norm = to_f32_checked(lw.q_norm, lc.head_dim);
    p.k_norm = to_f32_checked(lw.k_norm, lc.head_dim);
    p.inv_freq = rope_inv_freq(lc.rope, lc.head_dim);
    prep_.push_back(std::move(p));
  }
}

void CpuDecoder::embed(int32_t token, float* out) const {
  decode_weight_row(embedding_, token, out);  // exact fp32 row of embed_tokens
  for (int i = 0; i < config_.hidden_size; ++i) out[i] *= embed_scale_;
}

void CpuDecoder::run(std::span<const DecoderSlice> slices, std::span<const int> logit_rows, float* logits,
                     const ForwardHooks* hooks) {
  const int hidden = config_.hidden_size;
  // Stack the slices: token row r has position positions[r].
  std::vector<int> positions;
  for (const DecoderSlice& s : slices) {
    for (size_t t = 0; t < s.tokens.size(); ++t) {
      const int pos = s.start_pos + static_cast<int>(t);
      if (s.start_pos < 0 || (config_.max_position_embeddings > 0 && pos >= config_.max_position_embeddings))
        throw InvalidArgument("position " + std::to_string(pos) + " outside [0, max_position_embeddings " +
                              std::to_string(config_.max_position_embeddings) + ")");
      const int32_t id = s.tokens[t];
      if (id < 0 || id >= config_.vocab_size)
        throw InvalidArgument("token id " + std::to_string(id) + " outside [0, vocab_size " +
                              std::to_string(config_.vocab_size) + ")");
      positions.push_back(pos);
    }
  }
  n_ = static_cast<int>(positions.size());
  for (int r : logit_rows)
    if (r < 0 || r >= n_) throw InvalidArgument("logit row " + std::to_string(r) + " outside the batch's tokens");

  // §2.1 embedding: x0 = E[id] · embed_scale.
  x_.resize(size_t(n_) * hidden);
  {
    int r = 0;
    for (const DecoderSlice& s : slices)
      for (int32_t id : s.tokens) embed(id, x_.data() + size_t(r++) * hidden);
  }

  // §2.3 decoder layers.
  for (int l = 0; l < config_.num_hidden_layers; ++l) {
    attention_block(l, slices, positions, hooks);
    mlp_block(l, hooks);
    if (hooks && hooks->after_block) hooks->after_block(l, x_.data(), n_, hidden);
  }

  // §2.8 final norm, tied LM head, softcap, for the requested rows only.
  if (logit_rows.empty()) return;
  const int m = static_cast<int>(logit_rows.size());
  h_.resize(size_t(m) * hidden);
  for (int i = 0; i < m; ++i)
    std::memcpy(h_.data() + size_t(i) * hidden, x_.data() + size_t(logit_rows[i]) * hidden, hidden * sizeof(float));
  rms_norm(h_.data(), final_norm_.data(), m, hidden, eps_, h_.data());
  linear(weights_.lm_head, h_.data(), m, logits);
  softcap(logits, int64_t(m) * config_.vocab_size, static_cast<float>(config_.final_logit_softcapping));
}

void CpuDecoder::attention_block(int l, std::span<const DecoderSlice> slices, const std::vector<int>& positions,
                                 const ForwardHooks* hooks) {
  const LayerConfig& lc = config_.layers[l];
  const LayerWeights& lw = weights_.layers[l];
  const LayerPrep& p = prep_[l];
  const int hidden = config_.hidden_size, D = lc.head_dim, Hq = lc.num_heads, Hkv = lc.num_kv_heads;
  const size_t qw = size_t(Hq) * D, kvw = size_t(Hkv) * D;
  auto observe = [&](const LinearWeight& w, const float* in) {
    if (hooks && hooks->linear_input) hooks->linear_input(w.name, in, n_, static_cast<int>(w.in_features));
  };

  // input_layernorm, then q/k/v projections of the normed stream.
  h_.resize(size_t(n_) * hidden);
  rms_norm(x_.data(), p.input_layernorm.data(), n_, hidden, eps_, h_.data());
  q_.resize(n_ * qw);
  k_.resize(n_ * kvw);
  v_.resize(n_ * kvw);
  observe(lw.q_proj, h_.data());
  linear(lw.q_proj, h_.data(), n_, q_.data());
  observe(lw.k_proj, h_.data());
  linear(lw.k_proj, h_.data(), n_, k_.data());
  if (lw.v_proj) {
    observe(*lw.v_proj, h_.data());
    linear(*lw.v_proj, h_.data(), n_, v_.data());
  } else {
    std::memcpy(v_.data(), k_.data(), n_ * kvw * sizeof(float));  // k_eq_v: V = raw K projection
  }

  // Per-head q_norm / k_norm (weights), weight-less v_norm, then RoPE on q and k (§2.4-2.5).
  rms_norm(q_.data(), p.q_norm.data(), n_ * Hq, D, eps_, q_.data());
  rms_norm(k_.data(), p.k_norm.data(), n_ * Hkv, D, eps_, k_.data());
  rms_norm(v_.data(), nullptr, n_ * Hkv, D, eps_, v_.data());
  apply_rope(q_.data(), n_, Hq, D, positions.data(), p.inv_freq);
  apply_rope(k_.data(), n_, Hkv, D, positions.data(), p.inv_freq);
  if (hooks && hooks->kv) hooks->kv(l, k_.data(), v_.data(), n_);

  // Per slice: store the new K/V, read back the visible window, attend with scale 1.0.
  attn_.resize(n_ * qw);
  size_t row = 0;
  for (const DecoderSlice& s : slices) {
    const int ns = static_cast<int>(s.tokens.size());
    s.kv->write(l, s.start_pos, ns, k_.data() + row * kvw, v_.data() + row * kvw);
    const int lo = lc.sliding_window > 0 ? std::max(0, s.start_pos - lc.sliding_window + 1) : 0;
    const int nk = s.start_pos + ns - lo;
    kbuf_.resize(nk * kvw);
    vbuf_.resize(nk * kvw);
    s.kv->read(l, lo, nk, kbuf_.data(), vbuf_.data());
    AttentionShape shape;
    shape.n_queries = ns;
    shape.n_keys = nk;
    shape.num_heads = Hq;
    shape.num_kv_heads = Hkv;
    shape.head_dim = D;
    shape.query_pos0 = s.start_pos;
    shape.key_pos0 = lo;
    shape.window = lc.sliding_window;
    shape.scale = 1.0f;  // Gemma 4: no 1/sqrt(D); q_norm/k_norm carry the temperature
    attention(q_.data() + row * qw, kbuf_.data(), vbuf_.data(), shape, attn_.data() + row * qw);
    row += ns;
  }

  // o_proj, post_attention_layernorm, residual add.
  observe(lw.o_proj, attn_.data());
  linear(lw.o_proj, attn_.data(), n_, h_.data());
  rms_norm(h_.data(), p.post_attention_layernorm.data(), n_, hidden, eps_, h_.data());
  for (size_t i = 0; i < size_t(n_) * hidden; ++i) x_[i] += h_[i];
}

void CpuDecoder::mlp_block(int l, const ForwardHooks* hooks) {
  const LayerWeights& lw = weights_.layers[l];
  const LayerPrep& p = prep_[l];
  const int hidden = config_.hidden_size;
  const size_t inter = size_t(config_.intermediate_size);
  auto observe = [&](const LinearWeight& w, const float* in) {
    if (hooks && hooks->linear_input) hooks->linear_input(w.name, in, n_, static_cast<int>(w.in_features));
  };

  // pre_feedforward_layernorm, GeGLU (gelu_tanh on gate) , down_proj, post_feedforward_layernorm.
  rms_norm(x_.data(), p.pre_feedforward_layernorm.data(), n_, hidden, eps_, h_.data());
  gate_.resize(n_ * inter);
  up_.resize(n_ * inter);
  observe(lw.gate_proj, h_.data());
  linear(lw.gate_proj, h_.data(), n_, gate_.data());
  observe(lw.up_proj, h_.data());
  linear(lw.up_proj, h_.data(), n_, up_.data());
  gelu_tanh_mul(gate_.data(), up_.data(), int64_t(n_) * inter, gate_.data());
  observe(lw.down_proj, gate_.data());
  linear(lw.down_proj, gate_.data(), n_, h_.data());
  rms_norm(h_.data(), p.post_feedforward_layernorm.data(), n_, hidden, eps_, h_.data());

  // Residual add, then layer_scalar on the whole stream (§2.3, pitfall 5).
  const float scalar = lw.layer_scalar;
  for (size_t i = 0; i < size_t(n_) * hidden; ++i) x_[i] = (x_[i] + h_[i]) * scalar;
}

}  // namespace quench
