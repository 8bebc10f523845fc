// tests/model/ops_test.cpp: the CPU ops against naive formulas on random data
// (gemma4-architecture.md §2.2 RMSNorm, §2.5 RoPE, §2.4/2.6 attention, §2.7 GELU, §2.8 softcap).
#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "backend/cpu/activation.h"
#include "backend/cpu/attention.h"
#include "backend/cpu/rmsnorm.h"
#include "backend/cpu/rope.h"
#include "core/error.h"

namespace quench {
namespace {

std::vector<float> randn(size_t n, uint32_t seed, float std = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, std);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

TEST(RmsNorm, MultipliesByWeightNotOnePlusWeight) {
  const int rows = 3, dim = 40;
  auto x = randn(rows * dim, 1), w = randn(dim, 2);
  std::vector<float> y(rows * dim);
  rms_norm(x.data(), w.data(), rows, dim, 1e-6f, y.data());
  for (int r = 0; r < rows; ++r) {
    double ss = 0;
    for (int i = 0; i < dim; ++i) ss += double(x[r * dim + i]) * x[r * dim + i];
    const double inv = 1.0 / std::sqrt(ss / dim + 1e-6);
    for (int i = 0; i < dim; ++i)
      EXPECT_NEAR(y[r * dim + i], x[r * dim + i] * inv * w[i], 1e-5 * (1 + std::fabs(x[r * dim + i] * inv * w[i])));
  }
  // A zero weight gives zero output (a (1 + w) convention would give the normalized input).
  std::vector<float> zero(dim, 0.0f);
  rms_norm(x.data(), zero.data(), rows, dim, 1e-6f, y.data());
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

TEST(RmsNorm, WeightlessVariantAndEps) {
  const int dim = 8;
  std::vector<float> x(dim, 0.0f), y(dim);
  x[0] = 1e-4f;
  rms_norm(x.data(), nullptr, 1, dim, 1e-6f, y.data());
  // mean(x^2) = 1.25e-9, + eps 1e-6 dominates: y0 = 1e-4 / sqrt(1.00125e-6)
  EXPECT_NEAR(y[0], 1e-4 / std::sqrt(1.25e-9 + 1e-6), 1e-6);
  auto r = randn(dim, 3);
  rms_norm(r.data(), nullptr, 1, dim, 1e-6f, y.data());
  double ss = 0;
  for (float v : y) ss += double(v) * v;
  EXPECT_NEAR(ss / dim, 1.0, 1e-4);
}

TEST(Rope, DefaultFrequenciesAndNeoxPairing) {
  RopeParams rp;
  rp.type = RopeType::kDefault;
  rp.theta = 10000.0;
  const int D = 16, H = 2, T = 3;
  const auto inv = rope_inv_freq(rp, D);
  ASSERT_EQ(inv.size(), 8u);
  for (int j = 0; j < 8; ++j) EXPECT_NEAR(inv[j], std::pow(10000.0, -2.0 * j / D), 1e-7 * std::pow(10000.0, -2.0 * j / D) + 1e-12);
  auto x = randn(T * H * D, 4);
  auto y = x;
  const int pos[T] = {0, 7, 41};
  apply_rope(y.data(), T, H, D, pos, inv);
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < H; ++h)
      for (int j = 0; j < D / 2; ++j) {
        const float* a = &x[(t * H + h) * D];
        const float* b = &y[(t * H + h) * D];
        const double ang = pos[t] * std::pow(10000.0, -2.0 * j / D);
        EXPECT_NEAR(b[j], a[j] * std::cos(ang) - a[j + D / 2] * std::sin(ang), 2e-5);
        EXPECT_NEAR(b[j + D / 2], a[j + D / 2] * std::cos(ang) + a[j] * std::sin(ang), 2e-5);
      }
  // Position 0 is the identity.
  for (int i = 0; i < H * D; ++i) EXPECT_EQ(y[i], x[i]);
}

TEST(Rope, ProportionalPairsAcrossHalfHeadWithFullDenominator) {
  RopeParams rp;
  rp.type = RopeType::kProportional;
  rp.theta = 1e6;
  rp.partial_rotary_factor = 0.25;
  const int D = 32;  // rope_angles = int(0.25 * 32 // 2) = 4 live frequencies out of 16
  const auto inv = rope_inv_freq(rp, D);
  ASSERT_EQ(inv.size(), 16u);
  for (int j = 0; j < 4; ++j) EXPECT_NEAR(inv[j], std::pow(1e6, -2.0 * j / 32.0), 1e-7 * std::pow(1e6, -2.0 * j / 32.0));
  for (int j = 4; j < 16; ++j) EXPECT_EQ(inv[j], 0.0f) << j;
  // The 12B geometry: 64 live angles out of 256, inv_freq[1] = 1e6^(-2/512) (not 1e6^(-2/128)).
  const auto big = rope_inv_freq(rp, 512);
  EXPECT_NE(big[63], 0.0f);
  EXPECT_EQ(big[64], 0.0f);
  EXPECT_NEAR(big[1], std::pow(1e6, -2.0 / 512), 1e-7);

  auto x = randn(D, 5);
  auto y = x;
  const int pos = 9;
  apply_rope(y.data(), 1, 1, D, &pos, inv);
  for (int j = 0; j < 16; ++j) {
    if (j < 4) {
      const double ang = pos * std::pow(1e6, -2.0 * j / 32.0);
      EXPECT_NEAR(y[j], x[j] * std::cos(ang) - x[j + 16] * std::sin(ang), 2e-5) << j;
      EXPECT_NEAR(y[j + 16], x[j + 16] * std::cos(ang) + x[j] * std::sin(ang), 2e-5) << j;
    } else {  // zero frequency: pass-through
      EXPECT_EQ(y[j], x[j]) << j;
      EXPECT_EQ(y[j + 16], x[j + 16]) << j;
    }
  }
}

// Naive attention in double for comparison.
std::vector<double> naive_attention(const std::vector<float>& q, const std::vector<float>& k,
                                    const std::vector<float>& v, const AttentionShape& s) {
  const int D = s.head_dim;
  std::vector<double> out(size_t(s.n_queries) * s.num_heads * D, 0.0);
  for (int i = 0; i < s.n_queries; ++i)
    for (int h = 0; h < s.num_heads; ++h) {
      const int kvh = h / (s.num_heads / s.num_kv_heads), p = s.query_pos0 + i;
      std::vector<double> sc;
      std::vector<int> js;
      for (int j = 0; j < s.n_keys; ++j) {
        const int kp = s.key_pos0 + j;
        if (kp > p || (s.window > 0 && kp <= p - s.window)) continue;
        double d = 0;
        for (int e = 0; e < D; ++e) d += double(q[(i * s.num_heads + h) * D + e]) * k[(j * s.num_kv_heads + kvh) * D + e];
        sc.push_back(d * s.scale);
        js.push_back(j);
      }
      double mx = -1e300, sum = 0;
      for (double x : sc) mx = std::max(mx, x);
      for (double& x : sc) sum += (x = std::exp(x - mx));
      for (size_t a = 0; a < js.size(); ++a)
        for (int e = 0; e < D; ++e)
          out[(i * s.num_heads + h) * D + e] += sc[a] / sum * v[(js[a] * s.num_kv_heads + kvh) * D + e];
    }
  return out;
}

TEST(Attention, MatchesNaiveWithWindowAndGqa) {
  AttentionShape s;
  s.n_queries = 5;
  s.n_keys = 11;
  s.num_heads = 6;
  s.num_kv_heads = 2;
  s.head_dim = 8;
  s.key_pos0 = 3;
  s.query_pos0 = 9;  // queries at 9..13, keys at 3..13
  s.window = 4;
  s.scale = 1.0f;
  auto q = randn(s.n_queries * s.num_heads * s.head_dim, 6), k = randn(s.n_keys * s.num_kv_heads * s.head_dim, 7),
       v = randn(s.n_keys * s.num_kv_heads * s.head_dim, 8);
  for (int window : {0, 4}) {
    s.window = window;
    std::vector<float> out(q.size());
    attention(q.data(), k.data(), v.data(), s, out.data());
    const auto ref = naive_attention(q, k, v, s);
    for (size_t i = 0; i < out.size(); ++i) EXPECT_NEAR(out[i], ref[i], 1e-5) << "window " << window << " i " << i;
  }
}

TEST(Attention, SlidingWindowSeesExactlyWindowKeysIncludingSelf) {
  // q = 0 gives uniform weights; V of key j is one-hot at j, so out[j] = 1/count for visible keys.
  const int n = 12, W = 4, D = 16;
  AttentionShape s;
  s.n_queries = n;
  s.n_keys = n;
  s.num_heads = 1;
  s.num_kv_heads = 1;
  s.head_dim = D;
  s.window = W;
  std::vector<float> q(n * D, 0.0f), k = randn(n * D, 9), v(n * D, 0.0f), out(n * D);
  for (int j = 0; j < n; ++j) v[j * D + j] = 1.0f;
  attention(q.data(), k.data(), v.data(), s, out.data());
  for (int p = 0; p < n; ++p) {
    const int lo = std::max(0, p - W + 1), count = p - lo + 1;
    for (int j = 0; j < n; ++j) {
      const float expect = (j >= lo && j <= p) ? 1.0f / count : 0.0f;
      EXPECT_NEAR(out[p * D + j], expect, 1e-6) << "query " << p << " key " << j;
    }
  }
}

TEST(Attention, GqaHeadUsesKvHeadHOverGroup) {
  // Each KV head's values are the constant kvh + 1: head h must output h / (Hq / Hkv) + 1.
  const int Hq = 8, Hkv = 4, D = 4, n = 3;
  AttentionShape s;
  s.n_queries = n;
  s.n_keys = n;
  s.num_heads = Hq;
  s.num_kv_heads = Hkv;
  s.head_dim = D;
  auto q = randn(n * Hq * D, 10), k = randn(n * Hkv * D, 11);
  std::vector<float> v(n * Hkv * D), out(n * Hq * D);
  for (int j = 0; j < n; ++j)
    for (int g = 0; g < Hkv; ++g)
      for (int e = 0; e < D; ++e) v[(j * Hkv + g) * D + e] = float(g + 1);
  attention(q.data(), k.data(), v.data(), s, out.data());
  for (int i = 0; i < n; ++i)
    for (int h = 0; h < Hq; ++h) EXPECT_NEAR(out[(i * Hq + h) * D], float(h / (Hq / Hkv) + 1), 1e-5);
  s.num_kv_heads = 3;
  EXPECT_THROW(attention(q.data(), k.data(), v.data(), s, out.data()), InvalidArgument);
}

TEST(Activation, GeluTanhFormulaAndGateSide) {
  for (double u : {-3.0, -1.0, -0.1, 0.0, 0.5, 1.0, 2.5}) {
    const double ref = 0.5 * u * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (u + 0.044715 * u * u * u)));
    EXPECT_NEAR(gelu_tanh(float(u)), ref, 1e-6) << u;
  }
  EXPECT_NEAR(gelu_tanh(1.0f), 0.8411920, 1e-6);  // torch.nn.functional.gelu(1.0, approximate="tanh")
  const float gate[2] = {1.0f, -2.0f}, up[2] = {2.0f, 3.0f};
  float out[2];
  gelu_tanh_mul(gate, up, 2, out);
  EXPECT_NEAR(out[0], 2.0f * gelu_tanh(1.0f), 1e-6);
  EXPECT_NEAR(out[1], 3.0f * gelu_tanh(-2.0f), 1e-6);
}

TEST(Activation, Softcap) {
  std::vector<float> x = {0.0f, 1.0f, -15.0f, 29.0f, 300.0f, -1e6f};
  auto y = x;
  softcap(y.data(), y.size(), 30.0f);
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_NEAR(y[i], 30.0 * std::tanh(x[i] / 30.0), 1e-5);
    EXPECT_LE(std::fabs(y[i]), 30.0f);
  }
  auto z = x;
  softcap(z.data(), z.size(), 0.0f);  // no cap
  EXPECT_EQ(z, x);
}

}  // namespace
}  // namespace quench
