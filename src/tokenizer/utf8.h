// quench/tokenizer/utf8.h: strict UTF-8 decoding helpers (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF) shared by the tokenizer, the detokenizer and the chat format.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace quench::utf8 {

/// Result of decoding one character at a position.
struct Char {
  char32_t code_point = 0;  ///< valid only when len > 0 and !invalid
  size_t len = 0;           ///< bytes consumed: 1-4 for a character; 1 for an invalid byte
  bool invalid = false;     ///< s[pos] does not start a valid, complete character
};

/// Decodes the character starting at s[pos] (pos < s.size()). An invalid or truncated sequence
/// yields {invalid=true, len=1}: the caller treats s[pos] as a lone byte and continues at pos+1.
Char decode_at(std::string_view s, size_t pos);

/// True when `prefix` (1-3 bytes) is the valid beginning of a character that more bytes could
/// complete (e.g. "\xE4\xB8"), false when it is already invalid (e.g. "\xC0", "\xED\xA0").
bool is_incomplete_prefix(std::string_view prefix);

/// Appends the UTF-8 encoding of a valid code point.
void append(std::string& out, char32_t cp);

/// U+FFFD REPLACEMENT CHARACTER, as UTF-8.
inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

}  // namespace quench::utf8
