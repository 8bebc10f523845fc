// quench/server/sse.h: Server-Sent Events framing for streamed completions.
//
// Framing as vLLM / the OpenAI SDK parsers expect (../shared/reference/openai-api.md §3): each event
// is `data: <compact JSON>\n\n`; the stream ends with `data: [DONE]\n\n`; lines starting with ':' are
// comments, used here as keep-alives. JSON is dumped with invalid UTF-8 replaced (U+FFFD), so a
// chunk never carries half a character.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace quench::server {

/// "data: <json>\n\n".
std::string sse_event(const nlohmann::json& payload);
/// "data: [DONE]\n\n".
std::string sse_done();
/// ": keep-alive\n\n" (ignored by clients; lets the server notice a closed connection).
std::string sse_comment();
/// Compact JSON text with invalid UTF-8 replaced by U+FFFD.
std::string dump_json(const nlohmann::json& j);

}  // namespace quench::server
