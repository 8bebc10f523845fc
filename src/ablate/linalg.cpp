// quench/ablate/linalg.cpp: see linalg.h.
#include "ablate/linalg.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"

namespace quench::ablate {

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

double norm(const std::vector<double>& a) { return std::sqrt(dot(a, a)); }

std::vector<double> normalized(const std::vector<double>& a, const char* what) {
  const double n = norm(a);
  if (!(n > 0.0) || !std::isfinite(n))
    throw InvalidArgument(std::string(what) + ": cannot normalize a zero or non-finite vector");
  std::vector<double> out(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) out[i] = a[i] / n;
  return out;
}

std::vector<double> project_out(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> out = a;
  const double bn = norm(b);
  if (!(bn > 0.0)) return out;
  for (int pass = 0; pass < 2; ++pass) {
    const double c = dot(out, b) / (bn * bn);
    for (std::size_t i = 0; i < out.size(); ++i) out[i] -= c * b[i];
  }
  return out;
}

Orthonormal orthonormalize(const Vectors& v, double rel_tol) {
  Orthonormal r;
  if (v.empty()) return r;
  const std::size_t d = v[0].size();
  double max_norm = 0.0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i].size() != d)
      throw InvalidArgument("orthonormalize: vector " + std::to_string(i) + " has length " +
                            std::to_string(v[i].size()) + ", expected " + std::to_string(d));
    max_norm = std::max(max_norm, norm(v[i]));
  }
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::vector<double> x = v[i];
    for (int pass = 0; pass < 2; ++pass)
      for (const auto& q : r.basis) {
        const double c = dot(q, x);
        for (std::size_t j = 0; j < d; ++j) x[j] -= c * q[j];
      }
    const double n = norm(x);
    r.r_diag.push_back(n);
    if (!(n > rel_tol * max_norm) || max_norm == 0.0) {
      r.dropped.push_back(static_cast<int>(i));
      continue;
    }
    for (double& e : x) e /= n;
    r.basis.push_back(std::move(x));
    r.kept.push_back(static_cast<int>(i));
  }
  return r;
}

Vectors post_norm_basis(const Vectors& q, const std::vector<float>& g, double rel_tol) {
  Vectors scaled;
  for (std::size_t i = 0; i < q.size(); ++i) {
    if (q[i].size() != g.size())
      throw InvalidArgument("post_norm_basis: direction " + std::to_string(i) + " has length " +
                            std::to_string(q[i].size()) + ", norm gain has " + std::to_string(g.size()));
    std::vector<double> s(g.size());
    for (std::size_t j = 0; j < g.size(); ++j) s[j] = static_cast<double>(g[j]) * q[i][j];
    scaled.push_back(std::move(s));
  }
  return orthonormalize(scaled, rel_tol).basis;
}

void ablate_rows(float* x, int64_t n, int64_t d, const Vectors& u, double alpha, bool norm_preserving) {
  for (const auto& q : u)
    if (static_cast<int64_t>(q.size()) != d)
      throw InvalidArgument("ablate_rows: basis vector length " + std::to_string(q.size()) + ", rows have " +
                            std::to_string(d));
  if (u.empty()) return;
#pragma omp parallel for schedule(static) if (n * d > (1 << 16))
  for (int64_t i = 0; i < n; ++i) {
    float* row = x + i * d;
    double before = 0.0;
    for (int64_t j = 0; j < d; ++j) before += static_cast<double>(row[j]) * row[j];
    std::vector<double> y(row, row + d);
    std::vector<double> c(u.size());
    for (std::size_t a = 0; a < u.size(); ++a) c[a] = dot(u[a], y);
    for (std::size_t a = 0; a < u.size(); ++a)
      for (int64_t j = 0; j < d; ++j) y[j] -= alpha * c[a] * u[a][j];
    double scale = 1.0;
    if (norm_preserving) {
      const double after = norm(y);
      scale = after > 0.0 ? std::sqrt(before) / after : 0.0;
    }
    for (int64_t j = 0; j < d; ++j) row[j] = static_cast<float>(y[j] * scale);
  }
}

void ablate_columns(float* w, int64_t d, int64_t k, const Vectors& u, double alpha, bool norm_preserving) {
  // Transpose to [k, d] so each write vector is contiguous, edit the rows, transpose back.
  std::vector<float> t(static_cast<std::size_t>(d * k));
  for (int64_t r = 0; r < d; ++r)
    for (int64_t j = 0; j < k; ++j) t[j * d + r] = w[r * k + j];
  ablate_rows(t.data(), k, d, u, alpha, norm_preserving);
  for (int64_t r = 0; r < d; ++r)
    for (int64_t j = 0; j < k; ++j) w[r * k + j] = t[j * d + r];
}

}  // namespace quench::ablate
