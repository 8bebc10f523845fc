// quench/engine/request_output.h: what the engine hands back for a request, step by step.
//
// Shapes follow vLLM's RequestOutput / CompletionOutput, but every message carries only the *delta*
// since the previous one (new tokens, new text, new logprobs), as the server streams them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace quench {

/// Why a sequence finished. OpenAI's finish_reason: kStop -> "stop", kLength -> "length",
/// kAbort -> "abort" (client left or server shut down).
enum class FinishReason { kStop, kLength, kAbort };

/// OpenAI spelling of a finish reason: "stop", "length" or "abort".
const char* finish_reason_name(FinishReason r);

/// Log-probability of one generated token.
///
/// Logprobs are log_softmax of the distribution the token was drawn from (see engine/sampler.h):
/// after suppression, logit_bias, penalties, temperature and the min_p / top_k / top_p truncation
/// (vLLM's "processed_logprobs" mode). Greedy requests (temperature 0) report the penalised logits
/// at temperature 1 without truncation. -inf (a suppressed or truncated id) is reported as -9999
/// (OpenAI's clamp), so every value is JSON-finite.
struct TokenLogprob {
  int32_t token_id = 0;
  float logprob = 0.0f;
  std::vector<std::pair<int32_t, float>> top;  ///< up to SamplingParams::logprobs (id, logprob), best first
};

/// Delta of one of the request's n sequences.
struct SeqOutput {
  int index = 0;                           ///< 0 .. n-1
  std::vector<int32_t> new_token_ids;      ///< tokens generated since the last message
  std::string new_text;                    ///< UTF-8 complete; stop strings removed (unless requested)
  std::vector<TokenLogprob> new_logprobs;  ///< one per new token when SamplingParams::logprobs is set
  std::optional<FinishReason> finish_reason;  ///< set on the sequence's last message
  std::optional<std::string> stop_reason;  ///< the stop string matched, or the stop token id in decimal
  int num_output_tokens = 0;               ///< tokens generated so far (usage.completion_tokens)
};

/// One message of a request's output stream.
struct RequestOutput {
  std::string request_id;
  int num_prompt_tokens = 0;     ///< usage.prompt_tokens
  int num_cached_tokens = 0;     ///< prompt tokens served from the prefix cache
  std::vector<SeqOutput> outputs;///< sequences that changed in this step
  bool finished = false;         ///< every sequence finished: this is the request's last message
  std::optional<std::string> error;  ///< set when the engine failed this request (the server answers 500)
};

}  // namespace quench
