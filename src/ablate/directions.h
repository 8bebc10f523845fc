// quench/ablate/directions.h: difference-of-means directions per layer, their A/B separation,
// the choice of basis layers, and the per-target-layer orthonormal subspace
// (../shared/reference/directional-ablation.md §1, §3 projected / biprojected, §4, §5).
#pragma once

#include <vector>

#include "ablate/capture.h"
#include "ablate/linalg.h"

namespace quench::ablate {

/// Statistics of one layer's direction r(l) = mu_A(l) - mu_B(l).
struct LayerStats {
  int layer = 0;
  double norm_mu_a = 0, norm_mu_b = 0;  ///< ||mu_A||, ||mu_B||
  double norm_r = 0;                    ///< ||r||
  double cos_ab = 0;                    ///< cos(mu_A, mu_B)
  /// d' of the projections s = r̂·h on A vs B: (mean_A s - mean_B s) / sqrt((var_A + var_B)/2)
  /// (population variances; +inf-free: a zero pooled spread gives 0).
  double separation = 0;
};

/// Per-layer means of both sets (accumulated in fp64) and their statistics.
struct LayerMeans {
  int num_layers = 0, hidden = 0;
  Vectors mu_a, mu_b;              ///< [L][d]
  std::vector<LayerStats> stats;   ///< [L]

  /// r(m) = mu_A(m) - mu_B(m), with `projected` its component orthogonal to mu_B(m)
  /// (spec §3 "Projected"), normalized. Throws InvalidArgument when it is zero.
  std::vector<double> direction(int m, bool projected) const;
};

/// Means and statistics of two capture sets of the same model. Throws InvalidArgument when a set
/// is empty or the shapes differ.
LayerMeans layer_means(const Captures& a, const Captures& b);

/// The `k` layers with the largest separation among layers l < ceil(max_fraction · L) (Arditi
/// discards the last 20% of layers, spec §5), best first. Throws InvalidArgument when k < 1 or
/// k exceeds the eligible layers.
std::vector<int> best_separated_layers(const LayerMeans& means, int k, double max_fraction = 0.8);

/// How the basis directions become one target layer's subspace.
struct SubspaceOptions {
  bool projected = false;    ///< remove each direction's mu_B component at its measurement layer
  bool biprojected = false;  ///< and again against mu_B of the target layer (spec §3 "Biprojected")
  double rank_tol = 1e-6;    ///< relative |R_ii| below which a near-dependent direction is dropped
};

/// The residual-stream subspace removed at `target`: directions r(m) of every basis layer m
/// (optionally projected / biprojected), orthonormalized. `dropped` (may be null) receives the
/// basis layers whose directions were dropped as near-dependent.
Vectors target_subspace(const LayerMeans& means, const std::vector<int>& basis_layers, int target,
                        const SubspaceOptions& opts, std::vector<int>* dropped = nullptr);

}  // namespace quench::ablate
