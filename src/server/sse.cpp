// quench/server/sse.cpp: SSE framing.
#include "server/sse.h"

namespace quench::server {

std::string dump_json(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string sse_event(const nlohmann::json& payload) { return "data: " + dump_json(payload) + "\n\n"; }

std::string sse_done() { return "data: [DONE]\n\n"; }

std::string sse_comment() { return ": keep-alive\n\n"; }

}  // namespace quench::server
