// quench/server/serving_context.h: state shared by every route handler of one server.
//
// Holds the engine (HTTP threads only enqueue, abort, and read handles), the server options, the
// request-id source, HTTP counters and the draining flag set on SIGTERM.
#pragma once

#include <atomic>
#include <optional>
#include <string>

#include "engine/engine.h"
#include "server/metrics_text.h"
#include "server/server_config.h"

namespace quench::server {

class ServingContext {
 public:
  /// served_model_names empty -> the model directory's name.
  ServingContext(Engine& engine, ServerConfig cfg);

  Engine& engine() { return engine_; }
  const ServerConfig& config() const { return cfg_; }
  /// The first served name: the `model` field of every reply and the metrics label.
  const std::string& served_name() const { return cfg_.served_model_names.front(); }
  /// Throws ApiError 404 "The model `X` does not exist." when `model` is set and not served.
  void check_model(const std::optional<std::string>& model) const;
  /// A fresh id "<prefix>-<32 hex>" (uuid4-like; vLLM's shape).
  std::string new_request_id(const char* prefix);

  HttpMetrics http_metrics() const { return {requests_total_.load(), requests_failed_.load()}; }
  void count_request(int status) {
    ++requests_total_;
    if (status >= 400) ++requests_failed_;
  }

  /// SIGTERM: generation routes answer 503 from now on.
  void set_draining() { draining_ = true; }
  bool draining() const { return draining_; }
  std::atomic<int>& in_flight() { return in_flight_; }

 private:
  Engine& engine_;
  ServerConfig cfg_;
  std::atomic<uint64_t> id_counter_{0};
  uint64_t id_salt_;
  std::atomic<uint64_t> requests_total_{0}, requests_failed_{0};
  std::atomic<bool> draining_{false};
  std::atomic<int> in_flight_{0};
};

}  // namespace quench::server
