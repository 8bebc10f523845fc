// quench/eval/openai_client.h: a minimal OpenAI-compatible client for the eval loop (cpp-httplib).
//
// Talks to quench serve, vLLM, llama-server or any server with POST /v1/chat/completions and
// /v1/completions (shared reference openai-api.md §2, §4). Retries, as the OpenAI SDKs do (§6.5):
// connection errors, 408, 409, 429 and 5xx are retried with exponential backoff (initial_backoff_s
// doubling, capped at 30 s, honouring Retry-After seconds); any other 4xx is not retried and throws
// InvalidArgument with the server's error message. https:// URLs work: Debian's cpp-httplib 0.11 is
// built with CPPHTTPLIB_OPENSSL_SUPPORT (its pkg-config Cflags define it). One client per thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/error.h"

namespace quench::eval {

/// Where and how to connect.
struct ClientOptions {
  std::string base_url;        ///< "http://127.0.0.1:8000" or ".../v1"
  std::string api_key;         ///< sent as "Authorization: Bearer KEY" when non-empty
  double timeout_s = 600;      ///< read timeout of one request
  int max_retries = 6;
  double initial_backoff_s = 0.5;
};

/// One generation request; `chat` picks the endpoint.
struct GenerationRequest {
  bool chat = true;
  std::string text;                ///< user message (chat) or prompt (completion)
  int max_tokens = 256;
  double temperature = 0.0;
  std::vector<std::string> stop;
};

/// The text of the first choice and its finish_reason.
struct GenerationResult {
  std::string text;
  std::string finish_reason;
};

/// A 400 whose message says the prompt plus budget exceed the model's context ("maximum context
/// length", "context length", openai-api.md §6.4). The task loops record such an item as an
/// empty response with finish_reason "context_length_exceeded" instead of stopping the run.
class ContextLengthError : public InvalidArgument {
 public:
  using InvalidArgument::InvalidArgument;
};

/// A blocking client for one endpoint.
class OpenAIClient {
 public:
  /// Throws InvalidArgument for a URL that is not http:// or https://.
  OpenAIClient(ClientOptions options, std::string model);
  ~OpenAIClient();
  OpenAIClient(const OpenAIClient&) = delete;
  OpenAIClient& operator=(const OpenAIClient&) = delete;

  /// Sends one request. Throws InvalidArgument (non-retryable 4xx), IoError (retries exhausted,
  /// unreadable response).
  GenerationResult generate(const GenerationRequest& req);

  /// Full URL of an endpoint path such as "/chat/completions".
  std::string url_of(const std::string& endpoint) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Splits a base URL into scheme+host+port and the path prefix that precedes "/chat/completions"
/// (always ending in "/v1"). Exposed for tests. Throws InvalidArgument.
std::pair<std::string, std::string> split_base_url(const std::string& base_url);

}  // namespace quench::eval
