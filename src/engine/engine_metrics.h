// quench/engine/engine_metrics.h: counters, gauges and histograms the engine exports for /metrics.
//
// Names mirror vLLM's Prometheus series (../shared/reference/openai-api.md §5); the server renders
// them. A snapshot is copied out under the engine's lock, so readers never block the loop long.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace quench {

/// A Prometheus-style cumulative histogram: counts[i] = observations <= bounds[i]; the +Inf bucket
/// is `count`.
struct Histogram {
  std::vector<double> bounds;    ///< upper bucket edges, ascending (seconds or tokens)
  std::vector<uint64_t> counts;  ///< same size as bounds, cumulative
  double sum = 0.0;
  uint64_t count = 0;

  explicit Histogram(std::vector<double> b = {}) : bounds(std::move(b)), counts(bounds.size(), 0) {}
  void observe(double v);
};

/// vLLM v0.10 bucket edges for time-to-first-token, seconds.
std::vector<double> ttft_buckets();
/// vLLM v0.10 bucket edges for inter-token latency, seconds.
std::vector<double> inter_token_buckets();
/// vLLM v0.10 bucket edges for request phase latencies (e2e), seconds.
std::vector<double> request_latency_buckets();

struct EngineMetrics {
  // counters
  uint64_t num_requests_added = 0;
  uint64_t num_requests_finished_stop = 0;    ///< vllm:request_success_total{finished_reason="stop"}
  uint64_t num_requests_finished_length = 0;  ///< ... "length"
  uint64_t num_requests_finished_abort = 0;   ///< ... "abort"
  uint64_t prompt_tokens = 0;       ///< vllm:prompt_tokens_total (prefill tokens computed)
  uint64_t generation_tokens = 0;   ///< vllm:generation_tokens_total
  uint64_t prefix_cache_queries = 0;///< vllm:prefix_cache_queries_total (prompt tokens looked up)
  uint64_t prefix_cache_hits = 0;   ///< vllm:prefix_cache_hits_total (prompt tokens found)
  uint64_t num_preemptions = 0;     ///< vllm:num_preemptions_total
  uint64_t num_steps = 0;           ///< engine steps run
  uint64_t num_device_sampled_steps = 0;  ///< steps whose tokens were sampled on the backend's device
  // gauges
  int num_requests_running = 0;     ///< vllm:num_requests_running
  int num_requests_waiting = 0;     ///< vllm:num_requests_waiting
  int kv_blocks_used = 0;           ///< full-attention group blocks in use (the binding group)
  int kv_blocks_total = 0;
  double kv_cache_usage = 0.0;      ///< vllm:kv_cache_usage_perc, fraction 0-1
  // histograms
  Histogram time_to_first_token{ttft_buckets()};      ///< vllm:time_to_first_token_seconds
  Histogram inter_token_latency{inter_token_buckets()};///< vllm:inter_token_latency_seconds
  Histogram e2e_request_latency{request_latency_buckets()};  ///< vllm:e2e_request_latency_seconds
};

}  // namespace quench
