// quench/server/request_log.cpp: per-request log lines.
#include "server/request_log.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include "core/log.h"
#include "engine/request_output.h"
#include "server/generation_job.h"

namespace quench::server {

void fill_from_job(RequestLogEntry& e, const GenerationJob& job) {
  e.prompt_tokens = job.prompt_tokens();
  e.completion_tokens = job.completion_tokens();
  e.cached_tokens = job.cached_tokens();
  e.finish.clear();
  for (int i = 0; i < job.num_choices(); ++i) {
    const auto& fr = job.choice(i).finish_reason;
    e.finish += (i ? "," : "") + std::string(fr ? finish_reason_name(*fr) : "none");
  }
}

std::string format_request_log(const RequestLogEntry& e) {
  std::string line = fmt::format(
      "request id={} route={} status={} prompt_tokens={} completion_tokens={} cached_tokens={} latency_ms={:.1f}",
      e.request_id, e.route, e.status, e.prompt_tokens, e.completion_tokens, e.cached_tokens, e.latency_ms);
  if (!e.finish.empty()) line += " finish=" + nlohmann::json(e.finish).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (e.prompt) line += " prompt=" + nlohmann::json(*e.prompt).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return line;
}

void log_request(const RequestLogEntry& e) { quench::log().info("{}", format_request_log(e)); }

}  // namespace quench::server
