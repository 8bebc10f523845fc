// quench/server/request_log.h: one log line per HTTP request (vLLM's --enable-log-requests, minus prompts).
//
// Line: `request id=<id> route=<path> status=<code> prompt_tokens=<n> completion_tokens=<n>
// cached_tokens=<n> latency_ms=<ms> finish=<reasons>` and, only with --log-prompts, `prompt=<json string>`.
// Written through spdlog at info level (stderr).
#pragma once

#include <optional>
#include <string>

namespace quench::server {

struct RequestLogEntry {
  std::string request_id;
  std::string route;
  int status = 200;
  int prompt_tokens = 0;
  int completion_tokens = 0;
  int cached_tokens = 0;
  double latency_ms = 0.0;
  std::string finish;                 ///< comma-separated finish reasons, or the error message
  std::optional<std::string> prompt;  ///< only with --log-prompts
};

class GenerationJob;
/// Copies a finished job's token counts and comma-separated finish reasons ("stop,length"; "none"
/// for a choice that has none) into the entry.
void fill_from_job(RequestLogEntry& e, const GenerationJob& job);

/// Formats the entry as one line (no newline); the prompt is JSON-quoted so it stays on one line.
std::string format_request_log(const RequestLogEntry& e);
/// Writes format_request_log(e) to the log.
void log_request(const RequestLogEntry& e);

}  // namespace quench::server
