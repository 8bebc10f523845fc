// tests/tokenizer/normalizer_test.cpp: Replace / Prepend / Sequence normalizers (tokenizers
// normalizers/{replace,prepend}.rs: Prepend leaves an empty string empty).
#include "tokenizer/normalizer.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace quench {
namespace {

std::string normalize(const nlohmann::json& j, std::string s) {
  Normalizer::from_json({j, "t.json", "/normalizer"}).apply(s);
  return s;
}

TEST(Normalizer, GemmaReplaceSpaces) {
  const nlohmann::json gemma = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "▁"}};
  EXPECT_EQ(normalize(gemma, "a  b "), "a▁▁b▁");
  EXPECT_EQ(normalize(gemma, "\t\n"), "\t\n");
}

TEST(Normalizer, PrependSkipsEmptyText) {
  const nlohmann::json j = {{"type", "Sequence"},
                            {"normalizers", {{{"type", "Prepend"}, {"prepend", "▁"}},
                                             {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "▁"}}}}};
  EXPECT_EQ(normalize(j, "hi there"), "▁hi▁there");
  EXPECT_EQ(normalize(j, ""), "");
  EXPECT_EQ(normalize(nlohmann::json(nullptr), "x y"), "x y");
}

TEST(Normalizer, RejectsUnsupportedKinds) {
  EXPECT_THROW(normalize({{"type", "NFKC"}}, "x"), FormatError);
  EXPECT_THROW(normalize({{"type", "Replace"}, {"pattern", {{"Regex", " +"}}}, {"content", "▁"}}, "x"), FormatError);
}

TEST(Normalizer, ReplaceAllIsLeftToRightNonOverlapping) {
  EXPECT_EQ(replace_all("aaaa", "aa", "b"), "bb");
  EXPECT_EQ(replace_all("aaa", "aa", "b"), "ba");
  EXPECT_EQ(replace_all("", "a", "b"), "");
}

}  // namespace
}  // namespace quench
