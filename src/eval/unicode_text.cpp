// quench/eval/unicode_text.cpp: Python 3 `str` semantics over UTF-8 (see unicode_text.h).
#include "eval/unicode_text.h"

#include <locale.h>  // newlocale
#include <wctype.h>  // iswalpha_l, towlower_l

namespace quench::eval {

namespace {

// One C.UTF-8 LC_CTYPE locale object for the process, created on first use (thread-safe static).
locale_t utf8_ctype() {
  static locale_t loc = [] {
    locale_t l = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
    if (!l) l = newlocale(LC_CTYPE_MASK, "C.utf8", static_cast<locale_t>(nullptr));
    return l;  // null only on a libc without C.UTF-8: the _l calls below then see ASCII only
  }();
  return loc;
}

bool ascii_only() { return utf8_ctype() == nullptr; }

}  // namespace

std::u32string utf8_decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    const unsigned char b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) {
      out.push_back(b0);
      ++i;
      continue;
    }
    int len = 0;
    char32_t cp = 0;
    char32_t min = 0;
    if ((b0 & 0xE0) == 0xC0) { len = 2; cp = b0 & 0x1F; min = 0x80; }
    else if ((b0 & 0xF0) == 0xE0) { len = 3; cp = b0 & 0x0F; min = 0x800; }
    else if ((b0 & 0xF8) == 0xF0) { len = 4; cp = b0 & 0x07; min = 0x10000; }
    bool ok = len > 0 && i + len <= n;
    for (int k = 1; ok && k < len; ++k) {
      const unsigned char b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) ok = false;
      else cp = (cp << 6) | (b & 0x3F);
    }
    if (ok && (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) ok = false;
    if (!ok) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += len;
  }
  return out;
}

std::string utf8_encode(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) c = 0xFFFD;
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if (c < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (c >> 12)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (c >> 18)));
      out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

bool py_isspace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

bool is_alpha_char(char32_t c) {
  if (c < 0x80 || ascii_only()) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z' && c < 0x80;
  // Combining diacritical marks (Mn) are not letters in Python; glibc agrees for this block.
  if (c >= 0x0300 && c <= 0x036F) return false;
  return iswalpha_l(static_cast<wint_t>(c), utf8_ctype()) != 0;
}

bool py_is_digit(char32_t c) {
  if (c < 0x80 || ascii_only()) return c >= '0' && c <= '9';
  return iswdigit_l(static_cast<wint_t>(c), utf8_ctype()) != 0 ||
         // glibc's "digit" class is ASCII only; Nd digits of other scripts sit in "alnum"-but-not-"alpha".
         (iswalnum_l(static_cast<wint_t>(c), utf8_ctype()) != 0 &&
          iswalpha_l(static_cast<wint_t>(c), utf8_ctype()) == 0);
}

bool py_is_word(char32_t c) {
  if (c == '_') return true;
  if (c < 0x80) return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
  return is_alpha_char(c) || py_is_digit(c);
}

bool is_upper_char(char32_t c) {
  if (c < 0x80 || ascii_only()) return c >= 'A' && c <= 'Z';
  return iswupper_l(static_cast<wint_t>(c), utf8_ctype()) != 0;
}

bool is_lower_char(char32_t c) {
  if (c < 0x80 || ascii_only()) return c >= 'a' && c <= 'z';
  return iswlower_l(static_cast<wint_t>(c), utf8_ctype()) != 0;
}

char32_t to_lower_char(char32_t c) {
  if (c < 0x80 || ascii_only()) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  return static_cast<char32_t>(towlower_l(static_cast<wint_t>(c), utf8_ctype()));
}

char32_t to_upper_char(char32_t c) {
  if (c < 0x80 || ascii_only()) return (c >= 'a' && c <= 'z') ? c - 32 : c;
  return static_cast<char32_t>(towupper_l(static_cast<wint_t>(c), utf8_ctype()));
}

bool ci_equal(char32_t a, char32_t b) {
  return a == b || to_lower_char(a) == to_lower_char(b) || to_upper_char(a) == to_upper_char(b);
}

std::u32string py_lower(std::u32string_view s) {
  std::u32string out(s);
  for (auto& c : out) c = to_lower_char(c);
  return out;
}

std::u32string_view py_lstrip(std::u32string_view s) {
  std::size_t b = 0;
  while (b < s.size() && py_isspace(s[b])) ++b;
  return s.substr(b);
}

std::u32string_view py_rstrip(std::u32string_view s) {
  std::size_t e = s.size();
  while (e > 0 && py_isspace(s[e - 1])) --e;
  return s.substr(0, e);
}

std::u32string_view py_strip(std::u32string_view s) { return py_rstrip(py_lstrip(s)); }

std::u32string_view py_strip_chars(std::u32string_view s, std::u32string_view chars) {
  std::size_t b = 0, e = s.size();
  while (b < e && chars.find(s[b]) != std::u32string_view::npos) ++b;
  while (e > b && chars.find(s[e - 1]) != std::u32string_view::npos) --e;
  return s.substr(b, e - b);
}

bool py_is_blank(std::u32string_view s) { return py_strip(s).empty(); }

bool py_isupper(std::u32string_view s) {
  bool cased = false;
  for (char32_t c : s) {
    if (is_lower_char(c)) return false;
    if (is_upper_char(c)) cased = true;
  }
  return cased;
}

bool py_islower(std::u32string_view s) {
  bool cased = false;
  for (char32_t c : s) {
    if (is_upper_char(c)) return false;
    if (is_lower_char(c)) cased = true;
  }
  return cased;
}

std::vector<std::u32string_view> py_split_ws(std::u32string_view s) {
  std::vector<std::u32string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && py_isspace(s[i])) ++i;
    if (i >= s.size()) break;
    std::size_t j = i;
    while (j < s.size() && !py_isspace(s[j])) ++j;
    out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::vector<std::u32string_view> py_split(std::u32string_view s, std::u32string_view sep) {
  std::vector<std::u32string_view> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t p = s.find(sep, start);
    if (p == std::u32string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, p - start));
    start = p + sep.size();
  }
}

}  // namespace quench::eval
