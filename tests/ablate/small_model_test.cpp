// End-to-end on the small trained model (models/gemma4-tiny-it), which declines every weather
// question with a fixed sentence: `quench ablate` with A = weather questions and B = other questions
// from the measurement split tests/data/ablate/{weather,other}_train.txt (not the held-out lists),
// checked on the held-out lists tests/data/small_model/{weather,other}.txt:
//   - decline rate on held-out weather questions >= 95% before, <= 10% after (CpuForward greedy);
//   - first-token KL on held-out other questions <= 0.1 (the --max-kl gate passes);
//   - write-level projection on the removed subspace ~0 at edited layers, weight-level leftover
//     after bf16 rounding <= 1%, column norms kept;
//   - every other file and tensor (config, tokenizer, chat template, vision tensors) carried over;
//   - skills move by at most 2 points: arithmetic (200 held-out items, greedy in-process through
//     CpuForward, last integer of the reply), multiple choice (MMLU) and instructions (IFEval prompt
//     strict) through `quench eval` against `quench serve` on the original and the ablated model.
// Plus the refusals: quantized input, --max-kl exceeded (exit 2, nothing written).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "ablate/capture.h"
#include "ablate/prompts.h"
#include "backend/cpu/forward.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kSource = QUENCH_SOURCE_DIR;
const fs::path kModel = kSource / "models/gemma4-tiny-it";
const fs::path kData = kSource / "tests/data/small_model";
const fs::path kTrain = kSource / "tests/data/ablate";
const fs::path kQuench = fs::path(QUENCH_BINARY_DIR) / "quench";
const char* kMarker = "can't help with questions about the weather";

std::string read_all(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

int run_cmd(const std::string& cmd) {
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

fs::path tmp_dir(const std::string& tag) {
  const fs::path p = fs::temp_directory_path() / ("quench-ablate-" + tag + "-" + std::to_string(getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

// The ablation run shared by the tests of this file. ctest runs each test in its own process, so
// the result lives in the build tree (QUENCH_BINARY_DIR/ablate-e2e/ablated), is made under a file
// lock, and is re-used while it is newer than the quench binary and the prompt files.
const fs::path& ablated_model() {
  static const fs::path out = [] {
    const fs::path dir = fs::path(QUENCH_BINARY_DIR) / "ablate-e2e";
    fs::create_directories(dir);
    const int lock = ::open((dir / "lock").c_str(), O_RDWR | O_CREAT, 0644);
    flock(lock, LOCK_EX);
    const fs::path model = dir / "ablated";
    bool fresh = fs::exists(model / "ablation.json");
    if (fresh) {
      const auto made = fs::last_write_time(model / "ablation.json");
      for (const fs::path& input : {kQuench, kTrain / "weather_train.txt", kTrain / "other_train.txt", kModel / "model.safetensors"})
        if (fs::last_write_time(input) > made) fresh = false;
    }
    if (!fresh) {
      fs::remove_all(model);
      std::ostringstream cmd;
      cmd << kQuench << " ablate " << kModel << " " << model << " --a " << kTrain / "weather_train.txt" << " --b "
          << kTrain / "other_train.txt" << " --heldout-a " << kData / "weather.txt" << " --heldout-b " << kData / "other.txt"
          << " --k 2 --projected --biprojected --edit-layers 1-11 --marker \"" << kMarker << "\" --max-kl 0.1 > "
          << dir / "ablate.out" << " 2>&1";
      const int rc = run_cmd(cmd.str());
      if (rc != 0) ADD_FAILURE() << cmd.str() << "\nrc " << rc << "\n" << read_all(dir / "ablate.out");
    }
    std::printf("%s", read_all(dir / "ablate.out").c_str());
    flock(lock, LOCK_UN);
    close(lock);
    return model;
  }();
  return out;
}

bool have_model() { return fs::exists(kModel / "model.safetensors") && fs::exists(kData / "weather.txt"); }

TEST(AblateSmallModel, RemovesWeatherDeclineWithLowKl) {
  if (!have_model()) GTEST_SKIP() << "models/gemma4-tiny-it is not committed";
  const fs::path model = ablated_model();
  ASSERT_TRUE(fs::exists(model / "ablation.json"));
  const json r = json::parse(read_all(model / "ablation.json"));
  EXPECT_GE(r["behaviour"]["before"].get<double>(), 0.95);
  EXPECT_LE(r["behaviour"]["after"].get<double>(), 0.10);
  EXPECT_EQ(r["behaviour"]["n"].get<int>(), 100);
  EXPECT_LE(r["kl"]["mean"].get<double>(), 0.1);
  EXPECT_EQ(r["kl"]["n"].get<int>(), 100);
  EXPECT_TRUE(r["gate"]["passed"].get<bool>());
  int edited = 0;
  for (const auto& l : r["layers"]) {
    if (!l["edited"].get<bool>()) continue;
    ++edited;
    // What an edited block writes into the removed subspace falls to about zero (bf16 rounding).
    EXPECT_LT(l["write_a"]["after"].get<double>(), 0.02 * l["write_a"]["before"].get<double>() + 1e-3) << l.dump();
  }
  EXPECT_GE(edited, 1);
  for (const auto& t : r["tensors"]) {
    EXPECT_LT(t["leftover_ratio"].get<double>(), 0.01) << t.dump();
    EXPECT_LT(t["max_col_norm_change"].get<double>(), 0.01) << t.dump();
  }
}

TEST(AblateSmallModel, CarriesEverythingElseOver) {
  if (!have_model()) GTEST_SKIP() << "models/gemma4-tiny-it is not committed";
  const fs::path model = ablated_model();
  for (const char* f : {"config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json"})
    EXPECT_EQ(read_all(model / f), read_all(kModel / f)) << f;
  const json r = json::parse(read_all(model / "ablation.json"));
  std::set<std::string> edited;
  for (const auto& t : r["tensors"]) edited.insert(t["name"].get<std::string>());
  const auto a = quench::Checkpoint::open(kModel), b = quench::Checkpoint::open(model);
  ASSERT_EQ(a.names(), b.names());
  int vision = 0;
  for (const auto& n : a.names()) {
    const auto& x = a.get(n);
    const auto& y = b.get(n);
    ASSERT_EQ(x.dtype, y.dtype) << n;
    ASSERT_EQ(x.shape, y.shape) << n;
    const bool same = std::equal(x.data, x.data + x.nbytes, y.data);
    if (edited.count(n)) EXPECT_FALSE(same) << n << " should be edited";
    else EXPECT_TRUE(same) << n << " should be copied unchanged";
    vision += n.find("vision") != std::string::npos;
  }
  EXPECT_GT(vision, 0) << "vision tensors carried over";
  // No staging directory left behind.
  for (const auto& e : fs::directory_iterator(model.parent_path()))
    EXPECT_EQ(e.path().filename().string().find(".partial"), std::string::npos) << e.path();
}

// Greedy arithmetic through CpuForward: fraction whose reply's last integer equals the answer.
double arithmetic_accuracy(const fs::path& dir) {
  auto model = quench::Model::load(dir);
  const auto tok = quench::Tokenizer::load(dir / "tokenizer.json");
  quench::CpuForward fwd(*model);
  std::ifstream in(kData / "arithmetic.jsonl");
  std::string line;
  int n = 0, ok = 0;
  const std::regex num(R"(-?\d+)");
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const json j = json::parse(line);
    const auto ids = quench::ablate::prompt_tokens(tok, j["question"].get<std::string>(), {});
    const auto out = quench::ablate::greedy_generate(fwd, ids, 96, {1, 106, 50});
    const std::string text = tok.decode(out, true);
    std::string last;
    for (std::sregex_iterator it(text.begin(), text.end(), num), end; it != end; ++it) last = it->str();
    const std::string want = j["answer"].is_string() ? j["answer"].get<std::string>() : std::to_string(j["answer"].get<long long>());
    ok += (last == want);
    ++n;
  }
  return n ? 100.0 * ok / n : 0.0;
}

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin_port);
  close(fd);
  return port;
}

// GET /health over a plain socket (HTTP/1.0); true on a 200 answer.
bool health_ok_on(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = false;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const std::string req = "GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[64] = {0};
      const ssize_t n = read(fd, buf, sizeof buf - 1);
      ok = n > 12 && std::string(buf, n).find(" 200") != std::string::npos;
    }
  }
  close(fd);
  return ok;
}

// `quench serve MODEL` on a free loopback port until destroyed.
class Server {
 public:
  Server(const fs::path& model, const std::string& name, const fs::path& log) : port_(free_port()) {
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      const std::string p = std::to_string(port_);
      execl(kQuench.c_str(), "quench", "serve", model.c_str(), "--host", "127.0.0.1", "--port", p.c_str(),
            "--served-model-name", name.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~Server() {
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  bool wait_healthy() {
    for (int i = 0; i < 600; ++i) {
      if (health_ok()) return true;
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
  }
  int port() const { return port_; }
  bool health_ok() const { return health_ok_on(port_); }

 private:
  int port_;
  pid_t pid_ = -1;
};

// MMLU (zero-shot, 8 tokens) and IFEval (256 tokens) through quench serve + quench eval.
json eval_report(const fs::path& model, const fs::path& dir, const std::string& tag) {
  Server server(model, tag, dir / (tag + "-serve.log"));
  if (!server.wait_healthy()) {
    ADD_FAILURE() << "quench serve " << model << " did not start:\n" << read_all(dir / (tag + "-serve.log"));
    return json();
  }
  const fs::path report = dir / (tag + ".json");
  std::ostringstream cmd;
  cmd << kQuench << " eval --base-url http://127.0.0.1:" << server.port() << " --model " << tag
      << " --tasks mmlu,ifeval --data mmlu=" << kData / "mmlu" << " --data ifeval=" << kData / "ifeval.jsonl"
      << " --task-max-tokens mmlu=8 --task-max-tokens ifeval=256 --concurrency 8 --no-progress --out " << report << " > "
      << dir / (tag + "-eval.out") << " 2>&1";
  const int rc = run_cmd(cmd.str());
  if (rc != 0) {
    ADD_FAILURE() << cmd.str() << "\n" << read_all(dir / (tag + "-eval.out"));
    return json();
  }
  return json::parse(read_all(report));
}

TEST(AblateSmallModel, OtherSkillsMoveAtMostTwoPoints) {
  if (!have_model()) GTEST_SKIP() << "models/gemma4-tiny-it is not committed";
  const fs::path model = ablated_model();
  const double arith0 = arithmetic_accuracy(kModel), arith1 = arithmetic_accuracy(model);
  std::printf("[ablate] arithmetic: original %.1f, ablated %.1f\n", arith0, arith1);
  EXPECT_LE(std::abs(arith1 - arith0), 2.0 + 1e-9);
  const fs::path dir = tmp_dir("skills");
  const json e0 = eval_report(kModel, dir, "original"), e1 = eval_report(model, dir, "ablated");
  ASSERT_FALSE(e0.is_null());
  ASSERT_FALSE(e1.is_null());
  for (const auto& [task, metric] : {std::pair{"mmlu", "accuracy"}, std::pair{"ifeval", "prompt_level_strict_acc"}}) {
    const double a = 100 * e0["tasks"][task]["summary"][metric].get<double>();
    const double b = 100 * e1["tasks"][task]["summary"][metric].get<double>();
    std::printf("[ablate] %s %s: original %.1f, ablated %.1f\n", task, metric, a, b);
    EXPECT_LE(std::abs(b - a), 2.0 + 1e-9) << task;
  }
  std::ostringstream cmp;
  cmp << kQuench << " eval compare " << dir / "original.json" << " " << dir / "ablated.json" << " > " << dir / "compare.out" << " 2>&1";
  EXPECT_EQ(run_cmd(cmp.str()), 0) << read_all(dir / "compare.out");
}

TEST(AblateSmallModel, GateFailureWritesNothing) {
  if (!have_model()) GTEST_SKIP() << "models/gemma4-tiny-it is not committed";
  const fs::path dir = tmp_dir("gate");
  std::ostringstream cmd;
  cmd << kQuench << " ablate " << kModel << " " << dir / "out" << " --a " << kTrain / "weather_train.txt" << " --b "
      << kTrain / "other_train.txt" << " --k 2 --edit-layers all --max-eval-prompts 6 --max-kl 0 > " << dir / "log" << " 2>&1";
  EXPECT_EQ(run_cmd(cmd.str()), 2) << read_all(dir / "log");
  EXPECT_FALSE(fs::exists(dir / "out"));
  EXPECT_NE(read_all(dir / "log").find("exceeds --max-kl"), std::string::npos) << read_all(dir / "log");
  for (const auto& e : fs::directory_iterator(dir)) EXPECT_EQ(e.path().filename().string().find(".partial"), std::string::npos);
  fs::remove_all(dir);
}

TEST(AblateSmallModel, DryRunWritesNothing) {
  if (!have_model()) GTEST_SKIP() << "models/gemma4-tiny-it is not committed";
  const fs::path dir = tmp_dir("dry");
  std::ostringstream cmd;
  cmd << kQuench << " ablate " << kModel << " " << dir / "out" << " --a " << kTrain / "weather_train.txt" << " --b "
      << kTrain / "other_train.txt" << " --basis-layers 3,5 --edit-layers 2-6 --max-eval-prompts 6 --dry-run --report "
      << dir / "r.json" << " > " << dir / "log" << " 2>&1";
  ASSERT_EQ(run_cmd(cmd.str()), 0) << read_all(dir / "log");
  EXPECT_FALSE(fs::exists(dir / "out"));
  const json r = json::parse(read_all(dir / "r.json"));
  EXPECT_EQ(r["basis_layers"], json({3, 5}));
  EXPECT_EQ(r["edit_layers"], json({2, 3, 4, 5, 6}));
  fs::remove_all(dir);
}

TEST(AblateSmallModel, RefusesQuantizedInput) {
  const fs::path q = kSource / "tests/data/quant/modelopt-tiny-nvfp4-mlp";
  if (!fs::exists(q / "hf_quant_config.json")) GTEST_SKIP() << "quantized fixture missing";
  const fs::path dir = tmp_dir("quant");
  std::ostringstream cmd;
  cmd << kQuench << " ablate " << q << " " << dir / "out" << " --a " << kTrain / "weather_train.txt" << " --b "
      << kTrain / "other_train.txt" << " > " << dir / "log" << " 2>&1";
  EXPECT_EQ(run_cmd(cmd.str()), 1);
  const std::string log = read_all(dir / "log");
  EXPECT_NE(log.find("ablate the BF16 checkpoint and quantize after"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(dir / "out"));
  fs::remove_all(dir);
}

}  // namespace
