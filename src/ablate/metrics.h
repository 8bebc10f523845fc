// quench/ablate/metrics.h: the checks of an edit (../shared/reference/directional-ablation.md §6):
// stream- and write-level projections on the removed subspace per layer, first-token KL divergence
// between the original and the edited model, and a marker-based behaviour rate.
#pragma once

#include <string>
#include <vector>

#include "ablate/capture.h"
#include "ablate/linalg.h"

namespace quench::ablate {

/// Mean over prompts of ||Q_l^T h_l|| (stream) and of ||Q_l^T (h_l / s_l - h_{l-1})|| (write:
/// what block l added, with s_l its layer_scalar), per layer; Q_l = `subspace[l]` (an empty basis
/// gives 0). Shapes: result [L].
struct Projections {
  std::vector<double> stream, write;
};
Projections subspace_projections(const Captures& c, const std::vector<Vectors>& subspace,
                                 const std::vector<float>& layer_scalars);

/// KL(P_orig || P_edit) of the last-position next-token distributions (softmax of the logits,
/// computed in fp64), one value per prompt, in nats (heretic `scorers/kl_divergence.py`, Arditi).
/// Throws InvalidArgument unless both captures kept logits for the same prompts.
std::vector<double> first_token_kl(const Captures& original, const Captures& edited);

/// Text normalization of heretic's KeywordRate: lower-case (ASCII), '*' removed, typographic
/// apostrophes (U+2018, U+2019) replaced by "'".
std::string normalize_for_marker(const std::string& text);

/// True when the (normalized) reply contains any (normalized) marker, or is empty after
/// trimming (heretic counts empty replies).
bool has_marker(const std::string& reply, const std::vector<std::string>& markers);

}  // namespace quench::ablate
