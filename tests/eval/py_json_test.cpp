// Tests for src/eval/py_json.cpp against the accept/reject lists of Python's json.loads in the
// shared reference ifeval-checkers.md §5 (json_format) and §7.
#include <gtest/gtest.h>

#include "eval/py_json.h"
#include "eval/unicode_text.h"

namespace quench::eval {
namespace {

bool ok(const char* s) { return python_json_accepts(utf8_decode(s)).ok; }

TEST(PyJson, AcceptsWhatPythonAccepts) {
  EXPECT_TRUE(ok("123"));
  EXPECT_TRUE(ok("\"x\""));
  EXPECT_TRUE(ok("true"));
  EXPECT_TRUE(ok("[NaN, Infinity, -Infinity]"));
  EXPECT_TRUE(ok("{\"a\": 1, \"a\": 2}"));
  EXPECT_TRUE(ok("1e999"));
  EXPECT_TRUE(ok("\"\\ud800\""));
  EXPECT_TRUE(ok(" \t\n\r{\"k\": [1, 2.5, -0.5e-3, null, \"\\u00e9\"]} \n"));
  EXPECT_TRUE(ok("\"caf\xc3\xa9\""));
}

TEST(PyJson, RejectsWhatPythonRejects) {
  EXPECT_FALSE(ok("[1, 2,]"));
  EXPECT_FALSE(ok("{'a': 1}"));
  EXPECT_FALSE(ok("{\"a\": 1} // c"));
  EXPECT_FALSE(ok("01"));
  EXPECT_FALSE(ok("\"a\tb\""));
  EXPECT_FALSE(ok("{} {}"));
  EXPECT_FALSE(ok(""));
  EXPECT_FALSE(ok("\xef\xbb\xbf{}"));
  EXPECT_FALSE(ok("{\xc2\xa0}"));
  EXPECT_FALSE(ok("nan"));
  EXPECT_FALSE(ok("\"\\x41\""));
}

TEST(PyJson, DeepNestingFailsAndIsFlagged) {
  const std::u32string deep(100000, U'[');
  const auto r = python_json_accepts(deep);
  EXPECT_FALSE(r.ok);
  EXPECT_TRUE(r.too_deep);
}

}  // namespace
}  // namespace quench::eval
