// quench/server/server_config.h: options of the HTTP front end (`quench serve` flags that are not engine options).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace quench::server {

struct ServerConfig {
  /// --host: bind address. quench defaults to loopback (vLLM binds all interfaces); pass 0.0.0.0 to expose it.
  std::string host = "127.0.0.1";
  int port = 8000;                              ///< --port; 0 = an ephemeral port (tests)
  std::vector<std::string> served_model_names;  ///< --served-model-name; the first is used in replies
  std::string model_root;                       ///< the model directory (the `root` of /v1/models cards)
  std::vector<std::string> api_keys;            ///< --api-key; empty = no auth
  bool log_prompts = false;                     ///< --log-prompts: include prompt text in the request log
  size_t max_body_bytes = 16u << 20;            ///< request bodies above this get 413
  int http_threads = 160;                       ///< concurrent connections served (streams hold one each)
  int keep_alive_timeout_s = 5;                 ///< HTTP keep-alive idle timeout (uvicorn's default)
  double shutdown_grace_s = 10.0;               ///< SIGTERM: time running requests get to finish before abort
};

}  // namespace quench::server
