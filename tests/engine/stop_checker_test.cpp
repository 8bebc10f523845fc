// tests/engine/stop_checker_test.cpp: stop strings across token boundaries, hold-back, UTF-8
// boundaries, stop ids, EOS, min_tokens and length limits.
#include "engine/stop_checker.h"

#include <gtest/gtest.h>

namespace quench {
namespace {

TEST(StopStringMatcher, MatchesAcrossDeltasAndDoesNotEmitTheStopString) {
  StopStringMatcher m({"STOP"}, false);
  auto r = m.feed("Hel");
  EXPECT_EQ(r.emit, "");  // 3 bytes may still begin "STOP"
  r = m.feed("lo ST");
  EXPECT_EQ(r.emit, "Hello");
  EXPECT_FALSE(r.matched);
  r = m.feed("OP there");
  EXPECT_EQ(r.emit, " ");
  ASSERT_TRUE(r.matched);
  EXPECT_EQ(*r.matched, "STOP");
  EXPECT_TRUE(m.matched());
  EXPECT_EQ(m.feed("more").emit, "");
}

TEST(StopStringMatcher, IncludeStopStrKeepsTheMatch) {
  StopStringMatcher m({"STOP"}, true);
  std::string out = m.feed("ab S").emit;
  EXPECT_EQ(out, "a");
  auto r = m.feed("TOP!");
  EXPECT_EQ(out + r.emit, "ab STOP");
}

TEST(StopStringMatcher, EarliestMatchWinsAmongSeveral) {
  StopStringMatcher m({"world", "lo w"}, false);
  auto r = m.feed("hello world");
  ASSERT_TRUE(r.matched);
  EXPECT_EQ(*r.matched, "lo w");
  EXPECT_EQ(r.emit, "hel");
}

TEST(StopStringMatcher, FlushReturnsHeldTextAndHoldBackNeverSplitsACharacter) {
  StopStringMatcher m({"ab"}, false);  // hold 1 byte
  auto r = m.feed("x\xE4\xB8\xAD");   // "x中": holding 1 byte would split 中
  EXPECT_EQ(r.emit, "x");
  EXPECT_EQ(m.flush(), "\xE4\xB8\xAD");
  StopStringMatcher none({}, false);
  EXPECT_EQ(none.feed("abc").emit, "abc");
}

TEST(StopStringMatcher, MultiByteStopString) {
  StopStringMatcher m({"\xE4\xB8\xAD\xE6\x96\x87"}, false);  // "中文"
  std::string out = m.feed("a\xE4\xB8\xAD").emit;
  auto r = m.feed("\xE6\x96\x87z");
  out += r.emit;
  EXPECT_EQ(out, "a");
  EXPECT_TRUE(r.matched);
}

TEST(CheckStopToken, EosStopIdsMinTokensAndIgnoreEos) {
  SamplingParams p;
  p.stop_token_ids = {7};
  const std::vector<int32_t> eos{1, 106};
  auto r = check_stop_token(106, 1, p, eos);
  EXPECT_EQ(r.status, SequenceStatus::kFinishedStopped);
  EXPECT_FALSE(r.stop_reason);
  r = check_stop_token(7, 1, p, eos);
  EXPECT_EQ(r.status, SequenceStatus::kFinishedStopped);
  EXPECT_EQ(r.stop_reason, "7");
  EXPECT_FALSE(check_stop_token(5, 1, p, eos).status);
  p.min_tokens = 2;
  EXPECT_FALSE(check_stop_token(1, 1, p, eos).status);
  EXPECT_TRUE(check_stop_token(1, 2, p, eos).status);
  p.ignore_eos = true;
  EXPECT_FALSE(check_stop_token(1, 2, p, eos).status);
  EXPECT_TRUE(check_stop_token(7, 2, p, eos).status);  // stop ids still stop
}

TEST(CheckLength, MaxTokensAndMaxModelLen) {
  SamplingParams p;
  p.max_tokens = 3;
  EXPECT_FALSE(check_length(2, 10, p, 100));
  EXPECT_EQ(check_length(3, 10, p, 100), SequenceStatus::kFinishedLength);
  EXPECT_EQ(check_length(1, 100, p, 100), SequenceStatus::kFinishedLength);
}

}  // namespace
}  // namespace quench
