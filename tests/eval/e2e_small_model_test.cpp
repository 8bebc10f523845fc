// End-to-end: start `quench serve` on the small trained model (models/gemma4-tiny-it) on an
// ephemeral loopback port, run `quench eval` with all three tasks on its held-out sets
// (tests/data/small_model/: mmlu/, humaneval.jsonl, ifeval.jsonl), and check the scores against
// the values transformers measured in the same model's SKILLS.md, within a tolerance.
//
// Settings mirror how SKILLS.md was measured (tools/fixtures/train_small_model.py): MMLU zero-shot
// chat with quench's prompt, 8 new tokens; HumanEval as /v1/completions from the prompt, 64 new
// tokens; IFEval chat, 256 new tokens; greedy. Tolerances: quench's CPU forward reproduces the
// transformers greedy tokens, but SKILLS.md's instruction checker skips langdetect and Punkt and
// its code stop strings differ by "\n#", so a few items can flip: MMLU +-5 points, code +-7.5,
// IFEval prompt-level +-10.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <thread>

#include <httplib.h>

#include <nlohmann/json.hpp>

namespace {

namespace fs = std::filesystem;

const fs::path kSource = QUENCH_SOURCE_DIR;
const fs::path kModel = kSource / "models/gemma4-tiny-it";
const fs::path kData = kSource / "tests/data/small_model";
const fs::path kQuench = fs::path(QUENCH_BINARY_DIR) / "quench";

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin_port);
  close(fd);
  return port;
}

// The score (percent) in the row of SKILLS.md's table whose first cell starts with `label`.
std::optional<double> skills_score(const std::string& skills, const std::string& label) {
  std::istringstream in(skills);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("| " + label, 0) != 0) continue;
    std::vector<std::string> cells;
    std::stringstream ss(line);
    std::string c;
    while (std::getline(ss, c, '|')) cells.push_back(c);
    if (cells.size() < 4) return std::nullopt;
    std::smatch m;
    if (std::regex_search(cells[3], m, std::regex(R"(([0-9]+(\.[0-9]+)?)\s*%)"))) return std::stod(m[1]);
    return std::nullopt;
  }
  return std::nullopt;
}

class Server {
 public:
  Server(int port, const fs::path& log) {
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      const std::string p = std::to_string(port);
      execl(kQuench.c_str(), "quench", "serve", kModel.c_str(), "--host", "127.0.0.1", "--port", p.c_str(),
            "--served-model-name", "gemma4-tiny-it", static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~Server() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      for (int i = 0; i < 100; ++i) {
        if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  bool alive() const { return waitpid(pid_, nullptr, WNOHANG) == 0; }

 private:
  pid_t pid_ = -1;
};

std::string read_all(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(EvalE2E, SmallModelScoresMatchSkillsReport) {
  for (const fs::path& need : {kModel / "config.json", kModel / "SKILLS.md", kData / "mmlu", kData / "humaneval.jsonl",
                               kData / "ifeval.jsonl"})
    if (!fs::exists(need))
      GTEST_SKIP() << "the small trained model and its held-out sets are not committed yet (missing " << need.string()
                   << "); this test runs once they are";
  ASSERT_TRUE(fs::exists(kQuench)) << kQuench;
  const fs::path tmp = fs::temp_directory_path() / ("quench-eval-e2e-" + std::to_string(getpid()));
  fs::create_directories(tmp);
  const int port = free_port();
  Server server(port, tmp / "serve.log");
  httplib::Client http("127.0.0.1", port);
  bool up = false;
  for (int i = 0; i < 600 && !up; ++i) {
    auto r = http.Get("/health");
    up = r && r->status == 200;
    if (!up) {
      ASSERT_TRUE(server.alive()) << "quench serve exited:\n" << read_all(tmp / "serve.log");
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  ASSERT_TRUE(up) << "quench serve did not become healthy in 120 s:\n" << read_all(tmp / "serve.log");

  const fs::path report = tmp / "report.json";
  std::ostringstream cmd;
  cmd << kQuench << " eval --base-url http://127.0.0.1:" << port << " --model gemma4-tiny-it"
      << " --tasks mmlu,humaneval,ifeval --data mmlu=" << kData / "mmlu" << " --data humaneval=" << kData / "humaneval.jsonl"
      << " --data ifeval=" << kData / "ifeval.jsonl"
      << " --task-max-tokens mmlu=8 --task-max-tokens humaneval=64 --task-max-tokens ifeval=256"
      << " --humaneval-mode completion --concurrency 8 --no-progress --out " << report << " > " << tmp / "eval.out" << " 2>&1";
  const int rc = std::system(cmd.str().c_str());
  ASSERT_EQ(rc, 0) << cmd.str() << "\n" << read_all(tmp / "eval.out") << "\nserver log:\n" << read_all(tmp / "serve.log");
  const auto j = nlohmann::json::parse(read_all(report));
  const std::string skills = read_all(kModel / "SKILLS.md");

  struct Check {
    const char* task;
    const char* metric;
    const char* skills_label;
    double tolerance;
  };
  const Check checks[] = {
      {"mmlu", "accuracy", "multiple choice, zero-shot", 5.0},
      {"humaneval", "functional", "code pass@1", 7.5},
      {"ifeval", "prompt_level_strict_acc", "instructions, prompt-level strict", 10.0},
  };
  for (const auto& c : checks) {
    const auto want = skills_score(skills, c.skills_label);
    ASSERT_TRUE(want.has_value()) << "SKILLS.md has no score row '" << c.skills_label << "'";
    const double got = 100.0 * j["tasks"][c.task]["summary"][c.metric].get<double>();
    EXPECT_NEAR(got, *want, c.tolerance) << c.task << " " << c.metric << " (n=" << j["tasks"][c.task]["summary"]["n"] << ")";
    std::printf("[e2e] %s %s: quench %.1f, SKILLS.md %.1f\n", c.task, c.metric, got, *want);
  }
  EXPECT_GT(j["tasks"]["humaneval"]["summary"]["syntactic"].get<double>(), 0.0);
  fs::remove_all(tmp);
}

}  // namespace
