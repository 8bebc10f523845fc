// tests/server/cli_limits_test.cpp: out-of-range limits on the command line are refused with one
// line naming the flag, before any model memory is sized (serve / generate --max-model-len,
// bench-runner's counts).
#include <gtest/gtest.h>

#include <cstdlib>

#include <array>
#include <cstdio>
#include <string>

namespace {

struct Result {
  int rc;
  std::string out;
};

Result run(const std::string& args) {
  const char* bin = std::getenv("QUENCH_BIN");  // the GPU host runs prebuilt binaries elsewhere
  const std::string cmd = (bin ? std::string(bin) : std::string(QUENCH_BINARY_DIR) + "/quench") + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  Result r{-1, {}};
  if (!p) return r;
  std::array<char, 512> buf{};
  while (fgets(buf.data(), buf.size(), p)) r.out += buf.data();
  const int st = pclose(p);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

const std::string kModel = std::string(QUENCH_SOURCE_DIR) + "/models/gemma4-tiny-it";

TEST(CliLimits, GenerateRejectsMaxModelLenBeyondTheModel) {
  const Result r = run("generate " + kModel + " --chat hi --max-tokens 2 --max-model-len 100000000");
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("--max-model-len 100000000 exceeds the model's max_position_embeddings 4096"),
            std::string::npos)
      << r.out;
}

TEST(CliLimits, ServeRejectsMaxModelLenBeyondTheModel) {
  const Result r = run("serve " + kModel + " --port 0 --max-model-len 2147483647");
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("exceeds the model's max_position_embeddings"), std::string::npos) << r.out;
}

TEST(CliLimits, BenchRunnerRejectsBadCounts) {
  for (const char* bad : {"--decode-steps -1", "--batch-sizes 0", "--context 0", "--prefill-len -5"}) {
    const Result r = run("bench-runner " + kModel + " --device cpu " + bad);
    EXPECT_EQ(r.rc, 1) << bad << ": " << r.out;
    EXPECT_NE(r.out.find("quench bench-runner: --"), std::string::npos) << bad << ": " << r.out;
  }
}

}  // namespace
