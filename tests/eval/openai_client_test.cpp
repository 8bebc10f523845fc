// Tests for src/eval/openai_client.cpp and task_runner.cpp against an in-process fake
// OpenAI-compatible server (cpp-httplib): request bodies, retries with backoff on 503/429, the
// clear error on 400, base URL handling, and a whole MMLU/IFEval/HumanEval run through the client.
#include <gtest/gtest.h>

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "eval/openai_client.h"
#include "eval/task_runner.h"

namespace quench::eval {
namespace {

using nlohmann::json;

class FakeServer {
 public:
  std::atomic<int> chat_calls{0}, completion_calls{0}, fail_first{0};
  int fail_status = 503;
  json last_body;
  std::mutex mu;

  FakeServer() {
    server_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      ++chat_calls;
      if (fail_first.fetch_sub(1) > 0) {
        res.status = fail_status;
        res.set_content(R"({"error":{"message":"busy","type":"server_error","param":null,"code":null}})", "application/json");
        return;
      }
      const json body = json::parse(req.body);
      {
        std::lock_guard<std::mutex> l(mu);
        last_body = body;
      }
      if (body["model"] != "toy") {
        res.status = 404;
        res.set_content(R"({"error":{"message":"The model `)" + body["model"].get<std::string>() + R"(` does not exist.","type":"NotFoundError","param":null,"code":404}})",
                        "application/json");
        return;
      }
      if (req.get_header_value("Authorization") != "Bearer k") {
        res.status = 401;
        res.set_content(R"({"error":"Unauthorized"})", "application/json");
        return;
      }
      const std::string user = body["messages"][0]["content"];
      if (user.find("TOO LONG") != std::string::npos) {
        res.status = 400;
        res.set_content(R"({"error":{"message":"This model's maximum context length is 4096 tokens. However, your request has 5000 input tokens.","type":"BadRequestError","param":null,"code":400}})",
                        "application/json");
        return;
      }
      std::string reply = "Answer: B";
      if (user.find("```python") != std::string::npos)
        reply = "Here:\n```python\ndef add(a: int, b: int) -> int:\n    return a + b\n```";
      else if (user.find("without commas") != std::string::npos)
        reply = "Tea is warm. Tea is calm.";
      else if (user.find("JSON") != std::string::npos)
        reply = "{\"a\": 1,}";
      res.set_content(json{{"choices", {{{"index", 0}, {"message", {{"role", "assistant"}, {"content", reply}}}, {"finish_reason", "stop"}}}}}.dump(),
                      "application/json");
    });
    server_.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      ++completion_calls;
      const json body = json::parse(req.body);
      {
        std::lock_guard<std::mutex> l(mu);
        last_body = body;
      }
      res.set_content(json{{"choices", {{{"index", 0}, {"text", "    return a + b\n"}, {"finish_reason", "stop"}}}}}.dump(),
                      "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 500 && !server_.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ~FakeServer() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

ClientOptions opts(const FakeServer& s) {
  ClientOptions o;
  o.base_url = s.url();
  o.api_key = "k";
  o.initial_backoff_s = 0.01;
  o.max_retries = 3;
  return o;
}

TEST(OpenAIClient, SplitsBaseUrls) {
  EXPECT_EQ(split_base_url("http://h:8000"), std::make_pair(std::string("http://h:8000"), std::string("/v1")));
  EXPECT_EQ(split_base_url("http://h:8000/v1/"), std::make_pair(std::string("http://h:8000"), std::string("/v1")));
  EXPECT_EQ(split_base_url("https://h/api"), std::make_pair(std::string("https://h"), std::string("/api/v1")));
  EXPECT_THROW(split_base_url("h:8000"), InvalidArgument);
  EXPECT_THROW(split_base_url("ftp://h"), InvalidArgument);
}

TEST(OpenAIClient, ChatRequestBodyAndReply) {
  FakeServer s;
  OpenAIClient c(opts(s), "toy");
  GenerationRequest r;
  r.text = "Q?";
  r.max_tokens = 7;
  const auto out = c.generate(r);
  EXPECT_EQ(out.text, "Answer: B");
  EXPECT_EQ(out.finish_reason, "stop");
  EXPECT_EQ(s.last_body["max_tokens"], 7);
  EXPECT_EQ(s.last_body["temperature"], 0.0);
  EXPECT_EQ(s.last_body["messages"][0]["role"], "user");
  r.chat = false;
  r.stop = {"\ndef "};
  EXPECT_EQ(c.generate(r).text, "    return a + b\n");
  EXPECT_EQ(s.last_body["prompt"], "Q?");
  EXPECT_EQ(s.last_body["stop"][0], "\ndef ");
}

TEST(OpenAIClient, RetriesServerErrorsThenSucceeds) {
  FakeServer s;
  s.fail_first = 2;
  OpenAIClient c(opts(s), "toy");
  EXPECT_EQ(c.generate({}).text, "Answer: B");
  EXPECT_EQ(s.chat_calls.load(), 3);
  s.fail_first = 10;
  s.fail_status = 429;
  EXPECT_THROW(c.generate({}), IoError);  // 1 + 3 retries, all 429
}

TEST(OpenAIClient, ClientErrorsAreNotRetried) {
  FakeServer s;
  OpenAIClient c(opts(s), "nope");
  try {
    c.generate({});
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("HTTP 404: The model `nope` does not exist."), std::string::npos) << e.what();
  }
  EXPECT_EQ(s.chat_calls.load(), 1);
  ClientOptions o = opts(s);
  o.api_key = "wrong";
  OpenAIClient bad(o, "toy");
  EXPECT_THROW(bad.generate({}), InvalidArgument);
}

TEST(OpenAIClient, ContextOverflowIsAnItemFailureNotARunFailure) {
  FakeServer s;
  OpenAIClient c(opts(s), "toy");
  GenerationRequest r;
  r.text = "TOO LONG";
  EXPECT_THROW(c.generate(r), ContextLengthError);
  EXPECT_EQ(s.chat_calls.load(), 1);
  IfevalItem it;
  it.key = "9";
  it.prompt = "TOO LONG";
  it.instruction_ids = {"punctuation:no_comma"};
  it.kwargs = {json::object()};
  it.checkers = {ifeval::make_checker("punctuation:no_comma", json::object(), "t")};
  TaskOptions t;
  t.progress = false;
  const auto o = opts(s);
  const auto res = run_ifeval({it}, t, [&](int) -> GenerateFn {
    auto cl = std::make_shared<OpenAIClient>(o, "toy");
    return [cl](const GenerationRequest& q) { return cl->generate(q); };
  });
  EXPECT_EQ(res["items"][0]["finish_reason"], "context_length_exceeded");
  EXPECT_FALSE(res["items"][0]["follow_all_strict"].get<bool>());
}

TEST(OpenAIClient, ConnectionRefusedGivesUp) {
  ClientOptions o;
  o.base_url = "http://127.0.0.1:1";
  o.max_retries = 1;
  o.initial_backoff_s = 0.01;
  OpenAIClient c(o, "toy");
  EXPECT_THROW(c.generate({}), IoError);
}

TEST(TaskRunner, AllThreeTasksThroughTheClient) {
  FakeServer s;
  const auto o = opts(s);
  GeneratorPool pool = [&](int) -> GenerateFn {
    auto c = std::make_shared<OpenAIClient>(o, "toy");
    return [c](const GenerationRequest& r) { return c->generate(r); };
  };
  TaskOptions t;
  t.concurrency = 3;
  t.progress = false;
  const std::string data = std::string(QUENCH_SOURCE_DIR) + "/tests/data/eval/";
  const auto mmlu = load_mmlu(data + "mmlu_index");
  const auto m = run_mmlu(sample_mmlu(mmlu, 0, 1, 0), mmlu, t, pool);
  EXPECT_EQ(m["summary"]["n"], 10);
  EXPECT_EQ(m["summary"]["correct"], 3);  // the fake always answers B: gold B once in toy_geo, twice in toy_misc
  EXPECT_EQ(m["items"][2]["extracted"], "B");
  EXPECT_EQ(m["summary"]["per_subject"]["toy_geo"]["n"], 4);

  const auto he = load_humaneval(data + "humaneval_toy.jsonl");
  const auto h = run_humaneval(he, t, pool);
  EXPECT_EQ(h["summary"]["n"], 2);
  EXPECT_TRUE(h["items"][0]["functional"].get<bool>()) << h["items"][0].dump();
  EXPECT_FALSE(h["items"][1]["functional"].get<bool>());  // add() is no hypotenuse
  t.humaneval_chat = false;
  const auto hc = run_humaneval(he, t, pool);
  EXPECT_EQ(hc["summary"]["functional_count"], 1);
  EXPECT_GT(s.completion_calls.load(), 0);

  const auto ie = load_ifeval(data + "ifeval_toy.jsonl");
  const auto i = run_ifeval(ie, t, pool);
  EXPECT_EQ(i["summary"]["prompts"], 2);
  EXPECT_EQ(i["summary"]["instructions"], 3);
  EXPECT_DOUBLE_EQ(i["summary"]["prompt_level_strict_acc"].get<double>(), 0.5);
  EXPECT_TRUE(i["items"][0]["follow_all_strict"].get<bool>());
  EXPECT_FALSE(i["items"][1]["instructions"][0]["strict"].get<bool>());
}

}  // namespace
}  // namespace quench::eval
