// quench/eval/openai_client.cpp: OpenAI-compatible requests with retries (see openai_client.h).
#include "eval/openai_client.h"

#include <httplib.h>

#include <chrono>
#include <cmath>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace quench::eval {

std::pair<std::string, std::string> split_base_url(const std::string& base_url) {
  std::string url = base_url;
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos || (url.substr(0, scheme_end) != "http" && url.substr(0, scheme_end) != "https"))
    throw InvalidArgument("--base-url '" + base_url + "': expected http://HOST[:PORT][/PATH] or https://...");
  const std::size_t path_start = url.find('/', scheme_end + 3);
  std::string host = path_start == std::string::npos ? url : url.substr(0, path_start);
  std::string path = path_start == std::string::npos ? "" : url.substr(path_start);
  while (!path.empty() && path.back() == '/') path.pop_back();
  if (host.size() <= scheme_end + 3) throw InvalidArgument("--base-url '" + base_url + "': missing host");
  if (path.size() < 3 || path.substr(path.size() - 3) != "/v1") path += "/v1";
  return {host, path};
}

struct OpenAIClient::Impl {
  ClientOptions opt;
  std::string model;
  std::string host, prefix;
  std::unique_ptr<httplib::Client> http;
};

OpenAIClient::OpenAIClient(ClientOptions options, std::string model) : impl_(std::make_unique<Impl>()) {
  impl_->opt = std::move(options);
  impl_->model = std::move(model);
  std::tie(impl_->host, impl_->prefix) = split_base_url(impl_->opt.base_url);
  impl_->http = std::make_unique<httplib::Client>(impl_->host);
  const auto secs = static_cast<time_t>(impl_->opt.timeout_s);
  impl_->http->set_read_timeout(secs, 0);
  impl_->http->set_write_timeout(60, 0);
  impl_->http->set_connection_timeout(10, 0);
  impl_->http->set_keep_alive(true);
  if (!impl_->opt.api_key.empty()) impl_->http->set_bearer_token_auth(impl_->opt.api_key);
}

OpenAIClient::~OpenAIClient() = default;

std::string OpenAIClient::url_of(const std::string& endpoint) const { return impl_->host + impl_->prefix + endpoint; }

namespace {

std::string error_message(const std::string& body) {
  try {
    const auto j = nlohmann::json::parse(body);
    if (j.contains("error")) {
      const auto& e = j["error"];
      if (e.is_object() && e.contains("message") && e["message"].is_string()) return e["message"].get<std::string>();
      if (e.is_string()) return e.get<std::string>();
    }
    if (j.contains("message") && j["message"].is_string()) return j["message"].get<std::string>();
    if (j.contains("detail")) return j["detail"].dump();
  } catch (const nlohmann::json::exception&) {
  }
  return body.substr(0, 300);
}

bool retryable(int status) { return status == 408 || status == 409 || status == 429 || status >= 500; }

}  // namespace

GenerationResult OpenAIClient::generate(const GenerationRequest& req) {
  nlohmann::json body = {{"model", impl_->model}, {"max_tokens", req.max_tokens}, {"temperature", req.temperature}};
  if (req.temperature == 0.0) body["top_p"] = 1.0;
  if (!req.stop.empty()) body["stop"] = req.stop;
  std::string endpoint;
  if (req.chat) {
    endpoint = "/chat/completions";
    body["messages"] = nlohmann::json::array({{{"role", "user"}, {"content", req.text}}});
  } else {
    endpoint = "/completions";
    body["prompt"] = req.text;
  }
  const std::string path = impl_->prefix + endpoint;
  const std::string payload = body.dump();
  double backoff = impl_->opt.initial_backoff_s;
  std::string last_error;
  for (int attempt = 0; attempt <= impl_->opt.max_retries; ++attempt) {
    if (attempt > 0) {
      std::this_thread::sleep_for(std::chrono::duration<double>(backoff));
      backoff = std::min(backoff * 2, 30.0);
    }
    auto res = impl_->http->Post(path, payload, "application/json");
    if (!res) {
      last_error = "connection failed (" + httplib::to_string(res.error()) + ")";
      continue;
    }
    if (res->status == 200) {
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(res->body);
      } catch (const nlohmann::json::exception& e) {
        throw IoError("POST " + url_of(endpoint) + ": response is not JSON (" + e.what() + ")");
      }
      const auto& choices = j.value("choices", nlohmann::json::array());
      if (!choices.is_array() || choices.empty())
        throw IoError("POST " + url_of(endpoint) + ": response has no choices: " + res->body.substr(0, 300));
      const auto& c0 = choices[0];
      GenerationResult out;
      if (req.chat) {
        const auto msg = c0.value("message", nlohmann::json::object());
        if (msg.contains("content") && msg["content"].is_string()) out.text = msg["content"].get<std::string>();
      } else if (c0.contains("text") && c0["text"].is_string()) {
        out.text = c0["text"].get<std::string>();
      }
      if (c0.contains("finish_reason") && c0["finish_reason"].is_string()) out.finish_reason = c0["finish_reason"].get<std::string>();
      return out;
    }
    last_error = "HTTP " + std::to_string(res->status) + ": " + error_message(res->body);
    if (res->status == 400 && (last_error.find("context length") != std::string::npos ||
                               last_error.find("context_length") != std::string::npos))
      throw ContextLengthError("POST " + url_of(endpoint) + ": " + last_error);
    if (!retryable(res->status))
      throw InvalidArgument("POST " + url_of(endpoint) + " (model '" + impl_->model + "'): " + last_error);
    if (res->has_header("Retry-After")) {
      try {
        backoff = std::clamp(std::stod(res->get_header_value("Retry-After")), 0.0, 60.0);
      } catch (const std::exception&) {
      }
    }
  }
  throw IoError("POST " + url_of(endpoint) + ": giving up after " + std::to_string(impl_->opt.max_retries + 1) +
                " attempts; last error: " + last_error);
}

}  // namespace quench::eval
