// quench/ablate/directions.cpp: see directions.h.
#include "ablate/directions.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "core/error.h"

namespace quench::ablate {

std::vector<double> LayerMeans::direction(int m, bool projected) const {
  if (m < 0 || m >= num_layers)
    throw InvalidArgument("layer " + std::to_string(m) + " out of range [0, " + std::to_string(num_layers) + ")");
  std::vector<double> r(hidden);
  for (int j = 0; j < hidden; ++j) r[j] = mu_a[m][j] - mu_b[m][j];
  if (projected) r = project_out(r, mu_b[m]);
  const std::string what = "direction of layer " + std::to_string(m);
  return normalized(r, what.c_str());
}

LayerMeans layer_means(const Captures& a, const Captures& b) {
  if (a.num_prompts == 0 || b.num_prompts == 0) throw InvalidArgument("layer_means: the A or B prompt set is empty");
  if (a.num_layers != b.num_layers || a.hidden != b.hidden)
    throw InvalidArgument("layer_means: A and B captures come from different geometries");
  LayerMeans m;
  m.num_layers = a.num_layers;
  m.hidden = a.hidden;
  const int L = a.num_layers, d = a.hidden;
  auto mean_of = [&](const Captures& c, int l) {
    std::vector<double> mu(d, 0.0);
    for (int p = 0; p < c.num_prompts; ++p) {
      const float* h = c.h(p, l);
      for (int j = 0; j < d; ++j) mu[j] += h[j];
    }
    for (double& x : mu) x /= c.num_prompts;
    return mu;
  };
  for (int l = 0; l < L; ++l) {
    m.mu_a.push_back(mean_of(a, l));
    m.mu_b.push_back(mean_of(b, l));
    LayerStats s;
    s.layer = l;
    s.norm_mu_a = norm(m.mu_a[l]);
    s.norm_mu_b = norm(m.mu_b[l]);
    std::vector<double> r(d);
    for (int j = 0; j < d; ++j) r[j] = m.mu_a[l][j] - m.mu_b[l][j];
    s.norm_r = norm(r);
    s.cos_ab = (s.norm_mu_a > 0 && s.norm_mu_b > 0) ? dot(m.mu_a[l], m.mu_b[l]) / (s.norm_mu_a * s.norm_mu_b) : 0.0;
    if (s.norm_r > 0) {
      for (double& x : r) x /= s.norm_r;
      auto moments = [&](const Captures& c, double& mean, double& var) {
        double s1 = 0, s2 = 0;
        for (int p = 0; p < c.num_prompts; ++p) {
          const float* h = c.h(p, l);
          double v = 0;
          for (int j = 0; j < d; ++j) v += r[j] * h[j];
          s1 += v;
          s2 += v * v;
        }
        mean = s1 / c.num_prompts;
        var = std::max(0.0, s2 / c.num_prompts - mean * mean);
      };
      double ma, va, mb, vb;
      moments(a, ma, va);
      moments(b, mb, vb);
      const double pooled = std::sqrt((va + vb) / 2);
      s.separation = pooled > 0 ? (ma - mb) / pooled : 0.0;
    }
    m.stats.push_back(s);
  }
  return m;
}

std::vector<int> best_separated_layers(const LayerMeans& means, int k, double max_fraction) {
  const int eligible = std::min(means.num_layers, static_cast<int>(std::ceil(max_fraction * means.num_layers)));
  if (k < 1 || k > eligible)
    throw InvalidArgument("--k " + std::to_string(k) + ": expected 1.." + std::to_string(eligible) +
                          " (layers below " + std::to_string(max_fraction) + " of the depth)");
  std::vector<int> order(eligible);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int x, int y) {
    return means.stats[x].separation > means.stats[y].separation;
  });
  order.resize(k);
  return order;
}

Vectors target_subspace(const LayerMeans& means, const std::vector<int>& basis_layers, int target,
                        const SubspaceOptions& opts, std::vector<int>* dropped) {
  Vectors dirs;
  for (int m : basis_layers) {
    std::vector<double> r = means.direction(m, opts.projected);
    if (opts.biprojected) {
      r = project_out(r, means.mu_b.at(target));
      const std::string what = "direction of layer " + std::to_string(m) + " biprojected at layer " + std::to_string(target);
      r = normalized(r, what.c_str());
    }
    dirs.push_back(std::move(r));
  }
  Orthonormal q = orthonormalize(dirs, opts.rank_tol);
  if (dropped) {
    dropped->clear();
    for (int i : q.dropped) dropped->push_back(basis_layers[i]);
  }
  return q.basis;
}

}  // namespace quench::ablate
