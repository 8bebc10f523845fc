// tests/server/serve_process_test.cpp: the `quench serve` process end to end: startup line, health,
// a chat request, the request log (no prompt text), SIGTERM with a stream in flight (it ends with
// [DONE] and the process exits 0), and scripts/demo.sh. The model is a random-weight checkpoint
// made at test time by `quench synth` from a small Gemma 4 config, with the embedded model's
// tokenizer files (models/gemma4-tiny-it); skipped when those are missing.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "server/test_server.h"

namespace quench::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// $QUENCH_BIN overrides the build tree's binary (the GPU host runs prebuilt binaries elsewhere).
const fs::path kQuench = std::getenv("QUENCH_BIN") ? fs::path(std::getenv("QUENCH_BIN"))
                                                   : fs::path(QUENCH_BINARY_DIR) / "quench";
const fs::path kTokenizerDir = fs::path(QUENCH_SOURCE_DIR) / "models" / "gemma4-tiny-it";

/// A temp directory removed at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("quench-serve-test-" + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

/// Small gemma4_unified config (2 layers: sliding + full) over the embedded tokenizer's 8192 ids.
json small_config() {
  json text = {{"model_type", "gemma4_unified_text"}, {"vocab_size", 8192}, {"hidden_size", 64},
               {"intermediate_size", 128}, {"num_hidden_layers", 2},
               {"layer_types", {"sliding_attention", "full_attention"}}, {"num_attention_heads", 2},
               {"num_key_value_heads", 1}, {"head_dim", 32}, {"global_head_dim", 64},
               {"num_global_key_value_heads", 1}, {"attention_k_eq_v", true}, {"sliding_window", 128},
               {"max_position_embeddings", 1024}, {"rms_norm_eps", 1e-6},
               {"rope_parameters",
                {{"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 10000.0}}},
                 {"full_attention", {{"rope_type", "proportional"}, {"partial_rotary_factor", 0.25}, {"rope_theta", 1000000.0}}}}},
               {"final_logit_softcapping", 30.0}, {"hidden_activation", "gelu_pytorch_tanh"},
               {"tie_word_embeddings", true}, {"hidden_size_per_layer_input", 0}, {"num_kv_shared_layers", 0},
               {"enable_moe_block", false}, {"use_double_wide_mlp", false}, {"pad_token_id", 0},
               {"eos_token_id", 1}, {"bos_token_id", 2}};
  return {{"architectures", {"Gemma4UnifiedForConditionalGeneration"}}, {"model_type", "gemma4_unified"},
          {"tie_word_embeddings", true}, {"eos_token_id", {1, 106}}, {"pad_token_id", 0}, {"bos_token_id", 2},
          {"text_config", text}};
}

std::pair<int, std::string> sh(const std::string& cmd) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return {-1, ""};
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

/// Makes the model directory; returns false (and a reason) when the inputs are missing.
bool make_model(const fs::path& dir, std::string& why) {
  if (!fs::exists(kQuench)) {
    why = kQuench.string() + " is not built";
    return false;
  }
  if (!fs::exists(kTokenizerDir / "tokenizer.json")) {
    why = "models/gemma4-tiny-it/tokenizer.json is missing";
    return false;
  }
  fs::path cfg = dir / "config-src.json";
  std::ofstream(cfg) << small_config().dump(2);
  auto [rc, out] = sh("'" + kQuench.string() + "' synth '" + cfg.string() + "' '" + (dir / "model").string() +
                      "' --no-multimodal --seed 3");
  if (rc != 0) {
    why = "quench synth failed: " + out;
    return false;
  }
  for (const char* f : {"tokenizer.json", "generation_config.json"})
    if (fs::exists(kTokenizerDir / f)) fs::copy_file(kTokenizerDir / f, dir / "model" / f);
  return true;
}

/// A `quench serve` child process; stdout is read for the listening line, stderr goes to a file.
class ServeProcess {
 public:
  ServeProcess(const fs::path& model, const fs::path& stderr_file, std::vector<std::string> extra) {
    int out_pipe[2];
    if (pipe(out_pipe) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out_pipe[1], 1);
      int err = open(stderr_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(err, 2);
      close(out_pipe[0]);
      std::vector<std::string> args = {kQuench.string(), "serve", model.string(), "--host", "127.0.0.1", "--port", "0"};
      args.insert(args.end(), extra.begin(), extra.end());
      if (test_device() != "cpu") {
        args.push_back("--device");
        args.push_back(test_device());
      }
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out_pipe[1]);
    out_fd_ = out_pipe[0];
  }
  ~ServeProcess() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_fd_ >= 0) close(out_fd_);
  }
  /// Waits (bounded) for "listening on http://127.0.0.1:PORT"; returns the port or -1.
  int wait_port(std::chrono::seconds limit) {
    std::string text;
    auto deadline = std::chrono::steady_clock::now() + limit;
    std::regex re("listening on http://127\\.0\\.0\\.1:([0-9]+)");
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{out_fd_, POLLIN, 0};
      if (poll(&p, 1, 100) > 0) {
        char buf[512];
        ssize_t n = read(out_fd_, buf, sizeof(buf));
        if (n <= 0) return -1;
        text.append(buf, static_cast<size_t>(n));
        std::smatch m;
        if (std::regex_search(text, m, re)) return std::stoi(m[1]);
      }
    }
    return -1;
  }
  /// SIGTERM, then waits up to `limit`; returns the exit status or -1 on timeout / signal death.
  int terminate(std::chrono::seconds limit) {
    kill(pid_, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      int st = 0;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        reaped_ = true;
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  bool reaped_ = false;
};

TEST(ServeProcess, ServesLogsAndDrainsOnSigterm) {
  TempDir tmp;
  std::string why;
  if (!make_model(tmp.path, why)) GTEST_SKIP() << why;
  fs::path err_log = tmp.path / "serve.stderr";
  ServeProcess proc(tmp.path / "model", err_log, {"--served-model-name", "small", "--shutdown-timeout", "20"});
  int port = proc.wait_port(std::chrono::seconds(60));
  ASSERT_GT(port, 0) << sh("cat '" + err_log.string() + "'").second;

  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60, 0);
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  const std::string secret = "my secret prompt text";
  json chat = {{"model", "small"}, {"messages", {{{"role", "user"}, {"content", secret}}}}, {"max_tokens", 4},
               {"temperature", 0}};
  auto r = c.Post("/v1/chat/completions", chat.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["model"], "small");

  // A stream in flight when SIGTERM arrives finishes (its tokens, then [DONE]).
  std::promise<void> first_chunk;
  auto first = first_chunk.get_future();
  auto stream = std::async(std::launch::async, [&] {
    httplib::Client sc("127.0.0.1", port);
    sc.set_read_timeout(60, 0);
    std::string body;
    bool signalled = false;
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    req.body = json{{"prompt", "count"}, {"max_tokens", 60}, {"ignore_eos", true}, {"stream", true}, {"temperature", 0}}.dump();
    req.set_header("Content-Type", "application/json");
    req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
      body.append(d, n);
      if (!signalled) {
        signalled = true;
        first_chunk.set_value();
      }
      return true;
    };
    httplib::Response res;
    httplib::Error e = httplib::Error::Success;
    sc.send(req, res, e);
    if (!signalled) first_chunk.set_value();
    return body;
  });
  ASSERT_EQ(first.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  int status = proc.terminate(std::chrono::seconds(60));
  EXPECT_EQ(status, 0);
  std::string body = stream.get();
  auto payloads = sse_payloads(body);
  ASSERT_FALSE(payloads.empty());
  EXPECT_EQ(payloads.back(), "[DONE]");
  std::string finish;
  for (const auto& p : payloads) {
    if (p == "[DONE]") continue;
    const json event = json::parse(p);  // kept alive: the loop below iterates into it
    for (const auto& ch : event["choices"])
      if (ch["finish_reason"].is_string()) finish = ch["finish_reason"].get<std::string>();
  }
  EXPECT_EQ(finish, "length") << body;

  std::string log = sh("cat '" + err_log.string() + "'").second;
  EXPECT_NE(log.find("request id=chatcmpl-"), std::string::npos) << log;
  EXPECT_NE(log.find("status=200"), std::string::npos);
  EXPECT_EQ(log.find(secret), std::string::npos) << "prompt text logged without --log-prompts";
  EXPECT_NE(log.find("signal 15"), std::string::npos);
}

TEST(ServeProcess, DemoScriptPrintsAnAnswer) {
  TempDir tmp;
  std::string why;
  if (!make_model(tmp.path, why)) GTEST_SKIP() << why;
  auto [rc, out] = sh("timeout 120 bash '" + (fs::path(QUENCH_SOURCE_DIR) / "scripts" / "demo.sh").string() + "' '" +
                      kQuench.string() + "' '" + (tmp.path / "model").string() + "'");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("Q: What is 23 + 45?"), std::string::npos) << out;
  EXPECT_NE(out.find("\nA: "), std::string::npos) << out;
}

TEST(ServeProcess, BenchAgainstServerWritesJson) {
  TempDir tmp;
  std::string why;
  if (!make_model(tmp.path, why)) GTEST_SKIP() << why;
  ServeProcess proc(tmp.path / "model", tmp.path / "serve.stderr", {});
  int port = proc.wait_port(std::chrono::seconds(60));
  ASSERT_GT(port, 0);
  fs::path out = tmp.path / "bench.json";
  auto [rc, table] = sh("timeout 120 '" + kQuench.string() + "' bench --base-url http://127.0.0.1:" +
                        std::to_string(port) + " --num-prompts 6 --concurrency 3 --input-len 8 --output-len 5 --out '" +
                        out.string() + "'");
  EXPECT_EQ(rc, 0) << table;
  EXPECT_NE(table.find("Output token throughput (tok/s):"), std::string::npos) << table;
  std::ifstream f(out);
  json j = json::parse(f);
  EXPECT_EQ(j["completed"], 6);
  EXPECT_EQ(j["failed"], 0);
  EXPECT_EQ(j["total_output_tokens"], 30);  // ignore_eos: exactly output_len each
  EXPECT_GT(j["output_throughput_tok_s"].get<double>(), 0.0);
  EXPECT_GT(j["ttft"]["p50_ms"].get<double>(), 0.0);
  EXPECT_EQ(j["itl"]["count"], 6 * 4);  // 5 token events per request -> 4 gaps
  EXPECT_EQ(proc.terminate(std::chrono::seconds(30)), 0);
  // In-process mode: the same figures without HTTP.
  auto [rc2, table2] = sh("timeout 120 '" + kQuench.string() + "' bench --model '" + (tmp.path / "model").string() +
                          "' --num-prompts 4 --concurrency 2 --input-len 8 --output-len 5");
  EXPECT_EQ(rc2, 0) << table2;
  EXPECT_NE(table2.find("Total generated tokens:                         20"), std::string::npos) << table2;
}

}  // namespace
}  // namespace quench::test
