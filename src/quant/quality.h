// quench/quant/quality.h: what quantization cost, measured on held-out text: KL divergence of the
// next-token distributions, top-1 agreement, and perplexity of the reference and quantized models.
#pragma once

#include <cstdint>
#include <vector>

namespace quench {

class Model;

/// Logit-level comparison of a quantized model against its BF16 reference.
struct LogitQuality {
  int samples = 0;
  int64_t positions = 0;        ///< next-token predictions compared (tokens - 1 per sample)
  double kl_mean = 0.0;         ///< mean over positions of KL(P_ref || P_quant), nats
  double kl_max = 0.0;          ///< largest per-position KL
  double top1_agreement = 0.0;  ///< fraction of positions whose argmax agrees
  double ppl_ref = 0.0;         ///< exp(mean NLL of the actual next token) under the reference
  double ppl_quant = 0.0;       ///< same under the quantized model
};

/// KL(P||Q) = sum_v p_v (log p_v - log q_v) of softmax(ref_logits) and softmax(quant_logits), in
/// nats, computed in double with log-sum-exp. Both arrays have `vocab` entries.
double kl_divergence(const float* ref_logits, const float* quant_logits, int vocab);

/// Runs both models (CPU forward, logits of every position) over each sample (token ids incl.
/// <bos>) and compares position t's distribution with the next token t+1. Throws InvalidArgument
/// when the vocabularies differ or no sample has two tokens.
LogitQuality compare_logits(const Model& ref, const Model& quant, const std::vector<std::vector<int32_t>>& samples);

}  // namespace quench
