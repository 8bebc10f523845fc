// quench/engine/sampler.h: logits -> next token, per sequence, in fp32.
//
// Pipeline, in order (vLLM v1's Sampler, vllm/v1/sample/sampler.py, applied to one row):
//   1. suppressed ids (generation_config suppress_tokens) -> -inf; while fewer than min_tokens
//      tokens were generated, the stop ids (EOS and stop_token_ids) -> -inf;
//   2. logit_bias: logit[id] += bias (bias clamped to [-100, 100]);
//   3. penalties: repetition (HF/vLLM: over ids seen in prompt or output, logit > 0 -> logit / r,
//      else logit * r), then frequency and presence (OpenAI: logit -= f * count + p * [count > 0],
//      counts over output tokens only);
//   4. greedy (temperature < 1e-5): argmax, lowest id on ties; done;
//   5. temperature: logit / max(T, 0.01);
//   6. min_p: drop ids whose probability is below min_p * max probability;
//   7. top_k (keeps every id tied with the k-th), then top_p on the renormalised rest (keeps the
//      smallest set of most likely ids whose mass reaches top_p; always at least one);
//   8. draw: inverse CDF over ids in ascending order with u = SeededUniform(seed, index, step).
// Logprobs (when requested) are log_softmax of the distribution the token was drawn from: the
// row after step 7 for random sampling, the row after step 3 (temperature 1, no truncation) for
// greedy. -inf is reported as -9999 (OpenAI's clamp), so values are always JSON-finite.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "engine/request_output.h"   // TokenLogprob
#include "engine/sampling_params.h"  // SamplingParams

namespace quench {

/// Counter-based uniform in [0, 1): SplitMix64 finalisers chained over (seed, index, step), so a
/// sequence's draws depend only on its seed, its index within the request and its output
/// position, never on batching or on preemption (Steele, Lea, Flood 2014, "Fast splittable
/// pseudorandom number generators", the SplitMix64 mix function).
double seeded_uniform(uint64_t seed, uint64_t index, uint64_t step);

/// What the sampler needs to know about one sequence besides its logits.
struct SamplerSeqState {
  const SamplingParams* params = nullptr;
  const std::unordered_set<int32_t>* seen_ids = nullptr;        ///< prompt + output ids (repetition penalty)
  const std::unordered_map<int32_t, int>* output_counts = nullptr;  ///< output id -> count
  int num_output_tokens = 0;  ///< tokens generated so far (min_tokens; the draw's step)
  uint64_t seed = 0;          ///< the request's seed (or one derived from the engine seed)
  int index = 0;              ///< sequence index within the request
};

struct SampleResult {
  int32_t token_id = 0;
  std::optional<TokenLogprob> logprob;  ///< set when params->logprobs is set
};

class Sampler {
 public:
  /// `suppress_ids`: always -inf. `stop_ids`: generation_config EOS ids, masked under min_tokens
  /// (with each request's stop_token_ids). `vocab_size`: row length of the logits.
  Sampler(int vocab_size, std::vector<int32_t> suppress_ids, std::vector<int32_t> eos_ids);

  /// Samples one token from `logits` (fp32 [vocab_size], the backend's final logits).
  /// Throws InvalidArgument when logits.size() != vocab_size or every id is -inf.
  SampleResult sample(std::span<const float> logits, const SamplerSeqState& st);

  /// Steps 1-3 applied to `row` in place (exposed for tests).
  void apply_processors(std::vector<float>& row, const SamplerSeqState& st) const;

  int vocab_size() const { return vocab_size_; }

  /// The ids (ascending) the last non-greedy sample() drew from: the filtered set after min_p,
  /// top_k and top_p (exposed so device samplers can be tested against it).
  const std::vector<int32_t>& last_candidates() const { return cand_; }

 private:
  bool is_suppressed(int32_t id) const;
  /// True when steps 1-3 can change the row beyond suppression (penalties, bias, min_tokens).
  bool changes_logits(const SamplerSeqState& st) const;
  int vocab_size_;
  std::vector<int32_t> suppress_ids_;
  std::vector<int32_t> eos_ids_;
  std::vector<float> row_;          ///< working copy of the logits row
  std::vector<int32_t> order_;      ///< scratch for top-k/top-p sorting
  std::vector<int32_t> cand_;       ///< ids still possible (finite logits), ascending after truncation
  std::vector<double> weights_;     ///< exp(l - l_max) of cand_, for the draw
  std::vector<float> vals_;         ///< scratch for the top-k threshold

  /// Logprob of `token` and the top_n best, with `lse` = log-sum-exp of the candidates' logits.
  TokenLogprob candidate_logprob(int32_t token, int top_n, double lse);
};

/// log_softmax of `row` (fp32, computed in double). -inf stays -inf.
std::vector<float> log_softmax(std::span<const float> row);

}  // namespace quench
