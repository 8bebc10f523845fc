// quench/tokenizer/utf8.cpp: strict UTF-8 decoding (RFC 3629 table 3-7 of Unicode 15 §3.9).
#include "tokenizer/utf8.h"

namespace quench::utf8 {
namespace {

// For a lead byte: the sequence length (0 = never a lead byte) and the allowed range of the second
// byte (Unicode Table 3-7 "Well-Formed UTF-8 Byte Sequences").
struct Lead {
  int len;
  uint8_t lo, hi;
};

Lead lead_info(uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b < 0xC2) return {0, 0, 0};
  if (b < 0xE0) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b < 0xF0) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b < 0xF4) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// Number of leading bytes of s[pos..] that form a valid (possibly incomplete) character prefix.
size_t valid_prefix_len(std::string_view s, size_t pos, int* need) {
  const auto b0 = static_cast<uint8_t>(s[pos]);
  const Lead l = lead_info(b0);
  *need = l.len;
  if (l.len <= 1) return l.len;
  size_t n = 1;
  for (int i = 1; i < l.len && pos + i < s.size(); ++i) {
    const auto b = static_cast<uint8_t>(s[pos + i]);
    const uint8_t lo = i == 1 ? l.lo : 0x80, hi = i == 1 ? l.hi : 0xBF;
    if (b < lo || b > hi) break;
    ++n;
  }
  return n;
}

}  // namespace

Char decode_at(std::string_view s, size_t pos) {
  int need = 0;
  const size_t n = valid_prefix_len(s, pos, &need);
  if (need == 0 || static_cast<int>(n) != need) return {0, 1, true};
  const auto b0 = static_cast<uint8_t>(s[pos]);
  char32_t cp = need == 1 ? b0 : need == 2 ? (b0 & 0x1F) : need == 3 ? (b0 & 0x0F) : (b0 & 0x07);
  for (int i = 1; i < need; ++i) cp = (cp << 6) | (static_cast<uint8_t>(s[pos + i]) & 0x3F);
  return {cp, n, false};
}

bool is_incomplete_prefix(std::string_view prefix) {
  if (prefix.empty()) return false;
  int need = 0;
  const size_t n = valid_prefix_len(prefix, 0, &need);
  return need > 1 && n == prefix.size() && static_cast<int>(n) < need;
}

void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

}  // namespace quench::utf8
