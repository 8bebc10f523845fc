// Tests for src/eval/unicode_text.cpp: Python str semantics listed in the shared reference
// ifeval-checkers.md §3.
#include <gtest/gtest.h>

#include "eval/unicode_text.h"

namespace quench::eval {
namespace {

TEST(UnicodeText, Utf8RoundTripAndInvalidBytes) {
  const std::string s = "a\xc3\xa9\xe4\xbd\xa0\xf0\x9f\x98\x80";
  EXPECT_EQ(utf8_decode(s).size(), 4u);
  EXPECT_EQ(utf8_encode(utf8_decode(s)), s);
  EXPECT_EQ(utf8_decode("\xff" "a"), (std::u32string{0xFFFD, U'a'}));
  EXPECT_EQ(utf8_decode("\xe4\xbd"), (std::u32string{0xFFFD, 0xFFFD}));
}

TEST(UnicodeText, PythonWhitespace) {
  for (char32_t c : {0x09, 0x0D, 0x1C, 0x1F, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000})
    EXPECT_TRUE(py_isspace(c)) << std::hex << static_cast<unsigned>(c);
  EXPECT_FALSE(py_isspace(0x200B));
  EXPECT_FALSE(py_isspace(0xFEFF));
  EXPECT_EQ(py_strip(U"\u3000 x \u00a0"), U"x");
}

TEST(UnicodeText, CasePredicates) {
  EXPECT_FALSE(py_isupper(U"123"));
  EXPECT_TRUE(py_isupper(U"ABC 123"));
  EXPECT_FALSE(py_isupper(U"ABc"));
  EXPECT_TRUE(py_islower(U"élan 1"));
  EXPECT_TRUE(py_isupper(U"ÉLAN"));
  EXPECT_EQ(py_lower(U"ÀB"), U"àb");
  EXPECT_TRUE(ci_equal(U'k', 0x212A));  // KELVIN SIGN folds to k
}

TEST(UnicodeText, WordCharacters) {
  EXPECT_TRUE(py_is_word(U'_'));
  EXPECT_TRUE(py_is_word(U'é'));
  EXPECT_TRUE(py_is_word(U'你'));
  EXPECT_TRUE(py_is_word(0x0663));  // ARABIC-INDIC DIGIT THREE
  EXPECT_FALSE(py_is_word(U'-'));
  EXPECT_FALSE(py_is_word(0x0301));  // COMBINING ACUTE ACCENT
}

TEST(UnicodeText, Split) {
  const auto a = py_split_ws(U"  a \n b\t");
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[1], U"b");
  const auto b = py_split(U"a\n\n\nb", U"\n\n");
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[1], U"\nb");
}

}  // namespace
}  // namespace quench::eval
