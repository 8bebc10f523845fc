// tests/model/naive_reference.h: a deliberately plain, double-precision Gemma 4 forward written
// straight from gemma4-architecture.md §2 (no KV cache, no blocking, tensors read by name), used
// to check the optimized CPU decoder on random tiny checkpoints.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/model_config.h"
#include "io/safetensors.h"

namespace quench::test {

/// Full causal forward of `tokens` at positions 0..N-1; returns soft-capped logits [N, vocab]
/// (row-major, double). `prefix` is "model.language_model." or "model.". The embedding scale is
/// fl32(sqrt(hidden)), as transformers computes it for a model loaded with dtype=float32.
std::vector<double> naive_logits(const Checkpoint& ckpt, const ModelConfig& cfg, const std::string& prefix,
                                 const std::vector<int32_t>& tokens);

/// Relative L2 distance ||a - b|| / ||b|| over n values.
double rel_l2(const float* a, const double* b, int64_t n);
double rel_l2(const float* a, const float* b, int64_t n);
/// Index of the largest value.
int argmax(const float* x, int n);
int argmax(const double* x, int n);

}  // namespace quench::test
