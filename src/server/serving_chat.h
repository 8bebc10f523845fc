// quench/server/serving_chat.h: POST /v1/chat/completions (JSON or SSE), vLLM's serving_chat.
//
// Flow: JSON body -> parse_chat_request (400s) -> model check (404) -> chat format + tokenizer ->
// output budget (400 on context overflow) -> GenerationJob -> a chat.completion body, or SSE
// chunks: role chunk per choice, content deltas (logprobs of exactly those tokens), the last delta
// carrying finish_reason/stop_reason, an optional usage chunk with "choices": [], then [DONE].
// With chat_template_kwargs.enable_thinking the thought channel is returned as
// `reasoning_content` (and `reasoning`, the newer vLLM name), never as content.
#pragma once

#include <httplib.h>

#include "server/serving_context.h"

namespace quench::server {

/// Handles one chat request; errors become the JSON error envelope with their status.
void serve_chat_completion(ServingContext& ctx, const httplib::Request& req, httplib::Response& res);

}  // namespace quench::server
