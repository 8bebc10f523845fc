// quench/server/serving_completion.cpp: text completions.
#include "server/serving_completion.h"

#include <memory>

#include "server/api_error.h"
#include "server/generation_job.h"
#include "server/http_util.h"
#include "server/protocol.h"
#include "server/request_log.h"
#include "server/response_json.h"
#include "server/sampling_defaults.h"
#include "server/sse.h"
#include "server/stream_session.h"
#include "server/text_io.h"

namespace quench::server {
namespace {

struct CompletionSetup {
  CompletionRequest req;
  std::vector<std::vector<int32_t>> prompt_ids;
  std::vector<std::string> prompt_texts;  ///< for echo
};

CompletionSetup prepare(ServingContext& ctx, const nlohmann::json& body) {
  Engine& engine = ctx.engine();
  const Tokenizer& tok = engine.tokenizer();
  CompletionSetup s;
  s.req = parse_completion_request(body, server_sampling_defaults(engine.generation_config()), vocab_size(tok));
  ctx.check_model(s.req.model);
  int longest = 0;
  for (const auto& p : s.req.prompts) {
    if (const auto* text = std::get_if<std::string>(&p)) {
      s.prompt_ids.push_back(text_prompt_ids(tok, *text, s.req.add_special_tokens));
      s.prompt_texts.push_back(*text);
    } else {
      const auto& ids = std::get<std::vector<int32_t>>(p);
      s.prompt_ids.push_back(ids);
      s.prompt_texts.push_back(s.req.echo ? decode_ids(tok, ids, true) : std::string());
    }
    if (s.prompt_ids.back().empty()) throw bad_request("'prompt' encodes to no tokens", "prompt");
    longest = std::max(longest, static_cast<int>(s.prompt_ids.back().size()));
  }
  // One SamplingParams serves every prompt: the budget is checked against the longest one.
  resolve_max_tokens(s.req, longest, engine.max_model_len(), /*default=*/16, /*gen_cap=*/0, "prompt");
  return s;
}

nlohmann::json choice_json(int index, const std::string& text, nlohmann::json logprobs,
                           const std::optional<FinishReason>& fr, const nlohmann::json& stop_reason) {
  return {{"index", index}, {"text", text}, {"logprobs", std::move(logprobs)}, {"finish_reason", finish_reason_json(fr)},
          {"stop_reason", stop_reason}};
}

class CompletionStream : public StreamSession {
 public:
  CompletionStream(ServingContext& ctx, std::unique_ptr<GenerationJob> job, RequestLogEntry log,
                   std::chrono::steady_clock::time_point t0, CompletionSetup setup, std::string id)
      : StreamSession(ctx, std::move(job), std::move(log), t0),
        s_(std::move(setup)),
        id_(std::move(id)),
        created_(unix_now()),
        offsets_(StreamSession::job().num_choices(), 0) {}

 protected:
  nlohmann::json chunk(nlohmann::json choice) {
    nlohmann::json c = {{"id", id_}, {"object", "text_completion"}, {"created", created_},
                        {"model", ctx_.served_name()}, {"choices", nlohmann::json::array({std::move(choice)})},
                        {"usage", nullptr}};
    if (s_.req.continuous_usage_stats)
      c["usage"] = usage_json(job().prompt_tokens(), job().completion_tokens(), job().cached_tokens());
    return c;
  }

  std::string opening() override {
    if (!s_.req.echo) return "";
    std::string out;
    for (int i = 0; i < job().num_choices(); ++i) {
      const std::string& text = s_.prompt_texts[i / job().n()];
      offsets_[i] = text.size();
      out += sse_event(chunk(choice_json(i, text, nullptr, std::nullopt, nullptr)));
    }
    return out;
  }

  std::string on_deltas(const std::vector<ChoiceDelta>& deltas) override {
    const Tokenizer& tok = ctx_.engine().tokenizer();
    std::string out;
    for (const auto& d : deltas) {
      const SeqOutput& seq = *d.seq;
      if (seq.new_text.empty() && !seq.finish_reason && seq.new_logprobs.empty()) continue;
      nlohmann::json lps = nullptr;
      if (s_.req.logprobs && !seq.new_logprobs.empty())
        lps = completion_logprobs(tok, seq.new_logprobs, *s_.req.logprobs, offsets_[d.choice]);
      offsets_[d.choice] += seq.new_text.size();
      out += sse_event(chunk(choice_json(d.choice, seq.new_text, std::move(lps), seq.finish_reason,
                                         seq.finish_reason ? stop_reason_json(seq.stop_reason, s_.req.params)
                                                           : nlohmann::json(nullptr))));
    }
    return out;
  }

  std::string closing() override {
    if (!s_.req.include_usage) return "";
    return sse_event({{"id", id_}, {"object", "text_completion"}, {"created", created_}, {"model", ctx_.served_name()},
                      {"choices", nlohmann::json::array()},
                      {"usage", usage_json(job().prompt_tokens(), job().completion_tokens(), job().cached_tokens())}});
  }

 private:
  CompletionSetup s_;
  std::string id_;
  int64_t created_;
  std::vector<size_t> offsets_;
};

nlohmann::json full_response(ServingContext& ctx, const CompletionSetup& s, const GenerationJob& job,
                             const std::string& id) {
  const Tokenizer& tok = ctx.engine().tokenizer();
  nlohmann::json choices = nlohmann::json::array();
  for (int i = 0; i < job.num_choices(); ++i) {
    const ChoiceState& c = job.choice(i);
    std::string prefix = s.req.echo ? s.prompt_texts[i / job.n()] : std::string();
    nlohmann::json lps = nullptr;
    if (s.req.logprobs) lps = completion_logprobs(tok, c.logprobs, *s.req.logprobs, prefix.size());
    choices.push_back(choice_json(i, prefix + c.text, std::move(lps), c.finish_reason,
                                  stop_reason_json(c.stop_reason, s.req.params)));
  }
  return {{"id", id}, {"object", "text_completion"}, {"created", unix_now()}, {"model", ctx.served_name()},
          {"choices", choices}, {"system_fingerprint", nullptr},
          {"usage", usage_json(job.prompt_tokens(), job.completion_tokens(), job.cached_tokens())},
          {"kv_transfer_params", nullptr}};
}

}  // namespace

void serve_completion(ServingContext& ctx, const httplib::Request& req, httplib::Response& res) {
  auto t0 = std::chrono::steady_clock::now();
  RequestLogEntry log;
  log.route = req.path;
  // X-Request-Id, when sent, becomes the id stem (vLLM); a duplicate of a running id is a 400.
  std::string stem = req.get_header_value("X-Request-Id");
  std::string id = stem.empty() || stem.size() > 128 ? ctx.new_request_id("cmpl") : "cmpl-" + stem;
  log.request_id = id;
  try {
    if (ctx.draining()) throw ApiError(503, "ServiceUnavailableError", "the server is shutting down");
    nlohmann::json body = parse_json_body(req);
    CompletionSetup setup = prepare(ctx, body);
    if (ctx.config().log_prompts) {
      std::string all;
      for (const auto& p : setup.prompt_ids) all += decode_ids(ctx.engine().tokenizer(), p, false);
      log.prompt = all;
    }
    auto job = std::make_unique<GenerationJob>(ctx.engine(), id, setup.prompt_ids, setup.req.params);
    ctx.count_request(200);
    if (setup.req.stream) {
      StreamSession::attach(std::make_shared<CompletionStream>(ctx, std::move(job), log, t0, std::move(setup), id),
                            res);
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
