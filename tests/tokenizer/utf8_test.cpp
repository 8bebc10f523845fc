// tests/tokenizer/utf8_test.cpp: strict UTF-8 decoding per the Unicode Standard's Table 3-7
// (well-formed byte sequences) and its U+FFFD substitution examples.
#include "tokenizer/utf8.h"

#include <gtest/gtest.h>

namespace quench {
namespace {

TEST(Utf8, DecodesWellFormedSequences) {
  EXPECT_EQ(utf8::decode_at("A", 0).code_point, U'A');
  EXPECT_EQ(utf8::decode_at("\xc3\xa9", 0).code_point, U'\u00e9');
  EXPECT_EQ(utf8::decode_at("\xe4\xb8\xad", 0).code_point, U'\u4e2d');
  EXPECT_EQ(utf8::decode_at("\xf0\x9f\x98\x80", 0).code_point, U'\U0001F600');
  EXPECT_EQ(utf8::decode_at("\xf4\x8f\xbf\xbf", 0).code_point, U'\U0010FFFF');
  EXPECT_EQ(utf8::decode_at("x\xe4\xb8\xad", 1).len, 3u);
}

TEST(Utf8, RejectsIllFormedSequences) {
  for (const char* bad : {"\x80", "\xbf", "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf0\x80\x80\xaf",
                          "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff", "\xe4\xb8", "\xe4\x41\xad"}) {
    const utf8::Char c = utf8::decode_at(bad, 0);
    EXPECT_TRUE(c.invalid) << bad;
    EXPECT_EQ(c.len, 1u);
  }
}

TEST(Utf8, IncompletePrefixes) {
  EXPECT_TRUE(utf8::is_incomplete_prefix("\xe4"));
  EXPECT_TRUE(utf8::is_incomplete_prefix("\xe4\xb8"));
  EXPECT_TRUE(utf8::is_incomplete_prefix("\xf0\x9f\x98"));
  EXPECT_FALSE(utf8::is_incomplete_prefix("\xe4\xb8\xad"));  // complete
  EXPECT_FALSE(utf8::is_incomplete_prefix("\xc0"));          // never valid
  EXPECT_FALSE(utf8::is_incomplete_prefix("\xed\xa0"));      // surrogate range
  EXPECT_FALSE(utf8::is_incomplete_prefix("\xe0\x80"));      // overlong
  EXPECT_FALSE(utf8::is_incomplete_prefix("a"));
  EXPECT_FALSE(utf8::is_incomplete_prefix(""));
}

TEST(Utf8, AppendEncodes) {
  std::string s;
  for (char32_t cp : {U'A', U'\u00e9', U'\u4e2d', U'\U0001F600'}) utf8::append(s, cp);
  EXPECT_EQ(s, "A\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80");
}

}  // namespace
}  // namespace quench
