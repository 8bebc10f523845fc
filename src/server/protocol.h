// quench/server/protocol.h: OpenAI request bodies parsed and validated into engine inputs.
//
// Field names, defaults and checks follow vLLM's protocol (../shared/reference/openai-api.md §1-§4):
// unknown keys are ignored; `null` means absent; every rejection is an ApiError 400 naming the
// field (`param`), except an unknown `model` (404, checked by the route). Token-budget checks that
// need the prompt length live in `resolve_max_tokens`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/engine.h"

namespace quench::server {

/// Largest `top_logprobs` / completions `logprobs` accepted (vLLM's --max-logprobs default).
inline constexpr int kMaxLogprobs = 20;
/// Largest `n` accepted (vLLM's VLLM_MAX_N_SEQUENCES is larger; 128 keeps one request bounded).
inline constexpr int kMaxN = 128;

/// Fields shared by chat and completion requests.
struct CommonRequest {
  std::optional<std::string> model;     ///< absent -> the first served name
  SamplingParams params;                ///< max_tokens resolved later (see resolve_max_tokens)
  std::optional<int64_t> max_tokens;    ///< max_completion_tokens, else max_tokens, as sent
  bool stream = false;
  bool include_usage = false;           ///< stream_options.include_usage (true once stream_options is sent)
  bool continuous_usage_stats = false;  ///< stream_options.continuous_usage_stats
};

/// One chat message after validation; content parts are joined with "\n" (vLLM "string" format).
struct ParsedMessage {
  std::string role;
  std::string content;
  std::string reasoning;  ///< assistant `reasoning` / `reasoning_content`, for interleaved thinking
};

/// POST /v1/chat/completions body.
struct ChatCompletionRequest : CommonRequest {
  std::vector<ParsedMessage> messages;
  bool add_generation_prompt = true;
  bool continue_final_message = false;
  bool enable_thinking = false;     ///< chat_template_kwargs.enable_thinking
  bool include_reasoning = true;    ///< false: strip the thought channel without returning it
  bool logprobs = false;
  int top_logprobs = 0;
};

/// A completions prompt: text, or token ids.
using PromptInput = std::variant<std::string, std::vector<int32_t>>;

/// POST /v1/completions body.
struct CompletionRequest : CommonRequest {
  std::vector<PromptInput> prompts;  ///< one choice group per prompt (index = p*n + i)
  bool echo = false;
  bool add_special_tokens = true;    ///< BOS before text prompts (vLLM's default for completions)
  std::optional<int> logprobs;       ///< legacy int: top-N per token
};

/// Parses a chat body. `defaults` are the server's sampling defaults (generation_config's
/// temperature/top_k/top_p over vLLM's built-ins); request fields override them. vocab_size bounds
/// logit_bias and stop_token_ids. Throws ApiError 400 (501 for `tools`).
ChatCompletionRequest parse_chat_request(const nlohmann::json& body, const SamplingParams& defaults, int vocab_size);
/// Parses a completions body. Throws ApiError 400.
CompletionRequest parse_completion_request(const nlohmann::json& body, const SamplingParams& defaults, int vocab_size);

/// Sets params.max_tokens from the request and the prompt length (vLLM get_max_tokens):
/// min(requested or gen_cap or the rest of the context, max_model_len - prompt_tokens).
/// `default_max_tokens` is used when nothing was requested (16 for completions, 0 = the rest of the
/// context for chat); `gen_cap` is generation_config's max_new_tokens (0 = none).
/// Throws ApiError 400 with "maximum context length is N tokens" when the prompt alone does not
/// fit or prompt + an explicit max_tokens exceeds max_model_len; `param` names the prompt field.
void resolve_max_tokens(CommonRequest& req, int num_prompt_tokens, int max_model_len, int default_max_tokens,
                        int gen_cap, const char* prompt_param);

}  // namespace quench::server
