// quench/server/api_server.h: the OpenAI-compatible HTTP server (`quench serve`), over cpp-httplib.
//
// Routes (../shared/reference/openai-api.md §0): POST /v1/chat/completions, POST /v1/completions,
// GET /v1/models, GET /health, GET|POST /ping, GET /version, GET /metrics, POST /tokenize,
// POST /detokenize. `--api-key` guards paths under /v1 only (Bearer, scheme case-insensitive;
// 401 {"error":"Unauthorized"} as vLLM). Bodies above ServerConfig::max_body_bytes get 413; unknown
// routes 404; every error body is the OpenAI/vLLM envelope. Each connection runs on one thread of
// a pool of ServerConfig::http_threads; HTTP threads only enqueue into the engine and read.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "engine/engine.h"
#include "server/server_config.h"

namespace quench::server {

class ServingContext;

class ApiServer {
 public:
  /// The engine must be started by the caller and outlive the server.
  ApiServer(Engine& engine, ServerConfig cfg);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  /// Binds host:port (port 0 = ephemeral) and returns the bound port. Throws IoError naming the
  /// address when the bind fails.
  int bind();
  /// Serves until stop() (blocking). bind() first.
  void listen();
  /// bind() + listen() on a background thread; returns the port once accepting.
  int start_background();
  /// SIGTERM path: new generation requests get 503; waits up to `grace_s` for in-flight requests
  /// to finish, then the caller aborts the engine. Returns the number still in flight.
  int drain(double grace_s);
  /// Stops accepting and closes the listener; joins the background thread if any.
  void stop();

  int port() const { return port_; }
  ServingContext& context();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace quench::server
