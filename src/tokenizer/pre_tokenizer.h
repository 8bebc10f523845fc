// quench/tokenizer/pre_tokenizer.h: the tokenizer.json pre-tokenizer kinds Gemma uses: Split on a
// literal string with HF's delimiter behaviors (huggingface/tokenizers pre_tokenizers/split.rs,
// tokenizer/normalizer.rs `SplitDelimiterBehavior`).
//
// Gemma 3/4 split on " " after the normalizer replaced every " " by "▁", so each piece between
// added tokens reaches the BPE model whole.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/json_path.h"  // Node

namespace quench {

class PreTokenizer {
 public:
  /// Parses the `pre_tokenizer` value (null = no split). Supported: Split with a String pattern and
  /// invert=false, Sequence of those; anything else throws FormatError naming the type and path.
  static PreTokenizer from_json(const tok_json::Node& node);

  /// Splits a normalized piece into words (views into `text`, in order, none empty).
  std::vector<std::string_view> split(std::string_view text) const;

 private:
  enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
  struct Step {
    std::string pattern;
    Behavior behavior;
  };
  static void parse_into(const tok_json::Node& node, std::vector<Step>& out);
  static void split_one(std::string_view text, const Step& step, std::vector<std::string_view>& out);
  std::vector<Step> steps_;
};

}  // namespace quench
