// tests/server/routes_test.cpp: every route and every bad-input case of issue 4 item 5, over real
// HTTP on 127.0.0.1 against the in-process server (FakeRunner back end).
#include <gtest/gtest.h>

#include "server/fake_runner.h"
#include "server/test_server.h"

namespace quench::test {
namespace {

using nlohmann::json;

json chat_body(json extra = json::object()) {
  json b = {{"model", "test-model"}, {"messages", {{{"role", "user"}, {"content", "What is 23 + 45?"}}}},
            {"max_tokens", 8}, {"temperature", 0}};
  for (auto& [k, v] : extra.items()) b[k] = v;
  return b;
}

void expect_error(const std::pair<int, json>& r, int status, const std::string& param = "") {
  EXPECT_EQ(r.first, status) << r.second.dump();
  ASSERT_TRUE(r.second.is_object()) << r.second.dump();
  ASSERT_TRUE(r.second.contains("error")) << r.second.dump();
  const json& e = r.second["error"];
  EXPECT_TRUE(e["message"].is_string());
  EXPECT_TRUE(e["type"].is_string());
  EXPECT_TRUE(e.contains("param"));
  EXPECT_EQ(e["code"], status);
  if (!param.empty()) {
    EXPECT_EQ(e["param"], param) << r.second.dump();
  }
}

class Routes : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    TestServerOptions o;
    o.server.max_body_bytes = 64 * 1024;
    o.engine.max_model_len = 128;
    server_ = new TestServer(o);
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static TestServer* server_;
};
TestServer* Routes::server_ = nullptr;

TEST_F(Routes, ChatCompletionShape) {
  auto [status, j] = server_->post("/v1/chat/completions", chat_body());
  ASSERT_EQ(status, 200) << j.dump();
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["model"], "test-model");
  EXPECT_EQ(j["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  ASSERT_EQ(j["choices"].size(), 1u);
  const json& c = j["choices"][0];
  EXPECT_EQ(c["index"], 0);
  EXPECT_EQ(c["message"]["role"], "assistant");
  EXPECT_TRUE(c["message"]["content"].is_string());
  EXPECT_TRUE(c["finish_reason"] == "stop" || c["finish_reason"] == "length");
  EXPECT_EQ(c["logprobs"], nullptr);
  const json& u = j["usage"];
  EXPECT_GT(u["prompt_tokens"].get<int>(), 5);
  EXPECT_LE(u["completion_tokens"].get<int>(), 8);
  EXPECT_EQ(u["total_tokens"], u["prompt_tokens"].get<int>() + u["completion_tokens"].get<int>());
}

TEST_F(Routes, RequestIdHeaderIsTheIdStem) {
  auto [status, j] = server_->post("/v1/chat/completions", chat_body(), {{"X-Request-Id", "abc123"}});
  ASSERT_EQ(status, 200);
  EXPECT_EQ(j["id"], "chatcmpl-abc123");
}

TEST_F(Routes, ModelIsOptional) {
  json b = chat_body();
  b.erase("model");
  EXPECT_EQ(server_->post("/v1/chat/completions", b).first, 200);
}

TEST_F(Routes, CompletionShape) {
  auto [status, j] = server_->post("/v1/completions", {{"prompt", "hello"}, {"max_tokens", 4}, {"temperature", 0},
                                                       {"ignore_eos", true}});
  ASSERT_EQ(status, 200) << j.dump();
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["completion_tokens"], 4);
  // "hello" = <bos> + one token per character (the test vocabulary has no merges).
  EXPECT_EQ(j["usage"]["prompt_tokens"], 6);
}

TEST_F(Routes, CompletionMultiplePromptsAndN) {
  auto [status, j] = server_->post("/v1/completions", {{"prompt", {"ab", "cd"}}, {"n", 2}, {"max_tokens", 3},
                                                       {"temperature", 0.8}, {"seed", 1}, {"ignore_eos", true}});
  ASSERT_EQ(status, 200) << j.dump();
  ASSERT_EQ(j["choices"].size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(j["choices"][i]["index"], i);
  EXPECT_EQ(j["usage"]["completion_tokens"], 12);
  EXPECT_EQ(j["usage"]["prompt_tokens"], 6);  // (<bos> + 2) * 2
}

TEST_F(Routes, Echo) {
  auto [status, j] = server_->post("/v1/completions", {{"prompt", "xy"}, {"max_tokens", 2}, {"echo", true},
                                                       {"temperature", 0}});
  ASSERT_EQ(status, 200);
  EXPECT_EQ(j["choices"][0]["text"].get<std::string>().rfind("xy", 0), 0u);
}

TEST_F(Routes, Models) {
  auto c = server_->client();
  auto r = c->Get("/v1/models");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  json j = json::parse(r->body);
  EXPECT_EQ(j["object"], "list");
  ASSERT_EQ(j["data"].size(), 1u);
  EXPECT_EQ(j["data"][0]["id"], "test-model");
  EXPECT_EQ(j["data"][0]["object"], "model");
  EXPECT_EQ(j["data"][0]["max_model_len"], 128);
  EXPECT_EQ(j["data"][0]["root"], "/models/fake-test-model");
}

TEST_F(Routes, HealthPingVersionMetrics) {
  auto c = server_->client();
  auto h = c->Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(c->Get("/ping")->status, 200);
  EXPECT_EQ(json::parse(c->Get("/version")->body).contains("version"), true);
  auto m = c->Get("/metrics");
  ASSERT_EQ(m->status, 200);
  for (const char* s : {"vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
                        "vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total", "vllm:prompt_tokens_total",
                        "vllm:generation_tokens_total", "vllm:time_to_first_token_seconds_bucket",
                        "vllm:inter_token_latency_seconds_bucket", "quench:kv_cache_blocks_used",
                        "vllm:request_success_total"})
    EXPECT_NE(m->body.find(s), std::string::npos) << s;
}

TEST_F(Routes, TokenizeDetokenize) {
  auto [s1, t] = server_->post("/tokenize", {{"prompt", "ab"}});
  ASSERT_EQ(s1, 200) << t.dump();
  EXPECT_EQ(t["count"], 3);
  EXPECT_EQ(t["tokens"][0], TestVocab::kBos);
  EXPECT_EQ(t["max_model_len"], 128);
  auto [s2, d] = server_->post("/detokenize", {{"tokens", t["tokens"]}});
  ASSERT_EQ(s2, 200);
  EXPECT_EQ(d["prompt"], "<bos>ab");
  auto [s3, tc] = server_->post("/tokenize", {{"messages", {{{"role", "user"}, {"content", "hi"}}}}});
  ASSERT_EQ(s3, 200) << tc.dump();
  EXPECT_EQ(tc["tokens"][0], TestVocab::kBos);
  expect_error(server_->post("/detokenize", {{"tokens", {1, -5}}}), 400, "tokens");
  expect_error(server_->post("/detokenize", json::object()), 400, "tokens");
  expect_error(server_->post("/tokenize", json::object()), 400, "prompt");
}

TEST_F(Routes, BadInputs) {
  const std::string chat = "/v1/chat/completions";
  // Malformed JSON.
  {
    auto c = server_->client();
    auto r = c->Post(chat.c_str(), "{\"messages\": [", "application/json");
    ASSERT_TRUE(r);
    expect_error({r->status, json::parse(r->body)}, 400);
  }
  // Wrong content type.
  {
    auto c = server_->client();
    auto r = c->Post(chat.c_str(), chat_body().dump(), "text/plain");
    ASSERT_TRUE(r);
    expect_error({r->status, json::parse(r->body)}, 415);
  }
  expect_error(server_->post(chat, chat_body({{"temperature", "x"}})), 400, "temperature");
  expect_error(server_->post(chat, chat_body({{"model", "nope"}})), 404, "model");
  expect_error(server_->post(chat, chat_body({{"messages", json::array()}})), 400, "messages");
  expect_error(server_->post(chat, chat_body({{"messages", {{{"role", "user"}}}}})), 400, "messages[0].content");
  expect_error(server_->post(chat, chat_body({{"messages", {{{"role", "robot"}, {"content", "x"}}}}})), 400,
               "messages[0].role");
  expect_error(server_->post(chat, chat_body({{"max_tokens", 0}})), 400, "max_tokens");
  expect_error(server_->post(chat, chat_body({{"max_tokens", 1000}})), 400, "max_tokens");  // beyond context
  expect_error(server_->post(chat, chat_body({{"n", 0}})), 400, "n");
  expect_error(server_->post(chat, chat_body({{"top_p", 0}})), 400, "top_p");
  expect_error(server_->post(chat, chat_body({{"temperature", 3}})), 400, "temperature");
  // Prompt longer than --max-model-len.
  {
    auto r = server_->post(chat, chat_body({{"messages", {{{"role", "user"}, {"content", std::string(300, 'a')}}}}}));
    expect_error(r, 400, "messages");
    EXPECT_NE(r.second["error"]["message"].get<std::string>().find("maximum context length is 128 tokens"),
              std::string::npos);
  }
  expect_error(server_->post("/v1/completions", {{"prompt", std::string(200, 'a')}}), 400, "prompt");
  // Unknown fields are ignored.
  EXPECT_EQ(server_->post(chat, chat_body({{"frobnicate", true}, {"user", "u1"}, {"store", false}})).first, 200);
  // Oversized body.
  {
    auto c = server_->client();
    json big = chat_body({{"messages", {{{"role", "user"}, {"content", std::string(100 * 1024, 'a')}}}}});
    auto r = c->Post(chat.c_str(), big.dump(), "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
    expect_error({r->status, json::parse(r->body)}, 413);
  }
  // Unknown route.
  {
    auto c = server_->client();
    auto r = c->Get("/v1/nothing");
    ASSERT_TRUE(r);
    expect_error({r->status, json::parse(r->body)}, 404);
  }
  // And the server still serves everyone else.
  EXPECT_EQ(server_->post(chat, chat_body()).first, 200);
}

TEST_F(Routes, LogprobsChat) {
  auto [status, j] = server_->post("/v1/chat/completions", chat_body({{"logprobs", true}, {"top_logprobs", 3},
                                                                      {"ignore_eos", true}, {"max_tokens", 4}}));
  ASSERT_EQ(status, 200) << j.dump();
  const json& content = j["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 4u);
  for (const json& e : content) {
    EXPECT_LE(e["logprob"].get<double>(), 0.0);
    ASSERT_EQ(e["top_logprobs"].size(), 3u);
    // Greedy: the sampled token is the most likely one.
    EXPECT_EQ(e["top_logprobs"][0]["token"], e["token"]);
    EXPECT_DOUBLE_EQ(e["top_logprobs"][0]["logprob"].get<double>(), e["logprob"].get<double>());
    EXPECT_GE(e["top_logprobs"][0]["logprob"].get<double>(), e["top_logprobs"][1]["logprob"].get<double>());
    std::string tok = e["token"];
    EXPECT_EQ(e["bytes"].size(), tok.size());
  }
}

TEST_F(Routes, StopStringIsNotEmitted) {
  // Find what greedy produces, then stop on a piece of it.
  auto [s0, full] = server_->post("/v1/completions", {{"prompt", "hello"}, {"max_tokens", 12}, {"temperature", 0},
                                                      {"ignore_eos", true}});
  ASSERT_EQ(s0, 200);
  std::string text = full["choices"][0]["text"];
  ASSERT_GE(text.size(), 6u);
  std::string stop = text.substr(3, 2);
  auto [s1, cut] = server_->post("/v1/completions", {{"prompt", "hello"}, {"max_tokens", 12}, {"temperature", 0},
                                                     {"ignore_eos", true}, {"stop", {stop}}});
  ASSERT_EQ(s1, 200);
  EXPECT_EQ(cut["choices"][0]["text"], text.substr(0, text.find(stop)));
  EXPECT_EQ(cut["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(cut["choices"][0]["stop_reason"], stop);
}

TEST_F(Routes, SeedReproducible) {
  json b = {{"prompt", "seed test"}, {"max_tokens", 10}, {"temperature", 1.0}, {"seed", 1234}, {"ignore_eos", true}};
  auto a = server_->post("/v1/completions", b).second["choices"][0]["text"];
  auto c = server_->post("/v1/completions", b).second["choices"][0]["text"];
  EXPECT_EQ(a, c);
}

class AuthRoutes : public ::testing::Test {};

TEST_F(AuthRoutes, ApiKeyGuardsV1Only) {
  TestServerOptions o;
  o.server.api_keys = {"sekret"};
  TestServer s(o);
  auto no_key = s.post("/v1/chat/completions", chat_body());
  EXPECT_EQ(no_key.first, 401);
  EXPECT_EQ(no_key.second, (json{{"error", "Unauthorized"}}));
  EXPECT_EQ(s.post("/v1/chat/completions", chat_body(), {{"Authorization", "Bearer wrong"}}).first, 401);
  EXPECT_EQ(s.post("/v1/chat/completions", chat_body(), {{"Authorization", "Bearer sekret"}}).first, 200);
  EXPECT_EQ(s.post("/v1/chat/completions", chat_body(), {{"Authorization", "bearer sekret"}}).first, 200);
  auto c = s.client();
  EXPECT_EQ(c->Get("/v1/models")->status, 401);
  EXPECT_EQ(c->Get("/health")->status, 200);
  EXPECT_EQ(c->Get("/metrics")->status, 200);
}

}  // namespace
}  // namespace quench::test

namespace quench::test {
namespace {

TEST_F(Routes, ThinkingSplitsReasoningContent) {
  // The fake model answers thinking prompts with `<|channel>thought\n the answer<channel|> sixty eight<eos>`.
  json body = chat_body({{"chat_template_kwargs", {{"enable_thinking", true}}}, {"max_tokens", 30}});
  auto [status, j] = server_->post("/v1/chat/completions", body);
  ASSERT_EQ(status, 200) << j.dump();
  const json& msg = j["choices"][0]["message"];
  EXPECT_EQ(msg["reasoning_content"], " the answer");
  EXPECT_EQ(msg["reasoning"], " the answer");
  EXPECT_EQ(msg["content"], " sixty eight");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");

  body["stream"] = true;
  auto c = server_->client();
  auto r = c->Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  std::string reasoning, content;
  for (const auto& p : sse_payloads(r->body)) {
    if (p == "[DONE]") continue;
    const json e = json::parse(p);
    for (const auto& ch : e["choices"]) {
      if (ch["delta"].contains("reasoning_content")) reasoning += ch["delta"]["reasoning_content"].get<std::string>();
      if (ch["delta"].contains("content")) content += ch["delta"]["content"].get<std::string>();
    }
  }
  EXPECT_EQ(reasoning, " the answer");
  EXPECT_EQ(content, " sixty eight");

  body["stream"] = false;
  body["include_reasoning"] = false;
  auto [s2, j2] = server_->post("/v1/chat/completions", body);
  ASSERT_EQ(s2, 200);
  EXPECT_EQ(j2["choices"][0]["message"]["reasoning_content"], nullptr);
  EXPECT_EQ(j2["choices"][0]["message"]["content"], " sixty eight");
}

}  // namespace
}  // namespace quench::test
