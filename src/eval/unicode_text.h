// quench/eval/unicode_text.h: Python 3 `str` semantics over UTF-8 text, for the eval scorers.
//
// IFEval's checkers are defined by Python's str and re behaviour (shared reference
// ifeval-checkers.md §3): code-point lengths, `isspace`, `\w`, `lower()`, `isupper()`. These helpers
// reproduce that on std::u32string (one element per code point). Character classes come from
// glibc's C.UTF-8 LC_CTYPE tables (Unicode 14/15 data), plus Python's whitespace set spelled out.
// Known differences from CPython, documented rather than hidden: `lower()` uses the simple case
// mapping (U+0130 lowers to "i" without U+0307), and glibc counts some combining vowel signs of
// Indic scripts as alphabetic where Python's `\w` does not.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace quench::eval {

/// Decodes UTF-8; invalid or truncated sequences become U+FFFD (one per bad byte). Never throws.
std::u32string utf8_decode(std::string_view s);
/// Encodes code points as UTF-8 (surrogates and values above U+10FFFF become U+FFFD).
std::string utf8_encode(std::u32string_view s);

/// Python `str.isspace()` for one code point (U+0009-000D, U+001C-001F, U+0020, U+0085, U+00A0,
/// U+1680, U+2000-200A, U+2028, U+2029, U+202F, U+205F, U+3000).
bool py_isspace(char32_t c);
/// Python `re` `\w` (Unicode): letters, numbers and '_' (not combining marks, see file comment).
bool py_is_word(char32_t c);
/// Python `str.isdigit()`-like decimal digit test (`re` `\d`).
bool py_is_digit(char32_t c);
/// Unicode letter with an uppercase/lowercase property (glibc iswupper/iswlower).
bool is_upper_char(char32_t c);
bool is_lower_char(char32_t c);
/// Letter (any script), per glibc iswalpha.
bool is_alpha_char(char32_t c);
/// Simple Unicode case mappings.
char32_t to_lower_char(char32_t c);
char32_t to_upper_char(char32_t c);

/// Python `s.lower()` (simple case mapping per code point).
std::u32string py_lower(std::u32string_view s);
/// Python `s.strip()` / `lstrip()` / `rstrip()` with no argument (Python whitespace).
std::u32string_view py_strip(std::u32string_view s);
std::u32string_view py_lstrip(std::u32string_view s);
std::u32string_view py_rstrip(std::u32string_view s);
/// Python `s.strip(chars)`: removes any of `chars` repeatedly from both ends.
std::u32string_view py_strip_chars(std::u32string_view s, std::u32string_view chars);
/// Python `s.isupper()`: at least one cased character and no lowercase one.
bool py_isupper(std::u32string_view s);
/// Python `s.islower()`: at least one cased character and no uppercase one.
bool py_islower(std::u32string_view s);
/// Python `s.split()` with no argument: runs of whitespace separate, empty pieces dropped.
std::vector<std::u32string_view> py_split_ws(std::u32string_view s);
/// Python `s.split(sep)` with a literal non-empty separator (keeps empty pieces).
std::vector<std::u32string_view> py_split(std::u32string_view s, std::u32string_view sep);
/// True when `s` is empty or all whitespace (`not s.strip()`).
bool py_is_blank(std::u32string_view s);
/// Case-insensitive (simple lowercase) equality of two code points.
bool ci_equal(char32_t a, char32_t b);

}  // namespace quench::eval
