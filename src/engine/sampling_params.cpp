// quench/engine/sampling_params.cpp: SamplingParams::validate (vLLM's _verify_args messages).
#include "engine/sampling_params.h"

#include <cmath>

#include <fmt/format.h>

#include "core/error.h"

namespace quench {

void SamplingParams::validate(int max_model_len, int vocab_size) const {
  auto fail = [](const std::string& msg) { throw InvalidArgument(msg); };
  if (n < 1) fail(fmt::format("n must be at least 1, got {}.", n));
  if (!std::isfinite(temperature) || temperature < 0.0f)
    fail(fmt::format("temperature must be non-negative, got {}.", temperature));
  if (!(top_p > 0.0f && top_p <= 1.0f)) fail(fmt::format("top_p must be in (0, 1], got {}.", top_p));
  if (top_k < -1) fail(fmt::format("top_k must be -1 (disable), or at least 1, got {}.", top_k));
  if (!(min_p >= 0.0f && min_p <= 1.0f)) fail(fmt::format("min_p must be in [0, 1], got {}.", min_p));
  if (!(presence_penalty >= -2.0f && presence_penalty <= 2.0f))
    fail(fmt::format("presence_penalty must be in [-2, 2], got {}.", presence_penalty));
  if (!(frequency_penalty >= -2.0f && frequency_penalty <= 2.0f))
    fail(fmt::format("frequency_penalty must be in [-2, 2], got {}.", frequency_penalty));
  if (!std::isfinite(repetition_penalty) || repetition_penalty <= 0.0f)
    fail(fmt::format("repetition_penalty must be greater than zero, got {}.", repetition_penalty));
  if (max_tokens < 1) fail(fmt::format("max_tokens must be at least 1, got {}.", max_tokens));
  if (max_model_len > 0 && max_tokens > max_model_len)
    fail(fmt::format("max_tokens must be at most max_model_len ({}), got {}.", max_model_len, max_tokens));
  if (min_tokens < 0) fail(fmt::format("min_tokens must be greater than or equal to 0, got {}.", min_tokens));
  if (min_tokens > max_tokens)
    fail(fmt::format("min_tokens must be less than or equal to max_tokens={}, got {}.", max_tokens, min_tokens));
  for (size_t i = 0; i < stop.size(); ++i)
    if (stop[i].empty()) fail(fmt::format("stop[{}] cannot be an empty string.", i));
  if (logprobs && (*logprobs < 0 || *logprobs > kMaxLogprobs))
    fail(fmt::format("logprobs must be in [0, {}], got {}.", kMaxLogprobs, *logprobs));
  for (const auto& [id, bias] : logit_bias) {
    if (!std::isfinite(bias)) fail(fmt::format("logit_bias[{}] must be a finite number, got {}.", id, bias));
    if (id < 0 || (vocab_size > 0 && id >= vocab_size))
      fail(fmt::format("token_id(s) [{}] in logit_bias contain out-of-vocab token ids. Vocabulary size: {}", id, vocab_size));
  }
  for (int32_t id : stop_token_ids)
    if (id < 0 || (vocab_size > 0 && id >= vocab_size))
      fail(fmt::format("stop_token_ids contains {}, outside the vocabulary [0, {}).", id, vocab_size));
}

}  // namespace quench
