// tests/engine/generate_cli_test.cpp: `quench generate` on the small model, driven from outside.
// Expected answers are transformers' greedy generations of models/gemma4-tiny-it recorded by the
// GPU run in that model's SKILLS.md ("Demo" section, tools/fixtures/train_small_model.py).
#include <array>
#include <cstdio>
#include <string>

#include <gtest/gtest.h>

namespace {

struct CliRun {
  std::string out;
  int rc = -1;
};

CliRun run(const std::string& args, const std::string& stdin_text = "") {
  std::string cmd = std::string("cd ") + QUENCH_SOURCE_DIR + " && ";
  if (!stdin_text.empty()) cmd += "printf '%s' '" + stdin_text + "' | ";
  cmd += std::string(QUENCH_BINARY_DIR) + "/quench generate models/gemma4-tiny-it " + args + " 2>/dev/null";
  CliRun r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(GenerateCli, ChatAnswersAsTransformersDoes) {
  CliRun r = run("--chat 'What is 23 + 45?'");
  EXPECT_EQ(r.rc, 0);
  EXPECT_EQ(r.out, "3 + 5 = 8, 2 + 4 = 6, so 23 + 45 = 68.\n");
  r = run("--chat 'What will the weather be like in Paris tomorrow?'");
  EXPECT_EQ(r.out, "I'm sorry, but I can't help with questions about the weather.\n");
}

TEST(GenerateCli, ChatMessageFromStdin) {
  CliRun r = run("", "What is the capital of France?\n");
  EXPECT_EQ(r.rc, 0);
  EXPECT_EQ(r.out, "The capital of France is Paris.\n");
}

TEST(GenerateCli, SeededSamplingIsReproducibleAndBadFlagsFail) {
  CliRun a = run("--chat 'Tell me a story.' --temperature 1 --seed 11 --max-tokens 20");
  CliRun b = run("--chat 'Tell me a story.' --temperature 1 --seed 11 --max-tokens 20");
  EXPECT_EQ(a.rc, 0);
  EXPECT_FALSE(a.out.empty());
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(run("--chat x --top-p 0").rc, 1);
  EXPECT_NE(run("--chat x --prompt y").rc, 0);
  EXPECT_EQ(run("--chat x --max-tokens 0").rc, 1);
}

}  // namespace
