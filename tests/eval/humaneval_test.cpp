// Tests for src/eval/humaneval.cpp: loading, code-block extraction, program assembly and judging
// in the sandbox (needs python3) with correct, wrong, unparsable, hanging and hostile completions.
#include <gtest/gtest.h>

#include "core/error.h"
#include "eval/humaneval.h"

namespace quench::eval {
namespace {

const std::string kData = std::string(QUENCH_SOURCE_DIR) + "/tests/data/eval/";

SandboxOptions opts() {
  SandboxOptions o;
  o.wall_seconds = 3;
  o.cpu_seconds = 3;
  return o;
}

TEST(HumanEval, LoadsJsonl) {
  const auto ps = load_humaneval(kData + "humaneval_toy.jsonl");
  ASSERT_EQ(ps.size(), 2u);
  EXPECT_EQ(ps[0].task_id, "Toy/0");
  EXPECT_EQ(ps[1].entry_point, "hyp");
  EXPECT_THROW(load_humaneval(kData + "ifeval_toy.jsonl"), FormatError);  // no task_id
}

TEST(HumanEval, CodeBlockExtraction) {
  EXPECT_EQ(extract_code_block("Sure:\n```python\ndef f():\n    return 1\n```\nDone."), "def f():\n    return 1\n");
  EXPECT_EQ(extract_code_block("```\nx = 1\n```"), "x = 1\n");
  EXPECT_EQ(extract_code_block("```py\nx = 1\n"), "x = 1\n");
  EXPECT_EQ(extract_code_block("    return 1\n"), "    return 1\n");
  EXPECT_EQ(extract_code_block("```python\n```"), "");
  EXPECT_EQ(extract_code_block("a\n```python\nfirst\n```\n```python\nsecond\n```"), "first\n");
}

TEST(HumanEval, ProgramAssembly) {
  const auto p = load_humaneval(kData + "humaneval_toy.jsonl")[1];
  // Chat reply that redefines the function: the prompt's import stays in front.
  const std::string full = build_humaneval_program(p, "def hyp(a, b):\n    return math.hypot(a, b)\n", true);
  EXPECT_EQ(full.find("import math"), 0u);
  EXPECT_NE(full.find("return math.hypot"), std::string::npos);
  // Body only: continues the prompt.
  EXPECT_EQ(build_humaneval_program(p, "    return 5.0\n", true), p.prompt + "    return 5.0\n\n");
  EXPECT_EQ(build_humaneval_program(p, "    return 5.0\n", false), p.prompt + "    return 5.0\n\n");
}

TEST(HumanEval, JudgesInTheSandbox) {
  const auto ps = load_humaneval(kData + "humaneval_toy.jsonl");
  const auto& add = ps[0];
  auto judge = [&](const std::string& code) {
    return judge_humaneval(add, build_humaneval_program(add, code, false), "python3", opts());
  };
  const auto good = judge("    return a + b\n");
  EXPECT_TRUE(good.syntactic);
  EXPECT_TRUE(good.functional) << good.detail;
  const auto wrong = judge("    return a - b\n");
  EXPECT_TRUE(wrong.syntactic);
  EXPECT_FALSE(wrong.functional);
  EXPECT_NE(wrong.detail.find("AssertionError"), std::string::npos) << wrong.detail;
  const auto bad = judge("    return a +\n");
  EXPECT_FALSE(bad.syntactic);
  EXPECT_FALSE(bad.functional);
  EXPECT_NE(bad.detail.find("SyntaxError"), std::string::npos) << bad.detail;
  const auto hang = judge("    while True:\n        pass\n");
  EXPECT_TRUE(hang.syntactic);
  EXPECT_FALSE(hang.functional);
  // A program that kills its own interpreter fails, and quench carries on.
  const auto crash = judge("    import os\n    os.kill(os.getpid(), 9)\n");
  EXPECT_FALSE(crash.functional);
  const auto ps2 = judge_humaneval(ps[1], build_humaneval_program(ps[1], "```python\nimport math\ndef hyp(a, b):\n    return math.hypot(a, b)\n```", true), "python3", opts());
  EXPECT_FALSE(ps2.syntactic);  // the fence itself was not extracted here: not Python
  const auto ps3 = judge_humaneval(ps[1], build_humaneval_program(ps[1], extract_code_block("```python\ndef hyp(a, b):\n    return math.hypot(a, b)\n```"), true), "python3", opts());
  EXPECT_TRUE(ps3.functional) << ps3.detail;
}

TEST(HumanEval, MissingInterpreterIsAnIoError) {
  const auto p = load_humaneval(kData + "humaneval_toy.jsonl")[0];
  EXPECT_THROW(judge_humaneval(p, p.prompt, "quench-no-such-python", opts()), IoError);
}

}  // namespace
}  // namespace quench::eval
