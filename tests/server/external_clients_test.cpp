// tests/server/external_clients_test.cpp: real clients against the in-process server on 127.0.0.1:
// curl (if installed) and the official OpenAI Node SDK (tests/node/server/*.test.mjs through
// `node --test`; skipped with a message when node or tests/node/node_modules is missing).
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>

#include "server/test_server.h"

namespace quench::test {
namespace {

using nlohmann::json;

/// Runs a shell command, returns (exit status, stdout+stderr).
std::pair<int, std::string> run(const std::string& cmd) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return {-1, ""};
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

bool have(const char* prog) { return run(std::string("command -v ") + prog).first == 0; }

TestServerOptions server_options() {
  TestServerOptions o;
  o.engine.max_model_len = 256;
  o.max_position_embeddings = 256;
  o.server.api_keys = {"test-key-123"};
  if (tiny_model_present()) {
    o.model_dir = tiny_model_dir();
    o.engine.max_model_len = 512;
    o.num_blocks = 256;
    o.server.served_model_names = {"gemma4-tiny-it"};
  }
  return o;
}

TEST(Curl, ChatStreamingAndErrors) {
  if (!have("curl")) GTEST_SKIP() << "curl is not installed";
  TestServer s(server_options());
  std::string url = s.base_url();
  const std::string auth = " -H 'Authorization: Bearer test-key-123' -H 'Content-Type: application/json' ";
  // Non-streaming chat.
  auto [rc, out] = run("curl -sS --max-time 60" + auth + url +
                       "/v1/chat/completions -d '{\"messages\":[{\"role\":\"user\",\"content\":\"What is 23 + 45?\"}],"
                       "\"max_tokens\":8,\"temperature\":0}'");
  ASSERT_EQ(rc, 0) << out;
  json j = json::parse(out);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_TRUE(j["choices"][0]["message"]["content"].is_string());
  // Streaming chat: SSE framing ends with [DONE].
  auto [rc2, sse] = run("curl -sS -N --max-time 60" + auth + url +
                        "/v1/chat/completions -d '{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                        "\"max_tokens\":5,\"temperature\":0,\"stream\":true,\"ignore_eos\":true,"
                        "\"stream_options\":{\"include_usage\":true}}'");
  ASSERT_EQ(rc2, 0) << sse;
  auto payloads = sse_payloads(sse);
  ASSERT_GE(payloads.size(), 3u) << sse;
  EXPECT_EQ(payloads.back(), "[DONE]");
  EXPECT_EQ(json::parse(payloads[payloads.size() - 2])["usage"]["completion_tokens"], 5);
  // Completions.
  auto [rc3, cmpl] = run("curl -sS --max-time 60" + auth + url +
                         "/v1/completions -d '{\"prompt\":\"abc\",\"max_tokens\":3,\"temperature\":0,\"ignore_eos\":true}'");
  ASSERT_EQ(rc3, 0);
  EXPECT_EQ(json::parse(cmpl)["usage"]["completion_tokens"], 3);
  // Status codes: 401 without key, 400 bad JSON, 404 unknown model, 200 health (no key needed).
  auto code = [&](const std::string& args) {
    return run("curl -s -o /dev/null -w '%{http_code}' --max-time 30 " + args).second;
  };
  EXPECT_EQ(code(url + "/v1/models"), "401");
  EXPECT_EQ(code(auth + url + "/v1/chat/completions -d '{bad json'"), "400");
  EXPECT_EQ(code(auth + url + "/v1/chat/completions -d '{\"model\":\"nope\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}'"),
            "404");
  EXPECT_EQ(code(url + "/health"), "200");
  auto [rc4, metrics] = run("curl -sS --max-time 30 " + url + "/metrics");
  EXPECT_NE(metrics.find("vllm:generation_tokens_total"), std::string::npos);
}

TEST(OpenAINodeSdk, SuitePasses) {
  std::filesystem::path node_dir = std::filesystem::path(QUENCH_SOURCE_DIR) / "tests" / "node";
  if (!have("node")) GTEST_SKIP() << "node is not installed";
  if (!std::filesystem::exists(node_dir / "node_modules" / "openai"))
    GTEST_SKIP() << "tests/node/node_modules/openai is missing: run `npm ci` in tests/node";
  TestServerOptions o = server_options();
  TestServer s(o);
  std::string model = o.server.served_model_names.empty() ? "test-model" : o.server.served_model_names.front();
  std::string cmd = "cd '" + node_dir.string() + "' && QUENCH_SERVER_URL='" + s.base_url() +
                    "/v1' QUENCH_API_KEY=test-key-123 QUENCH_MODEL='" + model +
                    "' timeout 240 node --test --test-reporter=tap server/*.test.mjs";
  auto [rc, out] = run(cmd);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("# fail 0"), std::string::npos) << out;
}

}  // namespace
}  // namespace quench::test
