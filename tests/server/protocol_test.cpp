// tests/server/protocol_test.cpp: request validation, error envelope, reasoning split, SSE and metrics text.
// Expected values are the rules of ../shared/reference/openai-api.md (vLLM/OpenAI), written out here.
#include <gtest/gtest.h>

#include "server/api_error.h"
#include "server/metrics_text.h"
#include "server/protocol.h"
#include "server/reasoning_parser.h"
#include "server/request_log.h"
#include "server/sse.h"

namespace quench::server {
namespace {

using nlohmann::json;
constexpr int kVocab = 1000;

/// Parses a chat body expecting a 400 and returns the error's param.
std::string chat_error_param(const json& body, int status = 400) {
  try {
    parse_chat_request(body, SamplingParams{}, kVocab);
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), status) << e.what();
    return e.param().value_or("<none>");
  }
  ADD_FAILURE() << "accepted: " << body.dump();
  return "";
}

json chat(json extra = json::object()) {
  json b = {{"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  for (auto& [k, v] : extra.items()) b[k] = v;
  return b;
}

TEST(Protocol, ChatDefaultsAndOverrides) {
  SamplingParams defaults;
  defaults.temperature = 0.7f;
  defaults.top_k = 64;
  auto r = parse_chat_request(chat(), defaults, kVocab);
  EXPECT_FLOAT_EQ(r.params.temperature, 0.7f);
  EXPECT_EQ(r.params.top_k, 64);
  EXPECT_FALSE(r.stream);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].role, "user");
  r = parse_chat_request(chat({{"temperature", 0}, {"top_k", -1}, {"seed", 7}, {"n", 3}, {"stop", "END"},
                               {"max_tokens", 5}, {"logit_bias", {{"17", 150.0}}}, {"unknown_field", {1, 2}}}),
                         defaults, kVocab);
  EXPECT_EQ(r.params.temperature, 0.0f);
  EXPECT_EQ(r.params.top_k, -1);
  EXPECT_EQ(r.params.seed, 7u);
  EXPECT_EQ(r.params.n, 3);
  EXPECT_EQ(r.params.stop, std::vector<std::string>{"END"});
  EXPECT_EQ(r.max_tokens, 5);
  EXPECT_FLOAT_EQ(r.params.logit_bias.at(17), 100.0f);  // clamped to [-100, 100]
}

TEST(Protocol, ContentPartsJoinedAndDeveloperIsSystem) {
  auto r = parse_chat_request(
      json{{"messages",
            {{{"role", "developer"}, {"content", "be brief"}},
             {{"role", "user"}, {"content", {{{"type", "text"}, {"text", "a"}}, {{"type", "text"}, {"text", "b"}}}}}}}},
      SamplingParams{}, kVocab);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[1].content, "a\nb");
}

TEST(Protocol, ChatRejections) {
  EXPECT_EQ(chat_error_param(json::array()), "<none>");  // body not an object
  EXPECT_EQ(chat_error_param(json{{"model", "x"}}), "messages");
  EXPECT_EQ(chat_error_param(json{{"messages", json::array()}}), "messages");
  EXPECT_EQ(chat_error_param(json{{"messages", "hi"}}), "messages");
  EXPECT_EQ(chat_error_param(json{{"messages", {{{"role", "user"}}}}}), "messages[0].content");
  EXPECT_EQ(chat_error_param(json{{"messages", {{{"role", "wizard"}, {"content", "x"}}}}}), "messages[0].role");
  EXPECT_EQ(chat_error_param(json{{"messages", {{{"content", "x"}}}}}), "messages[0].role");
  EXPECT_EQ(chat_error_param(json{{"messages", {{{"role", "user"}, {"content", 5}}}}}), "messages[0].content");
  EXPECT_EQ(chat_error_param(chat({{"temperature", "hot"}})), "temperature");
  EXPECT_EQ(chat_error_param(chat({{"temperature", -0.1}})), "temperature");
  EXPECT_EQ(chat_error_param(chat({{"temperature", 2.5}})), "temperature");
  EXPECT_EQ(chat_error_param(chat({{"top_p", 0}})), "top_p");
  EXPECT_EQ(chat_error_param(chat({{"top_p", 1.5}})), "top_p");
  EXPECT_EQ(chat_error_param(chat({{"n", 0}})), "n");
  EXPECT_EQ(chat_error_param(chat({{"n", 1.5}})), "n");
  EXPECT_EQ(chat_error_param(chat({{"max_tokens", 0}})), "max_tokens");
  EXPECT_EQ(chat_error_param(chat({{"max_completion_tokens", -3}})), "max_completion_tokens");
  EXPECT_EQ(chat_error_param(chat({{"top_k", -2}})), "top_k");
  EXPECT_EQ(chat_error_param(chat({{"min_p", 1.5}})), "min_p");
  EXPECT_EQ(chat_error_param(chat({{"presence_penalty", 3}})), "presence_penalty");
  EXPECT_EQ(chat_error_param(chat({{"frequency_penalty", -2.5}})), "frequency_penalty");
  EXPECT_EQ(chat_error_param(chat({{"repetition_penalty", 0}})), "repetition_penalty");
  EXPECT_EQ(chat_error_param(chat({{"stop", {"ok", ""}}})), "stop");
  EXPECT_EQ(chat_error_param(chat({{"stop", 3}})), "stop");
  EXPECT_EQ(chat_error_param(chat({{"logit_bias", {{"abc", 1}}}})), "logit_bias");
  EXPECT_EQ(chat_error_param(chat({{"logit_bias", {{"5000", 1}}}})), "logit_bias");
  EXPECT_EQ(chat_error_param(chat({{"top_logprobs", 3}})), "top_logprobs");
  EXPECT_EQ(chat_error_param(chat({{"logprobs", true}, {"top_logprobs", 21}})), "top_logprobs");
  EXPECT_EQ(chat_error_param(chat({{"stream_options", {{"include_usage", true}}}})), "stream_options");
  EXPECT_EQ(chat_error_param(chat({{"stream", "yes"}})), "stream");
  EXPECT_EQ(chat_error_param(chat({{"stop_token_ids", {1, 99999}}})), "stop_token_ids");
  EXPECT_EQ(chat_error_param(chat({{"add_generation_prompt", true}, {"continue_final_message", true}})),
            "continue_final_message");
  EXPECT_EQ(chat_error_param(chat({{"tools", json::array({json::object()})}}), 501), "tools");
  // Structured output is refused (501) rather than silently ignored; "text" is the default.
  EXPECT_EQ(chat_error_param(chat({{"response_format", {{"type", "json_object"}}}}), 501), "response_format");
  EXPECT_EQ(chat_error_param(chat({{"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "x"}}}}}}), 501),
            "response_format");
  EXPECT_EQ(chat_error_param(chat({{"response_format", {{"type", "yaml"}}}})), "response_format");
  EXPECT_EQ(chat_error_param(chat({{"response_format", "json"}})), "response_format");
  EXPECT_EQ(chat_error_param(chat({{"guided_json", {{"type", "object"}}}}), 501), "guided_json");
  EXPECT_EQ(chat_error_param(chat({{"structured_outputs", {{"regex", "a+"}}}}), 501), "structured_outputs");
  EXPECT_NO_THROW(parse_chat_request(chat({{"response_format", {{"type", "text"}}}}), SamplingParams{}, kVocab));
}

TEST(Protocol, StreamOptionsIncludeUsageDefaultsTrue) {
  auto r = parse_chat_request(chat({{"stream", true}, {"stream_options", json::object()}}), SamplingParams{}, kVocab);
  EXPECT_TRUE(r.include_usage);
  r = parse_chat_request(chat({{"stream", true}}), SamplingParams{}, kVocab);
  EXPECT_FALSE(r.include_usage);
}

TEST(Protocol, LogprobsAndThinking) {
  auto r = parse_chat_request(chat({{"logprobs", true}, {"top_logprobs", 4},
                                    {"chat_template_kwargs", {{"enable_thinking", true}}}}),
                              SamplingParams{}, kVocab);
  EXPECT_EQ(r.params.logprobs, 4);
  EXPECT_TRUE(r.enable_thinking);
  r = parse_chat_request(chat(), SamplingParams{}, kVocab);
  EXPECT_FALSE(r.params.logprobs.has_value());
}

TEST(Protocol, CompletionPrompts) {
  auto r = parse_completion_request(json{{"prompt", "abc"}}, SamplingParams{}, kVocab);
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_EQ(std::get<std::string>(r.prompts[0]), "abc");
  r = parse_completion_request(json{{"prompt", {1, 2, 3}}}, SamplingParams{}, kVocab);
  EXPECT_EQ(std::get<std::vector<int32_t>>(r.prompts[0]), (std::vector<int32_t>{1, 2, 3}));
  r = parse_completion_request(json{{"prompt", {"a", "b"}}, {"logprobs", 2}}, SamplingParams{}, kVocab);
  EXPECT_EQ(r.prompts.size(), 2u);
  EXPECT_EQ(r.params.logprobs, 2);
  for (const json& bad : {json{{"max_tokens", 3}}, json{{"prompt", 5}}, json{{"prompt", json::array()}},
                          json{{"prompt", {1, 5000}}}, json{{"prompt", "x"}, {"suffix", "y"}},
                          json{{"prompt", "x"}, {"logprobs", 21}}, json{{"prompt", "x"}, {"best_of", 2}}}) {
    EXPECT_THROW(parse_completion_request(bad, SamplingParams{}, kVocab), ApiError) << bad.dump();
  }
}

TEST(Protocol, MaxTokensResolution) {
  CommonRequest r;
  resolve_max_tokens(r, 10, 100, 0, 0, "messages");
  EXPECT_EQ(r.params.max_tokens, 90);  // chat default: the rest of the context
  resolve_max_tokens(r, 10, 100, 16, 0, "prompt");
  EXPECT_EQ(r.params.max_tokens, 16);  // completions default
  resolve_max_tokens(r, 95, 100, 16, 0, "prompt");
  EXPECT_EQ(r.params.max_tokens, 5);  // clamped to the context
  r.max_tokens = 91;
  try {
    resolve_max_tokens(r, 10, 100, 0, 0, "messages");
    ADD_FAILURE();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_NE(std::string(e.what()).find("maximum context length is 100 tokens"), std::string::npos) << e.what();
  }
  r.max_tokens.reset();
  try {
    resolve_max_tokens(r, 100, 100, 0, 0, "messages");
    ADD_FAILURE();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.param(), "messages");
    EXPECT_NE(std::string(e.what()).find("maximum context length is 100 tokens"), std::string::npos);
  }
}

TEST(ApiErrorTest, EnvelopeShape) {
  json j = bad_request("bad top_p", "top_p").to_json();
  EXPECT_EQ(j, (json{{"error", {{"message", "bad top_p"}, {"type", "BadRequestError"}, {"param", "top_p"}, {"code", 400}}}}));
  EXPECT_EQ(error_body(404, "NotFoundError", "x")["error"]["param"], nullptr);
}

std::pair<std::string, std::string> split_stream(const std::vector<std::string>& pieces) {
  ReasoningParser p;
  std::string r, c;
  for (const auto& s : pieces) {
    auto d = p.feed(s);
    r += d.reasoning;
    c += d.content;
  }
  auto d = p.finish();
  return {r + d.reasoning, c + d.content};
}

TEST(ReasoningParserTest, SplitsThoughtChannelAcrossAnyChunking) {
  const std::string text = "<|channel>thought\nLet me add.<channel|>The answer is 68.";
  auto whole = split_stream({text});
  EXPECT_EQ(whole.first, "Let me add.");
  EXPECT_EQ(whole.second, "The answer is 68.");
  for (size_t cut = 1; cut < text.size(); ++cut) {
    for (size_t cut2 = cut; cut2 < text.size(); cut2 += 7) {
      auto parts = split_stream({text.substr(0, cut), text.substr(cut, cut2 - cut), text.substr(cut2)});
      EXPECT_EQ(parts, whole) << cut << "," << cut2;
    }
  }
  EXPECT_EQ(split_stream({"plain answer"}), (std::pair<std::string, std::string>{"", "plain answer"}));
  EXPECT_EQ(split_stream({"<", "b>"}), (std::pair<std::string, std::string>{"", "<b>"}));
  EXPECT_EQ(split_stream({"<|channel>thought\ncut off"}), (std::pair<std::string, std::string>{"cut off", ""}));
}

TEST(Sse, Framing) {
  EXPECT_EQ(sse_event(json{{"a", 1}}), "data: {\"a\":1}\n\n");
  EXPECT_EQ(sse_done(), "data: [DONE]\n\n");
  EXPECT_EQ(sse_comment().front(), ':');
  // Invalid UTF-8 never reaches a client: it is replaced by U+FFFD.
  EXPECT_EQ(dump_json(json(std::string("a\xE4"))), "\"a\xEF\xBF\xBD\"");
}

TEST(MetricsText, PrometheusSeries) {
  EngineMetrics m;
  m.num_requests_running = 3;
  m.prefix_cache_queries = 200;
  m.prefix_cache_hits = 50;
  m.num_requests_finished_abort = 2;
  m.time_to_first_token.observe(0.003);
  std::string t = render_prometheus(m, HttpMetrics{5, 1}, "my \"model\"");
  EXPECT_NE(t.find("# TYPE vllm:num_requests_running gauge\n"), std::string::npos);
  EXPECT_NE(t.find("vllm:num_requests_running{model_name=\"my \\\"model\\\"\",engine=\"0\"} 3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("quench:prefix_cache_hit_rate{model_name=\"my \\\"model\\\"\",engine=\"0\"} 0.25\n"), std::string::npos);
  EXPECT_NE(t.find("vllm:request_success_total{model_name=\"my \\\"model\\\"\",engine=\"0\",finished_reason=\"abort\"} 2\n"),
            std::string::npos);
  // Cumulative buckets: 0.003 is above 0.001 and within 0.005.
  EXPECT_NE(t.find("vllm:time_to_first_token_seconds_bucket{model_name=\"my \\\"model\\\"\",engine=\"0\",le=\"0.001\"} 0\n"),
            std::string::npos);
  EXPECT_NE(t.find("vllm:time_to_first_token_seconds_bucket{model_name=\"my \\\"model\\\"\",engine=\"0\",le=\"0.005\"} 1\n"),
            std::string::npos);
  EXPECT_NE(t.find("vllm:time_to_first_token_seconds_count{model_name=\"my \\\"model\\\"\",engine=\"0\"} 1\n"),
            std::string::npos);
}

TEST(RequestLog, NoPromptUnlessAsked) {
  RequestLogEntry e;
  e.request_id = "chatcmpl-1";
  e.route = "/v1/chat/completions";
  e.prompt_tokens = 12;
  e.completion_tokens = 3;
  std::string line = format_request_log(e);
  EXPECT_NE(line.find("id=chatcmpl-1"), std::string::npos);
  EXPECT_NE(line.find("prompt_tokens=12 completion_tokens=3"), std::string::npos);
  EXPECT_EQ(line.find("prompt="), std::string::npos);
  e.prompt = "secret\ntext";
  line = format_request_log(e);
  EXPECT_NE(line.find("prompt=\"secret\\ntext\""), std::string::npos);
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace quench::server
