// tests/server/streaming_test.cpp: SSE streaming, UTF-8 integrity, usage chunks, n > 1, client
// disconnects, 64 concurrent streams and prefix-cache hits, over HTTP on 127.0.0.1 (FakeRunner).
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "server/test_server.h"

namespace quench::test {
namespace {

using nlohmann::json;

bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = s[i];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    i += n;
  }
  return true;
}

/// A streamed request's events: JSON payloads (DONE excluded) and whether [DONE] came last.
struct Stream {
  int status = 0;
  std::vector<json> events;
  bool done_last = false;
  std::string raw;
};

Stream stream_post(const TestServer& s, const std::string& path, const json& body) {
  Stream out;
  auto c = s.client();
  std::string raw;
  auto r = c->Post(path.c_str(), body.dump(), "application/json");
  if (!r) {
    out.raw = httplib::to_string(r.error());
    return out;
  }
  out.status = r->status;
  out.raw = r->body;
  auto payloads = sse_payloads(r->body);
  for (size_t i = 0; i < payloads.size(); ++i) {
    if (payloads[i] == "[DONE]") {
      out.done_last = (i + 1 == payloads.size());
      continue;
    }
    out.events.push_back(json::parse(payloads[i]));
  }
  return out;
}

json chat_body(const std::string& user, int max_tokens, json extra = json::object()) {
  json b = {{"messages", {{{"role", "user"}, {"content", user}}}}, {"max_tokens", max_tokens}, {"temperature", 0}};
  for (auto& [k, v] : extra.items()) b[k] = v;
  return b;
}

std::string concat_content(const Stream& st, int index = 0) {
  std::string t;
  for (const auto& e : st.events)
    for (const auto& c : e["choices"])
      if (c["index"] == index && c["delta"].contains("content") && c["delta"]["content"].is_string())
        t += c["delta"]["content"].get<std::string>();
  return t;
}

class Streaming : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    TestServerOptions o;
    o.engine.max_model_len = 256;
    o.engine.max_num_seqs = 64;
    o.num_blocks = 2048;
    o.max_position_embeddings = 256;
    // 1 ms per engine step: concurrent requests overlap in the running batch instead of finishing
    // one by one.
    o.step_delay = std::chrono::microseconds(1000);
    server_ = new TestServer(o);
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static TestServer* server_;
};
TestServer* Streaming::server_ = nullptr;

TEST_F(Streaming, ChatChunkSequenceMatchesNonStreamed) {
  json body = chat_body("stream me", 20, {{"ignore_eos", true}});
  auto [status, whole] = server_->post("/v1/chat/completions", body);
  ASSERT_EQ(status, 200);
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  Stream st = stream_post(*server_, "/v1/chat/completions", body);
  ASSERT_EQ(st.status, 200);
  ASSERT_TRUE(st.done_last);
  ASSERT_GE(st.events.size(), 3u);
  // Role chunk first.
  EXPECT_EQ(st.events[0]["object"], "chat.completion.chunk");
  EXPECT_EQ(st.events[0]["choices"][0]["delta"]["role"], "assistant");
  // One id/model/created across chunks.
  for (const auto& e : st.events) {
    EXPECT_EQ(e["id"], st.events[0]["id"]);
    EXPECT_EQ(e["created"], st.events[0]["created"]);
    EXPECT_EQ(e["model"], "test-model");
  }
  // finish_reason rides the last content chunk; then the usage chunk with no choices.
  const json& last_choice_chunk = st.events[st.events.size() - 2];
  EXPECT_EQ(last_choice_chunk["choices"][0]["finish_reason"], "length");
  for (size_t i = 0; i + 2 < st.events.size(); ++i) EXPECT_EQ(st.events[i]["choices"][0]["finish_reason"], nullptr);
  const json& usage_chunk = st.events.back();
  EXPECT_TRUE(usage_chunk["choices"].empty());
  EXPECT_EQ(usage_chunk["usage"]["completion_tokens"], 20);
  EXPECT_EQ(usage_chunk["usage"]["prompt_tokens"], whole["usage"]["prompt_tokens"]);
  for (size_t i = 0; i + 1 < st.events.size(); ++i) EXPECT_FALSE(st.events[i].contains("usage"));
  EXPECT_EQ(concat_content(st), whole["choices"][0]["message"]["content"].get<std::string>());
}

TEST_F(Streaming, Utf8NeverSplitAcrossChunks) {
  // The fake model writes U+4E2D as three byte tokens; find prompts whose output contains it.
  int seen = 0;
  for (int p = 0; p < 40 && seen < 3; ++p) {
    Stream st = stream_post(*server_, "/v1/chat/completions",
                            chat_body("utf8 probe " + std::to_string(p), 40, {{"stream", true}, {"ignore_eos", true}}));
    ASSERT_EQ(st.status, 200);
    for (const auto& e : st.events)
      for (const auto& c : e["choices"])
        if (c["delta"].contains("content")) {
          // The raw bytes of the delta (nlohmann would have thrown on invalid UTF-8 while parsing).
          EXPECT_TRUE(valid_utf8(c["delta"]["content"].get<std::string>()));
        }
    EXPECT_EQ(st.raw.find("\\ufffd"), std::string::npos);
    if (concat_content(st).find("\xE4\xB8\xAD") != std::string::npos) ++seen;
  }
  EXPECT_GE(seen, 1) << "no output contained the 3-token character; the probe did not exercise the split";
}

TEST_F(Streaming, CompletionsStreamAndNoUsageUnlessAsked) {
  json body = {{"prompt", "abc"}, {"max_tokens", 6}, {"temperature", 0}, {"ignore_eos", true}, {"stream", true}};
  Stream st = stream_post(*server_, "/v1/completions", body);
  ASSERT_EQ(st.status, 200);
  ASSERT_TRUE(st.done_last);
  std::string text;
  for (const auto& e : st.events) {
    EXPECT_EQ(e["object"], "text_completion");
    EXPECT_EQ(e["usage"], nullptr);
    ASSERT_EQ(e["choices"].size(), 1u);
    text += e["choices"][0]["text"].get<std::string>();
  }
  EXPECT_EQ(st.events.back()["choices"][0]["finish_reason"], "length");
  body.erase("stream");
  EXPECT_EQ(server_->post("/v1/completions", body).second["choices"][0]["text"], text);
}

TEST_F(Streaming, NGreaterThanOneInterleavesIndices) {
  Stream st = stream_post(*server_, "/v1/chat/completions",
                          chat_body("n test", 8, {{"n", 3}, {"temperature", 1.0}, {"seed", 5}, {"stream", true},
                                                  {"ignore_eos", true}, {"stream_options", {{"include_usage", true}}}}));
  ASSERT_EQ(st.status, 200);
  std::set<int> finished;
  for (const auto& e : st.events)
    for (const auto& c : e["choices"])
      if (c["finish_reason"].is_string()) finished.insert(c["index"].get<int>());
  EXPECT_EQ(finished, (std::set<int>{0, 1, 2}));
  EXPECT_EQ(st.events.back()["usage"]["completion_tokens"], 24);
}

TEST_F(Streaming, ClientDisconnectAbortsAndFreesBlocks) {
  TestServerOptions o;
  o.engine.max_model_len = 2048;
  o.max_position_embeddings = 2048;
  o.num_blocks = 512;
  o.step_delay = std::chrono::microseconds(3000);
  o.engine.enable_prefix_caching = false;
  TestServer s(o);
  double aborted_before = s.metric("vllm:request_success_total{model_name=\"test-model\",engine=\"0\",finished_reason=\"abort\"}");
  int chunks = 0;
  json body = chat_body("long one", 1500, {{"stream", true}, {"ignore_eos", true}});
  {
    // A client that hangs up after a few chunks (the receiver returning false closes the socket).
    auto c = s.client();
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/chat/completions";
    req.body = body.dump();
    req.set_header("Content-Type", "application/json");
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) { return ++chunks < 5; };
    httplib::Response res;
    httplib::Error err = httplib::Error::Success;
    c->send(req, res, err);
  }
  EXPECT_GE(chunks, 5);
  // The server notices at its next write, aborts the sequence and frees its blocks.
  bool freed = false;
  for (int i = 0; i < 200 && !freed; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    double aborted = s.metric("vllm:request_success_total{model_name=\"test-model\",engine=\"0\",finished_reason=\"abort\"}");
    freed = aborted >= aborted_before + 1 && s.metric("vllm:num_requests_running") == 0 &&
            s.metric("quench:kv_cache_blocks_used") == 0;
  }
  EXPECT_TRUE(freed) << "running=" << s.metric("vllm:num_requests_running")
                     << " blocks_used=" << s.metric("quench:kv_cache_blocks_used");
  // A stopped engine turns /health to 503.
  s.engine().shutdown(/*abort_running=*/true);
  auto h = s.client()->Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 503);
}

TEST_F(Streaming, SixtyFourConcurrentStreamsGiveTheirSoloTokens) {
  const int kN = 64;
  std::vector<json> bodies;
  for (int i = 0; i < kN; ++i)
    bodies.push_back({{"prompt", "request " + std::to_string(i) + std::string(i % 7 * 9, 'x')},
                      {"max_tokens", 4 + (i * 13) % 40},
                      {"temperature", 0},
                      {"stream", true}});
  // Alone, one at a time.
  std::vector<std::string> solo(kN);
  std::vector<std::string> solo_finish(kN);
  for (int i = 0; i < kN; ++i) {
    Stream st = stream_post(*server_, "/v1/completions", bodies[i]);
    ASSERT_EQ(st.status, 200);
    for (const auto& e : st.events) solo[i] += e["choices"][0]["text"].get<std::string>();
    solo_finish[i] = st.events.back()["choices"][0]["finish_reason"].get<std::string>();
  }
  // All at once.
  std::vector<std::future<Stream>> futs;
  for (int i = 0; i < kN; ++i)
    futs.push_back(std::async(std::launch::async, [&, i] { return stream_post(*server_, "/v1/completions", bodies[i]); }));
  for (int i = 0; i < kN; ++i) {
    Stream st = futs[i].get();
    ASSERT_EQ(st.status, 200) << i << ": " << st.raw;
    ASSERT_TRUE(st.done_last) << i;
    std::string text;
    std::string id = st.events.front()["id"];
    for (const auto& e : st.events) {
      EXPECT_EQ(e["id"], id);  // nothing from another request interleaved
      text += e["choices"][0]["text"].get<std::string>();
    }
    EXPECT_EQ(text, solo[i]) << "request " << i;
    EXPECT_EQ(st.events.back()["choices"][0]["finish_reason"], solo_finish[i]) << i;
  }
}

TEST_F(Streaming, PrefixCacheHitsVisibleForSharedSystemPrompt) {
  double hits_before = server_->metric("vllm:prefix_cache_hits_total");
  std::string system(200, 's');
  for (int i = 0; i < 4; ++i) {
    json b = {{"messages", {{{"role", "system"}, {"content", system}}, {{"role", "user"}, {"content", "q" + std::to_string(i)}}}},
              {"max_tokens", 2},
              {"temperature", 0}};
    auto [status, j] = server_->post("/v1/chat/completions", b);
    ASSERT_EQ(status, 200) << j.dump();
    if (i > 0) {
      ASSERT_TRUE(j["usage"]["prompt_tokens_details"].is_object()) << j["usage"].dump();
      EXPECT_GE(j["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(), 192);
    }
  }
  EXPECT_GE(server_->metric("vllm:prefix_cache_hits_total"), hits_before + 3 * 192);
  EXPECT_GT(server_->metric("quench:prefix_cache_hit_rate"), 0.0);
}

}  // namespace
}  // namespace quench::test
