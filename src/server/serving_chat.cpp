// quench/server/serving_chat.cpp: chat completions.
#include "server/serving_chat.h"

#include <memory>

#include "server/api_error.h"
#include "server/generation_job.h"
#include "server/http_util.h"
#include "server/protocol.h"
#include "server/reasoning_parser.h"
#include "server/request_log.h"
#include "server/response_json.h"
#include "server/sampling_defaults.h"
#include "server/sse.h"
#include "server/stream_session.h"
#include "server/text_io.h"

namespace quench::server {
namespace {

struct ChatSetup {
  ChatCompletionRequest req;
  std::vector<int32_t> prompt_ids;
  bool parse_reasoning = false;
};

ChatSetup prepare(ServingContext& ctx, const nlohmann::json& body) {
  Engine& engine = ctx.engine();
  const Tokenizer& tok = engine.tokenizer();
  ChatSetup s;
  s.req = parse_chat_request(body, server_sampling_defaults(engine.generation_config()), vocab_size(tok));
  ctx.check_model(s.req.model);
  s.prompt_ids = chat_prompt_ids(tok, s.req);
  resolve_max_tokens(s.req, static_cast<int>(s.prompt_ids.size()), engine.max_model_len(), /*default=*/0,
                     /*gen_cap=*/0, "messages");
  if (s.req.enable_thinking) {
    // The thought channel's markers are special tokens: keep them in the text so the parser sees them.
    s.parse_reasoning = true;
    s.req.params.skip_special_tokens = false;
  }
  return s;
}

nlohmann::json logprobs_or_null(const Tokenizer& tok, const ChatCompletionRequest& req,
                                const std::vector<TokenLogprob>& lps) {
  if (!req.logprobs) return nullptr;
  return {{"content", chat_logprobs_content(tok, lps, req.top_logprobs)}};
}

class ChatStream : public StreamSession {
 public:
  ChatStream(ServingContext& ctx, std::unique_ptr<GenerationJob> job, RequestLogEntry log,
             std::chrono::steady_clock::time_point t0, ChatSetup setup, std::string id)
      : StreamSession(ctx, std::move(job), std::move(log), t0),
        s_(std::move(setup)),
        id_(std::move(id)),
        created_(unix_now()),
        parsers_(StreamSession::job().num_choices()) {}

 protected:
  nlohmann::json chunk(nlohmann::json choice) {
    nlohmann::json c = {{"id", id_}, {"object", "chat.completion.chunk"}, {"created", created_},
                        {"model", ctx_.served_name()}, {"choices", nlohmann::json::array({std::move(choice)})}};
    if (s_.req.continuous_usage_stats)
      c["usage"] = usage_json(job().prompt_tokens(), job().completion_tokens(), job().cached_tokens());
    return c;
  }

  std::string opening() override {
    std::string out;
    for (int i = 0; i < job().num_choices(); ++i)
      out += sse_event(chunk({{"index", i}, {"delta", {{"role", "assistant"}, {"content", ""}}},
                              {"logprobs", nullptr}, {"finish_reason", nullptr}}));
    return out;
  }

  std::string on_deltas(const std::vector<ChoiceDelta>& deltas) override {
    const Tokenizer& tok = ctx_.engine().tokenizer();
    std::string out;
    for (const auto& d : deltas) {
      const SeqOutput& seq = *d.seq;
      nlohmann::json delta = nlohmann::json::object();
      if (s_.parse_reasoning) {
        auto part = parsers_[d.choice].feed(seq.new_text);
        if (seq.finish_reason) {
          auto tail = parsers_[d.choice].finish();
          part.reasoning += tail.reasoning;
          part.content += tail.content;
        }
        if (!part.reasoning.empty() && s_.req.include_reasoning) {
          delta["reasoning_content"] = part.reasoning;
          delta["reasoning"] = part.reasoning;
        }
        if (!part.content.empty() || seq.finish_reason) delta["content"] = part.content;
      } else if (!seq.new_text.empty() || seq.finish_reason) {
        delta["content"] = seq.new_text;
      }
      bool has_lps = s_.req.logprobs && !seq.new_logprobs.empty();
      if (delta.empty() && !has_lps) continue;  // nothing to say yet (held-back text)
      nlohmann::json choice = {{"index", d.choice}, {"delta", delta},
                               {"logprobs", has_lps ? logprobs_or_null(tok, s_.req, seq.new_logprobs) : nlohmann::json(nullptr)},
                               {"finish_reason", finish_reason_json(seq.finish_reason)}};
      if (seq.finish_reason) choice["stop_reason"] = stop_reason_json(seq.stop_reason, s_.req.params);
      out += sse_event(chunk(std::move(choice)));
    }
    return out;
  }

  std::string closing() override {
    if (!s_.req.include_usage) return "";
    nlohmann::json c = {{"id", id_}, {"object", "chat.completion.chunk"}, {"created", created_},
                        {"model", ctx_.served_name()}, {"choices", nlohmann::json::array()},
                        {"usage", usage_json(job().prompt_tokens(), job().completion_tokens(), job().cached_tokens())}};
    return sse_event(c);
  }

 private:
  ChatSetup s_;
  std::string id_;
  int64_t created_;
  std::vector<ReasoningParser> parsers_;
};

nlohmann::json full_response(ServingContext& ctx, const ChatSetup& s, const GenerationJob& job, const std::string& id) {
  const Tokenizer& tok = ctx.engine().tokenizer();
  nlohmann::json choices = nlohmann::json::array();
  for (int i = 0; i < job.num_choices(); ++i) {
    const ChoiceState& c = job.choice(i);
    nlohmann::json msg = {{"role", "assistant"}, {"content", c.text}, {"refusal", nullptr},
                          {"annotations", nullptr}, {"audio", nullptr}, {"function_call", nullptr},
                          {"tool_calls", nlohmann::json::array()}, {"reasoning_content", nullptr},
                          {"reasoning", nullptr}};
    if (s.parse_reasoning) {
      ReasoningParser p;
      auto a = p.feed(c.text);
      auto b = p.finish();
      msg["content"] = a.content + b.content;
      std::string reasoning = a.reasoning + b.reasoning;
      if (s.req.include_reasoning && !reasoning.empty()) {
        msg["reasoning_content"] = reasoning;
        msg["reasoning"] = reasoning;
      }
    }
    choices.push_back({{"index", i}, {"message", msg}, {"logprobs", logprobs_or_null(tok, s.req, c.logprobs)},
                       {"finish_reason", finish_reason_json(c.finish_reason)},
                       {"stop_reason", stop_reason_json(c.stop_reason, s.req.params)}});
  }
  return {{"id", id}, {"object", "chat.completion"}, {"created", unix_now()}, {"model", ctx.served_name()},
          {"choices", choices}, {"service_tier", nullptr}, {"system_fingerprint", nullptr},
          {"usage", usage_json(job.prompt_tokens(), job.completion_tokens(), job.cached_tokens())},
          {"prompt_logprobs", nullptr}, {"kv_transfer_params", nullptr}};
}

}  // namespace

void serve_chat_completion(ServingContext& ctx, const httplib::Request& req, httplib::Response& res) {
  auto t0 = std::chrono::steady_clock::now();
  RequestLogEntry log;
  log.route = req.path;
  // X-Request-Id, when sent, becomes the id stem (vLLM); a duplicate of a running id is a 400.
  std::string stem = req.get_header_value("X-Request-Id");
  std::string id = stem.empty() || stem.size() > 128 ? ctx.new_request_id("chatcmpl") : "chatcmpl-" + stem;
  log.request_id = id;
  try {
    if (ctx.draining()) throw ApiError(503, "ServiceUnavailableError", "the server is shutting down");
    nlohmann::json body = parse_json_body(req);
    ChatSetup setup = prepare(ctx, body);
    if (ctx.config().log_prompts) log.prompt = decode_ids(ctx.engine().tokenizer(), setup.prompt_ids, false);
    auto job = std::make_unique<GenerationJob>(ctx.engine(), id, std::vector<std::vector<int32_t>>{setup.prompt_ids},
                                               setup.req.params);
    ctx.count_request(200);
    if (setup.req.stream) {
      StreamSession::attach(std::make_shared<ChatStream>(ctx, std::move(job), log, t0, std::move(setup), id), res);
      return;
    }
    ++ctx.in_flight();
    struct Guard { std::atomic<int>& n; ~Guard() { --n; } } guard{ctx.in_flight()};
    job->wait_all();
    reply_json(res, 200, full_response(ctx, setup, *job, id));
    fill_from_job(log, *job);
  } catch (const ApiError& e) {
    ctx.count_request(e.status());
    reply_error(res, e);
    log.finish = e.what();
  }
  log.status = res.status;
  log.latency_ms = ms_since(t0);
  log_request(log);
}

}  // namespace quench::server
