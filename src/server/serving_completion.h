// quench/server/serving_completion.h: POST /v1/completions (JSON or SSE), vLLM's serving_completion.
//
// Each prompt (string, string list, token ids or list of token-id lists) is one engine request;
// choice index = prompt * n + sample. Streaming chunks say "object": "text_completion" and carry
// every key, nulls included; the last chunk of a choice has its finish_reason; include_usage adds a
// "choices": [] chunk before [DONE]. `echo` prefixes each choice with its prompt text.
#pragma once

#include <httplib.h>

#include "server/serving_context.h"

namespace quench::server {

/// Handles one completions request; errors become the JSON error envelope with their status.
void serve_completion(ServingContext& ctx, const httplib::Request& req, httplib::Response& res);

}  // namespace quench::server
