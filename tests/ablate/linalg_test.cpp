// Unit tests of the ablation linear algebra (src/ablate/linalg.h) on seeded random matrices:
// orthonormalization and rank dropping, subspace removal to fp32 precision (plain and
// column-norm-preserving), kept column norms, and the post-norm correction (the direction is gone
// after Gemma's post-sublayer RMSNorm with the corrected basis, and not with the plain one).
// Expected values are computed independently in fp64 in the test, never taken from the code under test.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ablate/linalg.h"
#include "core/error.h"

namespace {

using quench::ablate::Vectors;
namespace ab = quench::ablate;

Vectors random_vectors(int k, int d, std::mt19937& rng) {
  std::normal_distribution<double> n(0.0, 1.0);
  Vectors v(k, std::vector<double>(d));
  for (auto& x : v)
    for (auto& e : x) e = n(rng);
  return v;
}

std::vector<float> random_matrix(int rows, int cols, std::mt19937& rng, float scale = 0.05f) {
  std::normal_distribution<float> n(0.0f, scale);
  std::vector<float> w(static_cast<std::size_t>(rows) * cols);
  for (auto& e : w) e = n(rng);
  return w;
}

// max over columns j and basis vectors i of |q_i^T diag(g) w_j| for W [d, k].
double max_proj(const std::vector<float>& w, int d, int k, const Vectors& q, const std::vector<float>* g = nullptr) {
  double worst = 0;
  for (int j = 0; j < k; ++j)
    for (const auto& qi : q) {
      double c = 0;
      for (int r = 0; r < d; ++r) c += qi[r] * w[r * k + j] * (g ? (*g)[r] : 1.0);
      worst = std::max(worst, std::abs(c));
    }
  return worst;
}

TEST(AblateLinalg, OrthonormalizeGivesIdentityGram) {
  std::mt19937 rng(1);
  const Vectors v = random_vectors(5, 64, rng);
  const auto o = ab::orthonormalize(v);
  ASSERT_EQ(o.basis.size(), 5u);
  EXPECT_TRUE(o.dropped.empty());
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j < 5; ++j) EXPECT_NEAR(ab::dot(o.basis[i], o.basis[j]), i == j ? 1.0 : 0.0, 1e-12);
  // Span preserved: every input is reproduced by its projection on the basis.
  for (const auto& x : v) {
    std::vector<double> rest = x;
    for (const auto& q : o.basis) {
      const double c = ab::dot(q, x);
      for (std::size_t r = 0; r < rest.size(); ++r) rest[r] -= c * q[r];
    }
    EXPECT_LT(ab::norm(rest), 1e-10 * ab::norm(x));
  }
}

TEST(AblateLinalg, OrthonormalizeDropsNearDependent) {
  std::mt19937 rng(2);
  Vectors v = random_vectors(3, 32, rng);
  std::vector<double> dep(32);
  for (int r = 0; r < 32; ++r) dep[r] = 0.5 * v[0][r] - 2.0 * v[2][r] + 1e-12 * v[1][r];
  v.push_back(dep);
  const auto o = ab::orthonormalize(v, 1e-6);
  EXPECT_EQ(o.basis.size(), 3u);
  ASSERT_EQ(o.dropped.size(), 1u);
  EXPECT_EQ(o.dropped[0], 3);
  EXPECT_EQ(o.kept, (std::vector<int>{0, 1, 2}));
}

TEST(AblateLinalg, PlainEditRemovesSubspaceToFp32PrecisionAndMatchesFp64Formula) {
  std::mt19937 rng(3);
  const int d = 64, k = 96;
  const Vectors q = ab::orthonormalize(random_vectors(3, d, rng)).basis;
  const std::vector<float> w0 = random_matrix(d, k, rng);
  std::vector<float> w = w0;
  ab::ablate_columns(w.data(), d, k, q, 1.0, false);
  const double before = max_proj(w0, d, k, q);
  EXPECT_LT(max_proj(w, d, k, q), 1e-6 * before) << "before " << before;
  // Independent fp64 reference: W - Q Q^T W.
  for (int r = 0; r < d; ++r)
    for (int j = 0; j < k; ++j) {
      double ref = w0[r * k + j];
      for (const auto& qi : q) {
        double c = 0;
        for (int s = 0; s < d; ++s) c += qi[s] * w0[s * k + j];
        ref -= qi[r] * c;
      }
      ASSERT_NEAR(w[r * k + j], ref, 1e-6) << r << "," << j;
    }
}

TEST(AblateLinalg, ScaleHalfLeavesHalfTheProjection) {
  std::mt19937 rng(4);
  const int d = 32, k = 40;
  const Vectors q = ab::orthonormalize(random_vectors(1, d, rng)).basis;
  const std::vector<float> w0 = random_matrix(d, k, rng);
  std::vector<float> w = w0;
  ab::ablate_columns(w.data(), d, k, q, 0.5, false);
  for (int j = 0; j < k; ++j) {
    double c0 = 0, c1 = 0;
    for (int r = 0; r < d; ++r) {
      c0 += q[0][r] * w0[r * k + j];
      c1 += q[0][r] * w[r * k + j];
    }
    EXPECT_NEAR(c1, 0.5 * c0, 1e-6);
  }
}

TEST(AblateLinalg, NormPreservingKeepsColumnNormsAndRemovesSubspace) {
  std::mt19937 rng(5);
  const int d = 64, k = 96;
  const Vectors q = ab::orthonormalize(random_vectors(4, d, rng)).basis;
  std::vector<float> w0 = random_matrix(d, k, rng);
  for (int r = 0; r < d; ++r) w0[r * k + 7] *= 4.0f;  // an outlier column
  std::vector<float> w = w0;
  ab::ablate_columns(w.data(), d, k, q, 1.0, true);
  EXPECT_LT(max_proj(w, d, k, q), 1e-6 * max_proj(w0, d, k, q));
  for (int j = 0; j < k; ++j) {
    double n0 = 0, n1 = 0;
    for (int r = 0; r < d; ++r) {
      n0 += double(w0[r * k + j]) * w0[r * k + j];
      n1 += double(w[r * k + j]) * w[r * k + j];
    }
    EXPECT_NEAR(std::sqrt(n1) / std::sqrt(n0), 1.0, 1e-6) << "column " << j;
  }
}

TEST(AblateLinalg, RowsEditOfEmbeddingTable) {
  std::mt19937 rng(6);
  const int n = 50, d = 32;
  const Vectors q = ab::orthonormalize(random_vectors(2, d, rng)).basis;
  std::vector<float> e = random_matrix(n, d, rng, 1.0f);
  ab::ablate_rows(e.data(), n, d, q, 1.0, false);
  for (int i = 0; i < n; ++i)
    for (const auto& qi : q) {
      double c = 0;
      for (int r = 0; r < d; ++r) c += qi[r] * e[i * d + r];
      EXPECT_LT(std::abs(c), 1e-5);
    }
}

// Gemma's post-sublayer norm: the block adds y = g ⊙ (W x) / rms(W x) to the stream.
std::vector<double> post_norm_out(const std::vector<float>& w, int d, int k, const std::vector<float>& g,
                                  const std::vector<double>& x) {
  std::vector<double> y(d, 0.0);
  for (int r = 0; r < d; ++r)
    for (int j = 0; j < k; ++j) y[r] += w[r * k + j] * x[j];
  double ms = 0;
  for (double v : y) ms += v * v;
  const double inv = 1.0 / std::sqrt(ms / d + 1e-6);
  for (int r = 0; r < d; ++r) y[r] *= inv * g[r];
  return y;
}

TEST(AblateLinalg, PostNormCorrectionRemovesDirectionAfterTheNorm) {
  std::mt19937 rng(7);
  const int d = 64, k = 80;
  std::uniform_real_distribution<float> gd(0.2f, 3.0f);
  std::vector<float> g(d);
  for (auto& x : g) x = gd(rng);
  const Vectors r = ab::orthonormalize(random_vectors(2, d, rng)).basis;
  const std::vector<float> w0 = random_matrix(d, k, rng);
  std::vector<float> corrected = w0, plain = w0;
  ab::ablate_columns(corrected.data(), d, k, ab::post_norm_basis(r, g), 1.0, true);
  ab::ablate_columns(plain.data(), d, k, r, 1.0, true);
  const Vectors xs = random_vectors(20, k, rng);
  double worst_corrected = 0, worst_plain = 0, typical = 0;
  for (const auto& x : xs) {
    const auto y0 = post_norm_out(w0, d, k, g, x);
    const auto yc = post_norm_out(corrected, d, k, g, x);
    const auto yp = post_norm_out(plain, d, k, g, x);
    for (const auto& ri : r) {
      typical = std::max(typical, std::abs(ab::dot(ri, y0)));
      worst_corrected = std::max(worst_corrected, std::abs(ab::dot(ri, yc)));
      worst_plain = std::max(worst_plain, std::abs(ab::dot(ri, yp)));
    }
  }
  EXPECT_LT(worst_corrected, 1e-5 * typical) << "typical " << typical;
  EXPECT_GT(worst_plain, 0.05 * typical) << "the plain edit should leave a component after the norm";
  // The gain-weighted weight-level check agrees.
  EXPECT_LT(max_proj(corrected, d, k, r, &g), 1e-6 * max_proj(w0, d, k, r, &g));
}

TEST(AblateLinalg, SequentialNonOrthogonalEditsDoNotRemoveTheSpanButQrDoes) {
  std::mt19937 rng(8);
  const int d = 48, k = 60;
  Vectors raw = random_vectors(2, d, rng);
  for (int r = 0; r < d; ++r) raw[1][r] = 0.8 * raw[0][r] + 0.6 * raw[1][r];
  const auto r1 = ab::normalized(raw[0], "r1"), r2 = ab::normalized(raw[1], "r2");
  const std::vector<float> w0 = random_matrix(d, k, rng);
  std::vector<float> seq = w0, qr = w0;
  ab::ablate_columns(seq.data(), d, k, {r1}, 1.0, false);
  ab::ablate_columns(seq.data(), d, k, {r2}, 1.0, false);
  ab::ablate_columns(qr.data(), d, k, ab::orthonormalize({r1, r2}).basis, 1.0, false);
  EXPECT_GT(max_proj(seq, d, k, {r1}), 1e-3);
  EXPECT_LT(max_proj(qr, d, k, {r1, r2}), 1e-6);
}

TEST(AblateLinalg, ProjectOutRemovesComponent) {
  std::mt19937 rng(9);
  const Vectors v = random_vectors(2, 40, rng);
  const auto p = ab::project_out(v[0], v[1]);
  EXPECT_NEAR(ab::dot(p, v[1]), 0.0, 1e-12 * ab::norm(v[0]) * ab::norm(v[1]));
  EXPECT_THROW(ab::normalized(std::vector<double>(4, 0.0), "zero"), quench::InvalidArgument);
}

}  // namespace
