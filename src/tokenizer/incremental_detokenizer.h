// quench/tokenizer/incremental_detokenizer.h: turns a stream of generated token ids into text
// deltas that never end inside a UTF-8 character.
//
// Gemma writes rare characters as byte-fallback tokens (`<0xE4><0xB8><0xAD>` = "中"), so a single
// token may be a third of a character. The detokenizer keeps the bytes of an unfinished character
// and emits it once complete. Concatenating every push() and flush() gives exactly
// Tokenizer::decode(all ids) whenever each run of byte tokens is valid UTF-8 (always the case for
// text the tokenizer produced). For an invalid run, decode() (HF's ByteFallback decoder) turns the
// whole run into U+FFFD per byte, while the detokenizer, which cannot wait for the end of a run,
// emits the valid characters it already saw and U+FFFD per invalid byte.
#pragma once

#include <cstdint>
#include <string>

#include "tokenizer/tokenizer.h"  // Tokenizer

namespace quench {

class IncrementalDetokenizer {
 public:
  /// `tok` must outlive the detokenizer. skip_special_tokens as in Tokenizer::decode
  /// (skipped tokens do not end a byte run, as in decode()).
  IncrementalDetokenizer(const Tokenizer& tok, bool skip_special_tokens);

  /// Adds one generated id; returns the text that became complete (possibly empty). Throws
  /// InvalidArgument for an id outside the vocabulary.
  std::string push(int32_t id);
  /// End of the stream: returns held bytes of an unfinished character as U+FFFD, one per byte.
  std::string flush();
  /// Everything emitted so far (push and flush results concatenated).
  const std::string& text() const { return text_; }
  /// Bytes held back, waiting for the rest of a UTF-8 character (0..3).
  size_t num_pending_bytes() const { return pending_.size(); }

 private:
  std::string emit(std::string s);
  std::string flush_pending();  ///< held bytes as U+FFFD each, without emitting
  const Tokenizer* tok_;
  bool skip_special_;
  std::string pending_;  ///< bytes of an unfinished character from byte-fallback tokens
  std::string text_;     ///< all text emitted
  size_t num_strip_start_left_;  ///< characters a post-Fuse Strip decoder still removes from the start
  size_t num_tokens_ = 0;        ///< non-byte tokens emitted (a file without decoder joins them with " ")
};

}  // namespace quench
