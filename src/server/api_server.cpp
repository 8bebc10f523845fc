// quench/server/api_server.cpp: routes, auth, limits.
#include "server/api_server.h"

#include <csignal>
#include <cstring>

#include <sys/socket.h>

#include <fmt/format.h>
#include <httplib.h>
#include "core/log.h"

#include "core/error.h"
#include "io/model_config.h"
#include "server/api_error.h"
#include "server/http_util.h"
#include "server/json_fields.h"
#include "server/metrics_text.h"
#include "server/protocol.h"
#include "server/serving_chat.h"
#include "server/serving_completion.h"
#include "server/serving_context.h"
#include "server/text_io.h"
#include "tokenizer/tokenizer.h"

namespace quench::server {

struct ApiServer::Impl {
  Impl(Engine& e, ServerConfig c) : ctx(e, std::move(c)) {}
  ServingContext ctx;
  httplib::Server http;
  int listen_fd = -1;  ///< the listening socket, seen through set_socket_options
};

/// Accept-queue length. cpp-httplib 0.11 listens with a backlog of 5, which drops connections when
/// dozens of clients connect at once; the socket is re-listened with this backlog after bind.
constexpr int kListenBacklog = 1024;

namespace {

/// Constant-time string comparison (keys must not leak through timing).
bool equal_ct(const std::string& a, const std::string& b) {
  unsigned char diff = static_cast<unsigned char>(a.size() != b.size());
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

bool authorized(const ServerConfig& cfg, const httplib::Request& req) {
  if (cfg.api_keys.empty()) return true;
  std::string h = req.get_header_value("Authorization");
  if (h.size() < 7) return false;
  std::string scheme = h.substr(0, 7);
  for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "bearer ") return false;
  std::string key = h.substr(7);
  bool ok = false;
  for (const auto& k : cfg.api_keys) ok |= equal_ct(k, key);
  return ok;
}

nlohmann::json models_body(ServingContext& ctx) {
  nlohmann::json data = nlohmann::json::array();
  int64_t now = unix_now();
  for (const auto& name : ctx.config().served_model_names) {
    data.push_back({{"id", name}, {"object", "model"}, {"created", now}, {"owned_by", "quench"},
                    {"root", ctx.config().model_root}, {"parent", nullptr},
                    {"max_model_len", ctx.engine().max_model_len()},
                    {"permission", nlohmann::json::array({{{"id", "modelperm-" + name}, {"object", "model_permission"},
                                                           {"created", now}, {"allow_create_engine", false},
                                                           {"allow_sampling", true}, {"allow_logprobs", true},
                                                           {"allow_search_indices", false}, {"allow_view", true},
                                                           {"allow_fine_tuning", false}, {"organization", "*"},
                                                           {"group", nullptr}, {"is_blocking", false}}})}});
  }
  return {{"object", "list"}, {"data", data}};
}

void handle_tokenize(ServingContext& ctx, const httplib::Request& req, httplib::Response& res) {
  nlohmann::json body = parse_json_body(req);
  JsonFields f(body, "", "request body");
  ctx.check_model(f.opt_string("model"));
  const Tokenizer& tok = ctx.engine().tokenizer();
  std::vector<int32_t> ids;
  if (f.has("messages")) {
    // Chat form: the same rendering as /v1/chat/completions.
    ChatCompletionRequest chat = parse_chat_request(body, SamplingParams{}, vocab_size(tok));
    ids = chat_prompt_ids(tok, chat);
  } else {
    auto prompt = f.opt_string("prompt");
    if (!prompt) throw bad_request("'prompt' (a string) or 'messages' is required", "prompt");
    ids = text_prompt_ids(tok, *prompt, f.opt_bool("add_special_tokens").value_or(true));
  }
  nlohmann::json out = {{"count", ids.size()}, {"max_model_len", ctx.engine().max_model_len()}, {"tokens", ids},
                        {"token_strs", nullptr}};
  if (f.opt_bool("return_token_strs").value_or(false)) {
    nlohmann::json strs = nlohmann::json::array();
    for (int32_t id : ids) strs.push_back(std::string(tok.id_to_token(id)));
    out["token_strs"] = strs;
  }
  reply_json(res, 200, out);
}

void handle_detokenize(ServingContext& ctx, const httplib::Request& req, httplib::Response& res) {
  nlohmann::json body = parse_json_body(req);
  JsonFields f(body, "", "request body");
  ctx.check_model(f.opt_string("model"));
  const auto* tokens = f.get("tokens");
  if (!tokens) throw bad_request("'tokens' is required", "tokens");
  if (!tokens->is_array()) throw bad_request("'tokens' must be an array of integers", "tokens");
  const Tokenizer& tok = ctx.engine().tokenizer();
  std::vector<int32_t> ids;
  for (size_t i = 0; i < tokens->size(); ++i) {
    const auto& v = (*tokens)[i];
    if (!v.is_number_integer() && !v.is_number_unsigned())
      throw bad_request(fmt::format("'tokens[{}]' must be an integer, got {}", i, json_type_name(v)), "tokens");
    int64_t id = v.get<int64_t>();
    if (id < 0 || id >= vocab_size(tok))
      throw bad_request(fmt::format("'tokens[{}]' = {} is outside the vocabulary [0, {})", i, id, vocab_size(tok)),
                        "tokens");
    ids.push_back(static_cast<int32_t>(id));
  }
  reply_json(res, 200, {{"prompt", decode_ids(tok, ids, false)}});
}

/// Wraps a handler: ApiError -> its envelope; anything else -> 500.
template <typename F>
httplib::Server::Handler guarded(ServingContext& ctx, F f) {
  return [&ctx, f](const httplib::Request& req, httplib::Response& res) {
    try {
      f(ctx, req, res);
    } catch (const ApiError& e) {
      reply_error(res, e);
    } catch (const std::exception& e) {
      quench::log().error("{} {}: internal error: {}", req.method, req.path, e.what());
      reply_json(res, 500, error_body(500, "InternalServerError", e.what()));
    }
  };
}

}  // namespace

ApiServer::ApiServer(Engine& engine, ServerConfig cfg) : impl_(std::make_unique<Impl>(engine, std::move(cfg))) {
  // A write to a socket the client closed must fail with EPIPE, not kill the process.
  std::signal(SIGPIPE, SIG_IGN);
  ServingContext& ctx = impl_->ctx;
  httplib::Server& http = impl_->http;
  const ServerConfig& c = ctx.config();
  int threads = std::max(1, c.http_threads);
  http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  http.set_payload_max_length(c.max_body_bytes);
  http.set_keep_alive_timeout(c.keep_alive_timeout_s);
  http.set_read_timeout(30, 0);
  http.set_socket_options([impl = impl_.get()](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    impl->listen_fd = sock;
  });
  http.set_write_timeout(30, 0);

  http.set_pre_routing_handler([&ctx](const httplib::Request& req, httplib::Response& res) {
    if (req.path.rfind("/v1", 0) == 0 && req.method != "OPTIONS" && !authorized(ctx.config(), req)) {
      res.status = 401;
      res.set_content(R"({"error":"Unauthorized"})", "application/json");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string msg = res.status == 404   ? fmt::format("Not Found: no route {} {}", req.method, req.path)
                      : res.status == 413 ? "request body too large"
                                          : fmt::format("HTTP status {}", res.status);
    const char* type = res.status == 404 ? "NotFoundError" : res.status == 413 ? "Payload Too Large" : "Bad Request";
    res.set_content(error_body(res.status, type, msg).dump(), "application/json");
    return httplib::Server::HandlerResponse::Handled;
  }));

  http.Post("/v1/chat/completions", guarded(ctx, serve_chat_completion));
  http.Post("/v1/completions", guarded(ctx, serve_completion));
  http.Get("/v1/models", guarded(ctx, [](ServingContext& c, const httplib::Request&, httplib::Response& res) {
             reply_json(res, 200, models_body(c));
           }));
  // 200 while the engine loop runs; 503 once it stopped (vLLM PR #24897).
  auto health = [](ServingContext& c, const httplib::Request&, httplib::Response& res) {
    res.status = c.engine().is_running() ? 200 : 503;
    res.set_content("", "text/plain");
  };
  http.Get("/health", guarded(ctx, health));
  http.Get("/ping", guarded(ctx, health));
  http.Post("/ping", guarded(ctx, health));
  http.Get("/version", guarded(ctx, [](ServingContext&, const httplib::Request&, httplib::Response& res) {
             reply_json(res, 200, {{"version", "quench 0.1.0"}});
           }));
  http.Get("/metrics", guarded(ctx, [](ServingContext& c, const httplib::Request&, httplib::Response& res) {
             res.set_content(render_prometheus(c.engine().metrics(), c.http_metrics(), c.served_name()),
                             "text/plain; version=0.0.4; charset=utf-8");
           }));
  http.Post("/tokenize", guarded(ctx, handle_tokenize));
  http.Post("/detokenize", guarded(ctx, handle_detokenize));
}

ApiServer::~ApiServer() { stop(); }

ServingContext& ApiServer::context() { return impl_->ctx; }

int ApiServer::bind() {
  const auto& c = impl_->ctx.config();
  if (c.port == 0) {
    port_ = impl_->http.bind_to_any_port(c.host);
  } else {
    port_ = impl_->http.bind_to_port(c.host, c.port) ? c.port : -1;
  }
  if (port_ <= 0)
    throw IoError(fmt::format("--host {} --port {}: cannot bind ({})", c.host, c.port, std::strerror(errno)));
  if (impl_->listen_fd >= 0) ::listen(impl_->listen_fd, kListenBacklog);  // Linux: updates the backlog
  return port_;
}

void ApiServer::listen() { impl_->http.listen_after_bind(); }

int ApiServer::start_background() {
  int p = bind();
  thread_ = std::thread([this] { listen(); });
  // cpp-httplib 0.11 has no wait_until_ready(): poll is_running() (set once listening).
  for (int i = 0; i < 5000 && !impl_->http.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return p;
}

int ApiServer::drain(double grace_s) {
  impl_->ctx.set_draining();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(grace_s);
  while (impl_->ctx.in_flight().load() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return impl_->ctx.in_flight().load();
}

void ApiServer::stop() {
  if (impl_->http.is_running()) impl_->http.stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace quench::server
