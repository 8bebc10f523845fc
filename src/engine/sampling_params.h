// quench/engine/sampling_params.h: per-request sampling and stopping parameters (vLLM's SamplingParams).
//
// Names and defaults follow vllm/sampling_params.py; ranges follow the OpenAI/vLLM validation rules
// of ../shared/reference/openai-api.md §1.2-1.3. The server fills this struct from a request body
// (request value -> generation_config default -> built-in default); the engine never sees JSON.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace quench {

/// Sampling parameters of one request. Immutable once the request is added to the engine.
struct SamplingParams {
  int n = 1;                          ///< completions per prompt (forked after the prompt's prefill)
  float temperature = 1.0f;           ///< 0 = greedy; (0, 0.01) raised to 0.01 (vLLM)
  float top_p = 1.0f;                 ///< nucleus mass in (0, 1]; 1 = off
  int top_k = 0;                      ///< keep the k most likely tokens; 0 or -1 = off
  float min_p = 0.0f;                 ///< drop tokens with p < min_p * p_max; in [0, 1]; 0 = off
  float presence_penalty = 0.0f;      ///< OpenAI: logit -= presence * [count > 0] over output tokens; [-2, 2]
  float frequency_penalty = 0.0f;     ///< OpenAI: logit -= frequency * count over output tokens; [-2, 2]
  float repetition_penalty = 1.0f;    ///< HF/vLLM: over prompt+output tokens, positive logits /= p, negative *= p; > 0
  std::optional<uint64_t> seed;       ///< per-request RNG seed; same seed -> same output, also under batching
  int max_tokens = 16;                ///< generated tokens at most (>= 1)
  int min_tokens = 0;                 ///< EOS and stop token ids masked until this many tokens were generated
  std::vector<std::string> stop;      ///< stop strings (non-empty), matched across token boundaries
  std::vector<int32_t> stop_token_ids;///< extra stop ids, on top of generation_config's eos_token_ids
  bool ignore_eos = false;            ///< keep generating past EOS (stop_token_ids still stop)
  std::optional<int> logprobs;        ///< top-N logprobs per generated token; 0 = sampled token only; <= kMaxLogprobs
  std::map<int32_t, float> logit_bias;///< added to the logit of each id before penalties; values clamped to [-100, 100]
  bool skip_special_tokens = true;    ///< detokenizer drops special tokens from the text
  bool include_stop_str_in_output = false;  ///< keep the matched stop string in the text

  /// Largest `logprobs` accepted (vLLM's --max-logprobs default).
  static constexpr int kMaxLogprobs = 20;

  /// True when sampling is argmax (temperature below 1e-5, as vLLM's _SAMPLING_EPS).
  bool is_greedy() const { return temperature < 1e-5f; }

  /// Checks every field; throws InvalidArgument naming the field, its value and the allowed range,
  /// e.g. "top_p must be in (0, 1], got 0". `max_model_len` > 0 also bounds max_tokens;
  /// `vocab_size` > 0 also bounds logit_bias keys and stop_token_ids.
  void validate(int max_model_len = 0, int vocab_size = 0) const;
};

}  // namespace quench
