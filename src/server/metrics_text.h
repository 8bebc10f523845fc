// quench/server/metrics_text.h: Prometheus text exposition of the engine's metrics (GET /metrics).
//
// Series names, types and labels follow vLLM's (../shared/reference/openai-api.md §5.4):
// `vllm:` prefix, labels model_name="<served name>" and engine="0", counters with `_total`,
// histograms as `_bucket{le=...}`, `_sum`, `_count`. Format: Prometheus text format 0.0.4.
#pragma once

#include <cstdint>
#include <string>

#include "engine/engine_metrics.h"

namespace quench::server {

/// Counters kept by the HTTP layer itself (not the engine).
struct HttpMetrics {
  uint64_t requests_total = 0;   ///< HTTP requests to the generation routes
  uint64_t requests_failed = 0;  ///< of those answered with a status >= 400
};

/// Renders every series. model_name is the served name used in the labels.
std::string render_prometheus(const EngineMetrics& m, const HttpMetrics& http, const std::string& model_name);

}  // namespace quench::server
