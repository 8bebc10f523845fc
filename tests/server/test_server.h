// tests/server/test_server.h: starts quench's HTTP server in-process on 127.0.0.1 (ephemeral port).
//
// Two back ends: the FakeRunner with the test tokenizer (fast, deterministic, for the HTTP layer)
// or a real model directory (models/gemma4-tiny-it) through server::load_engine.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "server/api_server.h"
#include "server/server_config.h"

namespace quench::test {

struct TestServerOptions {
  server::ServerConfig server;   ///< port is forced to 0, host to 127.0.0.1
  EngineConfig engine;
  int num_blocks = 512;
  int block_size = 16;
  int max_position_embeddings = 256;
  std::chrono::microseconds step_delay{0};
  std::filesystem::path model_dir;  ///< set: load this real model instead of the fake runner
};

class TestServer {
 public:
  explicit TestServer(TestServerOptions opts = {});
  ~TestServer();

  int port() const { return port_; }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  Engine& engine() { return *engine_; }
  server::ApiServer& api() { return *api_; }
  /// A client with 30 s timeouts.
  std::unique_ptr<httplib::Client> client() const;
  /// POST JSON, returns (status, parsed body or the raw text as a JSON string).
  std::pair<int, nlohmann::json> post(const std::string& path, const nlohmann::json& body,
                                      const httplib::Headers& headers = {}) const;
  /// A value from /metrics (first sample whose line starts with `series`), or -1 when absent.
  double metric(const std::string& series) const;

 private:
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<server::ApiServer> api_;
  int port_ = 0;
};

/// Parses an SSE body into its data payloads (without the "data: " prefix), in order.
std::vector<std::string> sse_payloads(const std::string& body);

/// The device real-model tests run on: $QUENCH_TEST_DEVICE ("cpu" when unset; "cuda" on the GPU host).
std::string test_device();

/// True when models/gemma4-tiny-it holds a loadable checkpoint.
bool tiny_model_present();
std::filesystem::path tiny_model_dir();

}  // namespace quench::test
