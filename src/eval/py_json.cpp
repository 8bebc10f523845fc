// quench/eval/py_json.cpp: a recognizer for the language Python's json.loads accepts (py_json.h).
#include "eval/py_json.h"

namespace quench::eval {

namespace {

class Recognizer {
 public:
  explicit Recognizer(std::u32string_view s) : s_(s) {}

  PyJsonCheck run() {
    PyJsonCheck r;
    skip_ws();
    if (!value(0)) {
      r.too_deep = too_deep_;
      return r;
    }
    skip_ws();
    r.ok = pos_ == s_.size();
    return r;
  }

 private:
  bool at_end() const { return pos_ >= s_.size(); }
  char32_t peek() const { return at_end() ? 0 : s_[pos_]; }
  void skip_ws() {
    while (!at_end() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  bool literal(std::u32string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }
  static bool digit(char32_t c) { return c >= '0' && c <= '9'; }

  bool value(int depth) {
    if (depth > kPyJsonMaxDepth) {
      too_deep_ = true;
      return false;
    }
    switch (peek()) {
      case '{': return object(depth);
      case '[': return array(depth);
      case '"': return string();
      case 't': return literal(U"true");
      case 'f': return literal(U"false");
      case 'n': return literal(U"null");
      case 'N': return literal(U"NaN");
      case 'I': return literal(U"Infinity");
      case '-':
        if (s_.substr(pos_, 9) == U"-Infinity") {
          pos_ += 9;
          return true;
        }
        return number();
      default: return number();
    }
  }

  // -?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?   (CPython scanner NUMBER_RE)
  bool number() {
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
    } else if (digit(peek())) {
      while (digit(peek())) ++pos_;
    } else {
      return false;
    }
    if (peek() == '.' && pos_ + 1 < s_.size() && digit(s_[pos_ + 1])) {
      ++pos_;
      while (digit(peek())) ++pos_;
    }
    if (peek() == 'e' || peek() == 'E') {
      std::size_t save = pos_;
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!digit(peek())) {
        pos_ = save;  // "1e" parses as 1 followed by junk, which the caller then rejects
      } else {
        while (digit(peek())) ++pos_;
      }
    }
    return true;
  }

  bool string() {
    ++pos_;  // opening quote
    while (!at_end()) {
      const char32_t c = s_[pos_++];
      if (c == '"') return true;
      if (c < 0x20) return false;  // strict=True: control characters are not allowed raw
      if (c == '\\') {
        if (at_end()) return false;
        const char32_t e = s_[pos_++];
        if (e == 'u') {
          for (int k = 0; k < 4; ++k) {
            if (at_end()) return false;
            const char32_t h = s_[pos_++];
            const bool hex = digit(h) || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F');
            if (!hex) return false;
          }
        } else if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' && e != 'r' &&
                   e != 't') {
          return false;
        }
      }
    }
    return false;
  }

  bool array(int depth) {
    ++pos_;
    skip_ws();
    if (peek() == ']') {
      ++pos_;
      return true;
    }
    for (;;) {
      if (!value(depth + 1)) return false;
      skip_ws();
      if (peek() == ']') {
        ++pos_;
        return true;
      }
      if (peek() != ',') return false;
      ++pos_;
      skip_ws();
    }
  }

  bool object(int depth) {
    ++pos_;
    skip_ws();
    if (peek() == '}') {
      ++pos_;
      return true;
    }
    for (;;) {
      if (peek() != '"' || !string()) return false;
      skip_ws();
      if (peek() != ':') return false;
      ++pos_;
      skip_ws();
      if (!value(depth + 1)) return false;
      skip_ws();
      if (peek() == '}') {
        ++pos_;
        return true;
      }
      if (peek() != ',') return false;
      ++pos_;
      skip_ws();
    }
  }

  std::u32string_view s_;
  std::size_t pos_ = 0;
  bool too_deep_ = false;
};

}  // namespace

PyJsonCheck python_json_accepts(std::u32string_view text) { return Recognizer(text).run(); }

}  // namespace quench::eval
