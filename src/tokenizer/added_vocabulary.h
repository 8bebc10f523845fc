// quench/tokenizer/added_vocabulary.h: tokenizer.json `added_tokens` and how they cut the input
// (huggingface/tokenizers tokenizer/added_vocabulary.rs): leftmost-longest matching, with
// lstrip / rstrip / single_word, first for tokens with normalized=false on the raw text, then for
// normalized=true tokens on each normalized piece.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/json_path.h"  // Node

namespace quench {

/// One added_tokens entry.
struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;
  bool lstrip = false, rstrip = false, single_word = false;
  bool normalized = false;
};

/// A piece of input after added-token matching: either an added token (id >= 0) or text to
/// normalize and tokenize (id == -1). `text` views the string that was split.
struct Split {
  std::string_view text;
  int32_t id = -1;
};

class AddedVocabulary {
 public:
  /// Parses `added_tokens` (an array; null = none). Throws FormatError naming the entry's path
  /// for a missing id/content or an empty content.
  static AddedVocabulary from_json(const tok_json::Node& node);

  const std::vector<AddedToken>& tokens() const { return tokens_; }

  /// Splits `text` on added tokens whose `normalized` flag equals `normalized`, leftmost-longest
  /// and non-overlapping. When skip_special, special tokens are still found (so they hide tokens
  /// inside them) but left as text (transformers' split_special_tokens).
  std::vector<Split> split(std::string_view text, bool normalized, bool skip_special) const;

 private:
  // A byte trie over token contents; node 0 is the root.
  struct TrieNode {
    std::vector<std::pair<uint8_t, int32_t>> children;  ///< sorted by byte
    int32_t token = -1;                                 ///< index into tokens_ ending here
  };
  struct Trie {
    std::vector<TrieNode> nodes{1};
    bool first_byte[256] = {};
    void insert(std::string_view s, int32_t token_index);
    /// Longest token starting at text[pos]: (token index, length) or (-1, 0).
    std::pair<int32_t, size_t> longest(std::string_view text, size_t pos) const;
  };
  std::vector<AddedToken> tokens_;
  Trie raw_trie_, normalized_trie_;
};

}  // namespace quench
