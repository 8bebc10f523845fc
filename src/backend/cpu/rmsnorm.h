// quench/backend/cpu/rmsnorm.h: Gemma 4 RMSNorm (gemma4-architecture.md §2.2): in fp32,
// y = x · (mean(x²) + eps)^(-1/2) · w, with the weight used as-is (NOT 1 + w).
#pragma once

namespace quench {

/// Normalizes each of `n_rows` rows of length `dim`: x, y [n_rows, dim] fp32 (may alias).
/// `weight` [dim] fp32, or nullptr for the weight-less variant (v_norm). eps e.g. 1e-6.
void rms_norm(const float* x, const float* weight, int n_rows, int dim, float eps, float* y);

}  // namespace quench
