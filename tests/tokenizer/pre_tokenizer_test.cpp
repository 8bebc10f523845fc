// tests/tokenizer/pre_tokenizer_test.cpp: Split with each delimiter behavior. Expected pieces are the
// example in the tokenizers documentation of SplitDelimiterBehavior ("the-final--countdown" split
// on "-").
#include "tokenizer/pre_tokenizer.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace quench {
namespace {

std::vector<std::string> split(const std::string& behavior, const std::string& text) {
  const nlohmann::json j = {{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", false}};
  const PreTokenizer p = PreTokenizer::from_json({j, "t.json", "/pre_tokenizer"});
  std::vector<std::string> out;
  for (std::string_view w : p.split(text)) out.emplace_back(w);
  return out;
}

using V = std::vector<std::string>;

TEST(PreTokenizer, SplitBehaviorsAsDocumented) {
  const std::string t = "the-final--countdown";
  EXPECT_EQ(split("Removed", t), (V{"the", "final", "countdown"}));
  EXPECT_EQ(split("Isolated", t), (V{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(split("MergedWithPrevious", t), (V{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(split("MergedWithNext", t), (V{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(split("Contiguous", t), (V{"the", "-", "final", "--", "countdown"}));
}

TEST(PreTokenizer, NullAndNoMatchKeepTheWholePiece) {
  const PreTokenizer none = PreTokenizer::from_json({nlohmann::json(nullptr), "t.json", "/pre_tokenizer"});
  EXPECT_EQ(none.split("a b"), (std::vector<std::string_view>{"a b"}));
  EXPECT_TRUE(none.split("").empty());
  // Gemma: Split on " " after the normalizer turned spaces into "▁": one piece.
  EXPECT_EQ(split("MergedWithPrevious", "no▁dash▁here"), (V{"no▁dash▁here"}));
}

TEST(PreTokenizer, RejectsUnsupportedForms) {
  const nlohmann::json regex = {{"type", "Split"}, {"pattern", {{"Regex", "\\s+"}}}, {"behavior", "Removed"}};
  EXPECT_THROW(PreTokenizer::from_json({regex, "t.json", "/pre_tokenizer"}), FormatError);
  const nlohmann::json invert = {{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", "Removed"}, {"invert", true}};
  EXPECT_THROW(PreTokenizer::from_json({invert, "t.json", "/pre_tokenizer"}), FormatError);
  const nlohmann::json behavior = {{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", "Sideways"}};
  EXPECT_THROW(PreTokenizer::from_json({behavior, "t.json", "/pre_tokenizer"}), FormatError);
}

}  // namespace
}  // namespace quench
