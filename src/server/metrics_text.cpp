// quench/server/metrics_text.cpp: Prometheus text format rendering.
#include "server/metrics_text.h"

#include <cmath>

#include <fmt/format.h>

namespace quench::server {
namespace {

/// Prometheus label values escape backslash, double quote and newline.
std::string escape_label(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string num(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  return fmt::format("{}", v);
}

class Writer {
 public:
  explicit Writer(const std::string& model) : labels_(fmt::format("model_name=\"{}\",engine=\"0\"", escape_label(model))) {}

  void scalar(const char* name, const char* type, const char* help, double v) {
    header(name, type, help);
    out_ += fmt::format("{}{{{}}} {}\n", name, labels_, num(v));
  }
  void header(const char* name, const char* type, const char* help) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  void sample(const std::string& name, const std::string& extra_labels, double v) {
    out_ += fmt::format("{}{{{}{}}} {}\n", name, labels_, extra_labels, num(v));
  }
  void histogram(const char* name, const char* help, const Histogram& h) {
    header(name, "histogram", help);
    for (size_t i = 0; i < h.bounds.size(); ++i)
      sample(fmt::format("{}_bucket", name), fmt::format(",le=\"{}\"", num(h.bounds[i])),
             static_cast<double>(i < h.counts.size() ? h.counts[i] : 0));
    sample(fmt::format("{}_bucket", name), ",le=\"+Inf\"", static_cast<double>(h.count));
    sample(fmt::format("{}_sum", name), "", h.sum);
    sample(fmt::format("{}_count", name), "", static_cast<double>(h.count));
  }
  std::string take() { return std::move(out_); }

 private:
  std::string labels_;
  std::string out_;
};

}  // namespace

std::string render_prometheus(const EngineMetrics& m, const HttpMetrics& http, const std::string& model_name) {
  Writer w(model_name);
  w.scalar("vllm:num_requests_running", "gauge", "Number of requests in the running batch.", m.num_requests_running);
  w.scalar("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be scheduled.", m.num_requests_waiting);
  w.scalar("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage, fraction of blocks in use (0-1).", m.kv_cache_usage);
  w.scalar("quench:kv_cache_blocks_used", "gauge", "KV-cache blocks in use (full-attention group).", m.kv_blocks_used);
  w.scalar("quench:kv_cache_blocks_total", "gauge", "KV-cache blocks allocated (full-attention group).",
           m.kv_blocks_total);
  w.scalar("vllm:prefix_cache_queries_total", "counter", "Prompt tokens looked up in the prefix cache.",
           static_cast<double>(m.prefix_cache_queries));
  w.scalar("vllm:prefix_cache_hits_total", "counter", "Prompt tokens found in the prefix cache.",
           static_cast<double>(m.prefix_cache_hits));
  double hit_rate = m.prefix_cache_queries ? static_cast<double>(m.prefix_cache_hits) / m.prefix_cache_queries : 0.0;
  w.scalar("quench:prefix_cache_hit_rate", "gauge", "prefix_cache_hits_total / prefix_cache_queries_total.", hit_rate);
  w.scalar("vllm:prompt_tokens_total", "counter", "Prefill tokens processed.", static_cast<double>(m.prompt_tokens));
  w.scalar("vllm:generation_tokens_total", "counter", "Tokens generated.", static_cast<double>(m.generation_tokens));
  w.scalar("vllm:num_preemptions_total", "counter", "Scheduler preemptions.", static_cast<double>(m.num_preemptions));
  w.scalar("quench:requests_added_total", "counter", "Requests added to the engine.",
           static_cast<double>(m.num_requests_added));
  w.header("vllm:request_success_total", "counter", "Finished requests by finish reason.");
  w.sample("vllm:request_success_total", ",finished_reason=\"stop\"", static_cast<double>(m.num_requests_finished_stop));
  w.sample("vllm:request_success_total", ",finished_reason=\"length\"",
           static_cast<double>(m.num_requests_finished_length));
  w.sample("vllm:request_success_total", ",finished_reason=\"abort\"",
           static_cast<double>(m.num_requests_finished_abort));
  w.scalar("quench:http_requests_total", "counter", "HTTP requests to the generation routes.",
           static_cast<double>(http.requests_total));
  w.scalar("quench:http_requests_failed_total", "counter", "Generation-route requests answered with status >= 400.",
           static_cast<double>(http.requests_failed));
  w.histogram("vllm:time_to_first_token_seconds", "Time from arrival to the first generated token, seconds.",
              m.time_to_first_token);
  w.histogram("vllm:inter_token_latency_seconds", "Time between successive generated tokens, seconds.",
              m.inter_token_latency);
  w.histogram("vllm:e2e_request_latency_seconds", "Time from arrival to finish, seconds.", m.e2e_request_latency);
  return w.take();
}

}  // namespace quench::server
