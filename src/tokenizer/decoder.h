// quench/tokenizer/decoder.h: the tokenizer.json decoder chain Gemma uses (huggingface/tokenizers
// decoders/{replace,byte_fallback,fuse,strip,sequence}.rs), applied to token strings.
#pragma once

#include <string>
#include <vector>

#include "tokenizer/json_path.h"  // Node

namespace quench {

class Decoder {
 public:
  /// Parses `decoder` (null = join tokens with " ", as tokenizers' TokenizerImpl::decode does). Supported: Replace (String pattern),
  /// ByteFallback, Fuse, Strip, Sequence of those; anything else throws FormatError naming the
  /// type and path.
  static Decoder from_json(const tok_json::Node& node);

  /// Runs the chain over token strings and joins the result. ByteFallback turns each run of
  /// `<0xXX>` tokens into its bytes when they form valid UTF-8, else into U+FFFD per token.
  std::string decode(std::vector<std::string> tokens) const;

  /// For incremental decoding: the text of one non-byte token: every Replace, and the Strip steps
  /// before Fuse (a Strip after Fuse is left to the caller: strip_start_after_fuse()).
  std::string decode_piece(std::string token) const;
  /// True when the file has no decoder: decode() joins tokens with " ".
  bool joins_with_space() const { return is_null_; }
  /// True when a ByteFallback step is in the chain.
  bool has_byte_fallback() const { return has_byte_fallback_; }
  /// Characters a Strip step after Fuse removes from the start of the whole text (0 if none).
  size_t strip_start_after_fuse() const { return strip_start_after_fuse_; }
  /// The character that step strips.
  const std::string& strip_after_fuse_content() const { return strip_after_fuse_content_; }

 private:
  struct Step {
    enum class Kind { kReplace, kByteFallback, kFuse, kStrip } kind;
    std::string pattern, content;  ///< Replace: pattern -> content; Strip: content = the char
    size_t start = 0, stop = 0;    ///< Strip: max chars removed from each token's start / end
  };
  static void parse_into(const tok_json::Node& node, std::vector<Step>& out);
  static void apply(const Step& step, std::vector<std::string>& tokens);
  std::vector<Step> steps_;
  bool is_null_ = false;  ///< no decoder in the file: tokens joined with " "
  bool has_byte_fallback_ = false;
  size_t strip_start_after_fuse_ = 0;
  std::string strip_after_fuse_content_;
};

/// The byte of a `<0xXX>` token string (exactly 6 chars, two hex digits), else -1.
int byte_token_value(std::string_view token);

}  // namespace quench
