// quench/ablate/linalg.h: the small dense linear algebra of directional ablation
// (../shared/reference/directional-ablation.md §2-§4): orthonormalization of K directions,
// Gemma's post-norm correction of the edit basis, and the (column-norm-preserving) removal of a
// subspace from the vectors a weight writes into the residual stream.
//
// Sizes are tiny (K <= a few dozen directions of length d <= ~8k), so everything is plain loops:
// directions and dot products in fp64, weights in fp32 (no LAPACK).
#pragma once

#include <cstdint>
#include <vector>

namespace quench::ablate {

/// A set of vectors of one length d (e.g. K directions in the residual stream), fp64.
using Vectors = std::vector<std::vector<double>>;

/// Result of orthonormalize().
struct Orthonormal {
  Vectors basis;              ///< K' <= K orthonormal vectors spanning the kept inputs
  std::vector<int> kept;      ///< input index of each basis vector
  std::vector<int> dropped;   ///< inputs whose residual |R_ii| fell below the tolerance
  std::vector<double> r_diag; ///< |R_ii| of every input (0 for zero vectors), in input order
};

/// Thin QR by modified Gram-Schmidt run twice per column ("twice is enough"), fp64. An input
/// whose component orthogonal to the earlier kept ones has norm |R_ii| < rel_tol * max_i ||v_i||
/// is dropped (spec §4 step 2). Throws InvalidArgument when vectors differ in length.
Orthonormal orthonormalize(const Vectors& v, double rel_tol = 1e-6);

/// The edit basis for a writer followed by an RMSNorm with gain `g` (length d) before the
/// residual add (Gemma's post_attention_layernorm / post_feedforward_layernorm; Gemma 4 stores the
/// full gain, x̂·w): orthonormalize(g ⊙ q_i) over the columns q_i of `q`. Removing its span from the
/// writer's output removes span(q) from what the norm adds to the stream, because
/// q_i^T diag(g) (I - U U^T) = 0 (spec §2 "Post-sublayer norms", §4 step 3).
/// Throws InvalidArgument on a length mismatch.
Vectors post_norm_basis(const Vectors& q, const std::vector<float>& g, double rel_tol = 1e-6);

/// Edits `n` write vectors of length d stored as the rows of `x` ([n, d] row-major fp32, e.g. an
/// embedding table): x_i' = x_i - alpha U U^T x_i for orthonormal `u` (spec §2, §4 step 3). With
/// `norm_preserving`, x_i' is then rescaled to ||x_i|| (spec §3 variant (a); scaling keeps it
/// orthogonal to U when alpha = 1). Dot products in fp64. A row whose edited norm is 0 stays 0.
void ablate_rows(float* x, int64_t n, int64_t d, const Vectors& u, double alpha, bool norm_preserving);

/// Same edit for a Linear weight W [d, k] row-major (HF layout [out, in] with out = d): its
/// columns w_j are the write vectors: W' = W - alpha U (U^T W), column norms kept when
/// `norm_preserving` (spec §3 (a), the variant that keeps the direction removed).
void ablate_columns(float* w, int64_t d, int64_t k, const Vectors& u, double alpha, bool norm_preserving);

/// fp64 dot product and norm helpers.
double dot(const std::vector<double>& a, const std::vector<double>& b);
double norm(const std::vector<double>& a);
/// a / ||a||; throws InvalidArgument (naming `what`) when ||a|| == 0.
std::vector<double> normalized(const std::vector<double>& a, const char* what);
/// a - (a·b̂) b̂ for b̂ = b/||b|| (b = 0: a unchanged); applied twice against cancellation
/// (spec §3 "Projected").
std::vector<double> project_out(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace quench::ablate
