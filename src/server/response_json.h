// quench/server/response_json.h: pieces of OpenAI response bodies shared by chat and completions.
//
// Shapes from ../shared/reference/openai-api.md §2 (chat logprobs), §4 (legacy completion logprobs),
// §2 (usage, stop_reason). Logprob values of -inf are written as -9999.0 (vLLM).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/engine.h"

namespace quench::server {

/// {"prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details"}; details carry
/// cached_tokens when > 0, else null.
nlohmann::json usage_json(int prompt_tokens, int completion_tokens, int cached_tokens);

/// vLLM's stop_reason: the matched stop string, the stop token id as an integer, or null.
nlohmann::json stop_reason_json(const std::optional<std::string>& stop_reason, const SamplingParams& params);

/// "stop" / "length" / "abort", or null while unfinished.
nlohmann::json finish_reason_json(const std::optional<FinishReason>& r);

/// Chat `logprobs.content` entries for `lps`: {"token", "logprob", "bytes", "top_logprobs": [...]}.
/// `top_n` limits top_logprobs (0 = empty list).
nlohmann::json chat_logprobs_content(const Tokenizer& tok, const std::vector<TokenLogprob>& lps, int top_n);

/// Legacy completions logprobs object {"tokens", "token_logprobs", "top_logprobs", "text_offset"}.
/// text_offset starts at `offset` and advances by each token's decoded length (bytes of UTF-8).
/// top_logprobs maps decoded token -> logprob, at most top_n + 1 entries including the sampled one.
nlohmann::json completion_logprobs(const Tokenizer& tok, const std::vector<TokenLogprob>& lps, int top_n,
                                   size_t offset);

/// A logprob as JSON: -inf (or below) as -9999.0.
double clamp_logprob(float v);

}  // namespace quench::server
