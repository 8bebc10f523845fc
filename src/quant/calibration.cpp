// quench/quant/calibration.cpp: see calibration.h.
#include "quant/calibration.h"

#include <algorithm>
#include <cmath>

#include "backend/cpu/forward.h"   // CpuForward, ForwardHooks
#include "core/error.h"            // InvalidArgument
#include "model/model.h"           // Model
#include "quant/memory.h"          // release_mapped_pages
#include "tokenizer/tokenizer.h"   // Tokenizer

namespace quench {

namespace {

float amax_of(const float* x, int64_t n) {
  float m = 0.0f;
  for (int64_t i = 0; i < n; ++i) m = std::fmax(m, std::fabs(x[i]));
  return m;
}

void release(const TensorView& t) { release_mapped_pages(t.data, t.nbytes); }

void release(const LinearWeight& w) {
  release(w.weight);
  release(w.weight_scale);
}

void release_layer(const LayerWeights& l) {
  for (const TensorView* t : {&l.input_layernorm, &l.post_attention_layernorm, &l.pre_feedforward_layernorm,
                              &l.post_feedforward_layernorm, &l.q_norm, &l.k_norm})
    release(*t);
  for (const LinearWeight* w : {&l.q_proj, &l.k_proj, &l.o_proj, &l.gate_proj, &l.up_proj, &l.down_proj}) release(*w);
  if (l.v_proj) release(*l.v_proj);
}

}  // namespace

std::vector<std::vector<int32_t>> tokenize_samples(const Tokenizer& tok, const std::vector<std::string>& texts,
                                                   int32_t bos_id, int seq_len, int max_samples) {
  std::vector<std::vector<int32_t>> out;
  for (const auto& t : texts) {
    if (max_samples > 0 && static_cast<int>(out.size()) >= max_samples) break;
    std::vector<int32_t> ids{bos_id};
    const auto enc = tok.encode(t);
    ids.insert(ids.end(), enc.begin(), enc.end());
    if (seq_len > 0 && static_cast<int>(ids.size()) > seq_len) ids.resize(seq_len);
    if (ids.size() > 1) out.push_back(std::move(ids));
  }
  return out;
}

ActivationAmax calibrate(const Model& model, const std::vector<std::vector<int32_t>>& samples) {
  if (samples.empty()) throw InvalidArgument("calibration: no calibration sample (check --calib / --calib-samples)");
  ActivationAmax r;
  const int nl = model.config().num_hidden_layers;
  r.k_amax.assign(nl, 0.0f);
  r.v_amax.assign(nl, 0.0f);
  ForwardHooks hooks;
  hooks.linear_input = [&](const std::string& name, const float* x, int n, int in) {
    float& a = r.linear_input[name];
    a = std::max(a, amax_of(x, static_cast<int64_t>(n) * in));
  };
  hooks.kv = [&](int layer, const float* k, const float* v, int n) {
    const auto& lc = model.config().layers[layer];
    const int64_t kvd = static_cast<int64_t>(lc.num_kv_heads) * lc.head_dim;
    r.k_amax[layer] = std::max(r.k_amax[layer], amax_of(k, n * kvd));
    r.v_amax[layer] = std::max(r.v_amax[layer], amax_of(v, n * kvd));
  };
  const ModelWeights& w = model.weights();
  hooks.after_block = [&](int layer, const float*, int, int) { release_layer(w.layers[layer]); };
  CpuForward fwd(model);
  for (const auto& s : samples) {
    ContiguousKvCache cache = fwd.new_cache(static_cast<int>(s.size()));
    fwd.forward(s, 0, cache, nullptr, &hooks);
    release(w.embed_tokens);
    ++r.samples;
    r.tokens += static_cast<int64_t>(s.size());
  }
  return r;
}

}  // namespace quench
