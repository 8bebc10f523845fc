// Tests for src/eval/punkt.cpp: sentence counts and word tokens from the shared reference
// ifeval-checkers.md §4 "Effects to expect" and §5 capital_word_frequency quirks (NLTK 3.8 Punkt
// English and word_tokenize behaviour as recorded there).
#include <gtest/gtest.h>

#include "eval/punkt.h"
#include "eval/unicode_text.h"

namespace quench::eval {
namespace {

std::size_t sentences(const char* s) { return punkt_sentences(utf8_decode(s)).sentences.size(); }

TEST(Punkt, ReferenceEffects) {
  EXPECT_EQ(sentences("Line one\nLine two"), 1u);
  EXPECT_EQ(sentences("* apples\n* pears\n* plums"), 1u);
  EXPECT_EQ(sentences("Hello.World."), 1u);
  EXPECT_EQ(sentences("Mr. Smith arrived."), 1u);
  EXPECT_EQ(sentences("Fruits, e.g. apples are good."), 2u);
  EXPECT_EQ(sentences("1. First\n2. Second"), 3u);
  EXPECT_EQ(sentences("1. apples\n2. pears"), 1u);
  EXPECT_EQ(sentences("I like tea. You like coffee. We both like water."), 3u);
  EXPECT_EQ(sentences("Really?! Yes! No."), 3u);
  EXPECT_EQ(sentences(""), 0u);
  EXPECT_EQ(sentences("   "), 0u);
}

TEST(Punkt, SentenceTextsAndQuoteRealignment) {
  const auto r = punkt_sentences(U"He said \"Stop.\" Then he left.");
  ASSERT_EQ(r.sentences.size(), 2u);
  EXPECT_EQ(r.sentences[0], U"He said \"Stop.\"");
  EXPECT_EQ(r.sentences[1], U"Then he left.");
}

std::size_t upper_tokens(const char* s) {
  std::size_t n = 0;
  for (const auto& t : nltk_word_tokenize(utf8_decode(s))) n += py_isupper(t);
  return n;
}

TEST(NltkWordTokenize, UpperCaseCountsFromTheReference) {
  EXPECT_EQ(upper_tokens("I LOVE this song."), 2u);
  EXPECT_EQ(upper_tokens("DON'T go."), 2u);     // DO + N'T
  EXPECT_EQ(upper_tokens("CANNOT stop"), 2u);   // CAN + NOT
  EXPECT_EQ(upper_tokens("I'M here"), 2u);      // I + 'M
  EXPECT_EQ(upper_tokens("GONNA win"), 2u);     // GON + NA
  EXPECT_EQ(upper_tokens("Go WELL-KNOWN route."), 1u);
  EXPECT_EQ(upper_tokens("HELLO,WORLD"), 2u);
  EXPECT_EQ(upper_tokens("the U.S.A. is big"), 1u);
  const auto t = nltk_word_tokenize(U"Hello, world!");
  ASSERT_EQ(t.size(), 4u);
  EXPECT_EQ(t[1], U",");
  EXPECT_EQ(t[3], U"!");
}

}  // namespace
}  // namespace quench::eval
