// quench/tokenizer/normalizer.h: the tokenizer.json normalizer kinds Gemma uses
// (huggingface/tokenizers normalizers/{replace,prepend}.rs, utils/sequence).
#pragma once

#include <string>
#include <vector>

#include "tokenizer/json_path.h"  // Node

namespace quench {

/// A chain of string rewrites applied to each piece of text between added tokens.
class Normalizer {
 public:
  /// Parses the `normalizer` value (null = identity). Supported: Replace with a String pattern,
  /// Prepend, Sequence of those; anything else throws FormatError naming the type and path.
  static Normalizer from_json(const tok_json::Node& node);

  /// Rewrites `text` in place: Replace swaps every occurrence of the pattern (left to right,
  /// non-overlapping); Prepend adds its string unless the text is empty.
  void apply(std::string& text) const;
  bool empty() const { return steps_.empty(); }

 private:
  struct Step {
    enum class Kind { kReplace, kPrepend } kind;
    std::string pattern;  ///< Replace: literal to find
    std::string content;  ///< Replace: replacement; Prepend: prefix
  };
  static void parse_into(const tok_json::Node& node, std::vector<Step>& out);
  std::vector<Step> steps_;
};

/// Replaces every non-overlapping occurrence of `pattern` (non-empty) in `text`, left to right.
std::string replace_all(std::string_view text, std::string_view pattern, std::string_view content);

}  // namespace quench
