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

TEST(CliLimits, DeviceFlagsNameTheBadValue) {
  // serve and generate share server::configure_device: an unknown device or a utilization outside
  // (0, 1] is refused before the model's KV cache is sized.
  for (const std::string verb : {"serve " + kModel + " --port 0", "generate " + kModel + " --chat hi --max-tokens 2"}) {
    Result r = run(verb + " --device tpu");
    EXPECT_EQ(r.rc, 1) << verb << ": " << r.out;
    EXPECT_NE(r.out.find("--device must be cpu or cuda, got 'tpu'"), std::string::npos) << verb << ": " << r.out;
  }
  const Result r = run("serve " + kModel + " --port 0 --gpu-memory-utilization 1.5");
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("--gpu-memory-utilization must be in (0, 1], got 1.5"), std::string::npos) << r.out;
}

TEST(CliLimits, SynthRejectsBadCalibTokensAndWritesNothing) {
  const std::string out = ::testing::TempDir() + "/quench-synth-bad-calib";
  const Result r = run("synth " + std::string(QUENCH_SOURCE_DIR) + "/tests/data/golden/tiny-bf16/config.json " + out +
                       " --dtype fp8 --calib-tokens 1");
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("--calib-tokens 1: expected >= 2"), std::string::npos) << r.out;
  EXPECT_NE(std::system(("test -e '" + out + "'").c_str()), 0) << out << " was created";
  const Result d = run("synth " + std::string(QUENCH_SOURCE_DIR) + "/tests/data/golden/tiny-bf16/config.json " + out +
                       " --dtype int4");
  EXPECT_NE(d.rc, 0) << d.out;
  EXPECT_NE(d.out.find("--dtype"), std::string::npos) << d.out;
}

TEST(CliLimits, BenchKernelsRejectsABadFilterOrIterationCount) {
  // Checked before any device work, so the answer is the same with or without a GPU.
  Result r = run("bench-kernels --filter '('");
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("--filter '(': not a valid regular expression"), std::string::npos) << r.out;
  r = run("bench-kernels --iters 0");
  EXPECT_NE(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("--iters"), std::string::npos) << r.out;
}

}  // namespace
