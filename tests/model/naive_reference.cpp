// tests/model/naive_reference.cpp: plain double-precision Gemma 4 forward (naive_reference.h).
#include "model/naive_reference.h"

#include <algorithm>
#include <cmath>


namespace quench::test {
namespace {

using Vec = std::vector<double>;

Vec load(const Checkpoint& ck, const std::string& name) {
  const auto f = ck.get(name).to_f32();
  return Vec(f.begin(), f.end());
}

// y = x · (mean(x²) + eps)^-1/2 · w   (w used as-is; nullptr -> no weight)
void rms(double* x, int n, const Vec* w, double eps) {
  double ss = 0;
  for (int i = 0; i < n; ++i) ss += x[i] * x[i];
  const double inv = 1.0 / std::sqrt(ss / n + eps);
  for (int i = 0; i < n; ++i) x[i] = x[i] * inv * (w ? (*w)[i] : 1.0);
}

// y[o] = sum_i W[o, i] x[i]
Vec matvec(const Vec& W, const Vec& x, int out) {
  const int in = static_cast<int>(x.size());
  Vec y(out, 0.0);
  for (int o = 0; o < out; ++o)
    for (int i = 0; i < in; ++i) y[o] += W[size_t(o) * in + i] * x[i];
  return y;
}

void rope(double* v, int D, int pos, const LayerConfig& lc) {
  const int half = D / 2;
  const int live = lc.rope.type == RopeType::kProportional
                       ? static_cast<int>(lc.rope.partial_rotary_factor * D / 2)
                       : half;
  for (int j = 0; j < live; ++j) {
    const double inv_freq = 1.0 / std::pow(lc.rope.theta, 2.0 * j / D);  // denominator: full head_dim
    const double a = pos * inv_freq, c = std::cos(a), s = std::sin(a);
    const double x0 = v[j], x1 = v[j + half];
    v[j] = x0 * c - x1 * s;
    v[j + half] = x1 * c + x0 * s;
  }
}

}  // namespace

std::vector<double> naive_logits(const Checkpoint& ck, const ModelConfig& cfg, const std::string& p,
                                 const std::vector<int32_t>& tokens) {
  const int N = static_cast<int>(tokens.size()), Hd = cfg.hidden_size, V = cfg.vocab_size;
  const double eps = cfg.rms_norm_eps;
  const Vec E = load(ck, p + "embed_tokens.weight");
  const double scale = static_cast<float>(std::sqrt(double(Hd)));

  std::vector<Vec> x(N, Vec(Hd));
  for (int t = 0; t < N; ++t)
    for (int i = 0; i < Hd; ++i) x[t][i] = E[size_t(tokens[t]) * Hd + i] * scale;

  for (int l = 0; l < cfg.num_hidden_layers; ++l) {
    const LayerConfig& lc = cfg.layers[l];
    const std::string lp = p + "layers." + std::to_string(l) + ".";
    const int D = lc.head_dim, Hq = lc.num_heads, Hkv = lc.num_kv_heads;
    const Vec in_ln = load(ck, lp + "input_layernorm.weight"), post_attn = load(ck, lp + "post_attention_layernorm.weight");
    const Vec pre_ffn = load(ck, lp + "pre_feedforward_layernorm.weight");
    const Vec post_ffn = load(ck, lp + "post_feedforward_layernorm.weight");
    const Vec Wq = load(ck, lp + "self_attn.q_proj.weight"), Wk = load(ck, lp + "self_attn.k_proj.weight");
    const Vec Wv = ck.has(lp + "self_attn.v_proj.weight") ? load(ck, lp + "self_attn.v_proj.weight") : Wk;
    const Vec Wo = load(ck, lp + "self_attn.o_proj.weight");
    const Vec qn = load(ck, lp + "self_attn.q_norm.weight"), kn = load(ck, lp + "self_attn.k_norm.weight");
    const Vec Wg = load(ck, lp + "mlp.gate_proj.weight"), Wu = load(ck, lp + "mlp.up_proj.weight");
    const Vec Wd = load(ck, lp + "mlp.down_proj.weight");
    const double layer_scalar = load(ck, lp + "layer_scalar")[0];

    std::vector<Vec> q(N), k(N), v(N);
    for (int t = 0; t < N; ++t) {
      Vec h = x[t];
      rms(h.data(), Hd, &in_ln, eps);
      q[t] = matvec(Wq, h, Hq * D);
      k[t] = matvec(Wk, h, Hkv * D);
      v[t] = matvec(Wv, h, Hkv * D);  // k_eq_v: the raw K projection
      for (int hh = 0; hh < Hq; ++hh) {
        rms(&q[t][hh * D], D, &qn, eps);
        rope(&q[t][hh * D], D, t, lc);
      }
      for (int hh = 0; hh < Hkv; ++hh) {
        rms(&k[t][hh * D], D, &kn, eps);
        rope(&k[t][hh * D], D, t, lc);
        rms(&v[t][hh * D], D, nullptr, eps);
      }
    }
    for (int t = 0; t < N; ++t) {
      Vec o(Hq * D, 0.0);
      for (int hh = 0; hh < Hq; ++hh) {
        const int kvh = hh / (Hq / Hkv);
        std::vector<double> sc;
        std::vector<int> keys;
        for (int j = 0; j <= t; ++j) {
          if (lc.sliding_window > 0 && j <= t - lc.sliding_window) continue;
          double d = 0;
          for (int e = 0; e < D; ++e) d += q[t][hh * D + e] * k[j][kvh * D + e];
          sc.push_back(d);  // scale 1.0
          keys.push_back(j);
        }
        const double mx = *std::max_element(sc.begin(), sc.end());
        double sum = 0;
        for (double& s : sc) sum += (s = std::exp(s - mx));
        for (size_t a = 0; a < keys.size(); ++a)
          for (int e = 0; e < D; ++e) o[hh * D + e] += sc[a] / sum * v[keys[a]][kvh * D + e];
      }
      Vec attn = matvec(Wo, o, Hd);
      rms(attn.data(), Hd, &post_attn, eps);
      for (int i = 0; i < Hd; ++i) x[t][i] += attn[i];
      Vec h = x[t];
      rms(h.data(), Hd, &pre_ffn, eps);
      Vec g = matvec(Wg, h, cfg.intermediate_size), u = matvec(Wu, h, cfg.intermediate_size);
      for (size_t i = 0; i < g.size(); ++i) {
        const double a = g[i];
        g[i] = 0.5 * a * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (a + 0.044715 * a * a * a))) * u[i];
      }
      Vec m = matvec(Wd, g, Hd);
      rms(m.data(), Hd, &post_ffn, eps);
      for (int i = 0; i < Hd; ++i) x[t][i] = (x[t][i] + m[i]) * layer_scalar;
    }
  }
  const Vec fn = load(ck, p + "norm.weight");
  std::vector<double> logits(size_t(N) * V);
  for (int t = 0; t < N; ++t) {
    Vec h = x[t];
    rms(h.data(), Hd, &fn, eps);
    Vec lg = matvec(E, h, V);
    for (int i = 0; i < V; ++i) {
      const double c = cfg.final_logit_softcapping;
      logits[size_t(t) * V + i] = c > 0 ? c * std::tanh(lg[i] / c) : lg[i];
    }
  }
  return logits;
}

double rel_l2(const float* a, const double* b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

double rel_l2(const float* a, const float* b, int64_t n) {
  std::vector<double> bd(b, b + n);
  return rel_l2(a, bd.data(), n);
}

int argmax(const float* x, int n) { return static_cast<int>(std::max_element(x, x + n) - x); }
int argmax(const double* x, int n) { return static_cast<int>(std::max_element(x, x + n) - x); }

}  // namespace quench::test
