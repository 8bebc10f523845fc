// quench/eval/ifeval_checks_format.cpp: IFEval detectable_format and detectable_content checkers
// (ifeval_checks.h; reference ifeval-checkers.md §5). Each Python regex is hand-coded over code
// points with Python's leftmost, non-overlapping findall/split semantics.
#include "eval/ifeval_checks.h"
#include "eval/py_json.h"
#include "eval/unicode_text.h"

namespace quench::eval::ifeval {

namespace {

bool at_line_start(Text s, std::size_t p) { return p == 0 || s[p - 1] == '\n'; }
std::size_t line_end(Text s, std::size_t p) {
  while (p < s.size() && s[p] != '\n') ++p;
  return p;
}

// findall(r"^\s*<marker>...", MULTILINE) count for the two bullet patterns.
long long count_bullets(Text s, bool star) {
  long long count = 0;
  std::size_t pos = 0;
  const std::size_t n = s.size();
  for (std::size_t p = pos; p <= n; ++p) {
    if (!at_line_start(s, p)) continue;
    std::size_t q = p;
    while (q < n && py_isspace(s[q])) ++q;
    if (star) {
      // \*[^*].*$
      if (q >= n || s[q] != '*' || q + 1 >= n || s[q + 1] == '*') continue;
      q = line_end(s, q + 2);
    } else {
      // -.*$
      if (q >= n || s[q] != '-') continue;
      q = line_end(s, q + 1);
    }
    ++count;
    p = q;  // resume scanning at the match end (a '\n' or the end: no '^' there)
  }
  return count;
}

}  // namespace

CheckResult content_number_placeholders(Text r, long long num_placeholders) {
  long long count = 0;
  for (std::size_t i = 0; i < r.size(); ++i) {
    if (r[i] != '[') continue;
    std::size_t j = i + 1;
    while (j < r.size() && r[j] != ']' && r[j] != '\n') ++j;
    if (j < r.size() && r[j] == ']') {
      ++count;
      i = j;
    }
  }
  return {count >= num_placeholders};
}

CheckResult content_postscript(Text r, std::u32string_view marker_in) {
  const std::u32string s = py_lower(r);
  const Text m = py_strip(marker_in);
  const std::size_t n = s.size();
  auto ws = [&](std::size_t p) { return p < n && py_isspace(s[p]); };
  if (m == U"P.P.S" || m == U"P.S.") {
    const bool pps = m == U"P.P.S";
    for (std::size_t i = 0; i < n; ++i) {
      // p\.\s?p\.\s?s   or   p\.\s?s\.
      std::size_t q = i;
      auto lit = [&](char32_t c) {
        if (q < n && s[q] == c) {
          ++q;
          return true;
        }
        return false;
      };
      auto opt_ws_then = [&](char32_t c) {  // \s?c with backtracking over the optional space
        if (ws(q) && q + 1 < n && s[q + 1] == c) {
          q += 2;
          return true;
        }
        return lit(c);
      };
      if (!lit('p') || !lit('.')) continue;
      if (pps) {
        if (opt_ws_then('p') && lit('.') && opt_ws_then('s')) return {true};
      } else {
        if (opt_ws_then('s') && lit('.')) return {true};
      }
    }
    return {false};
  }
  // Any other marker is used raw as a regex by the reference; here it is a literal (no marker in
  // the data set takes this branch).
  const std::u32string lm = py_lower(m);
  return {s.find(lm) != std::u32string::npos};
}

CheckResult format_number_bullet_lists(Text r, long long num_bullets) {
  return {count_bullets(r, true) + count_bullets(r, false) == num_bullets};
}

CheckResult format_constrained_response(Text r) {
  const Text v = py_strip(r);
  for (Text opt : {Text(U"My answer is yes."), Text(U"My answer is no."), Text(U"My answer is maybe.")})
    if (v.find(opt) != Text::npos) return {true};
  return {false};
}

CheckResult format_number_highlighted_sections(Text r, long long num_highlights) {
  long long count = 0;
  const std::size_t n = r.size();
  // \*[^\n\*]*\*
  for (std::size_t i = 0; i < n; ++i) {
    if (r[i] != '*') continue;
    std::size_t j = i + 1;
    while (j < n && r[j] != '\n' && r[j] != '*') ++j;
    if (j < n && r[j] == '*') {
      if (!py_is_blank(py_strip_chars(r.substr(i, j + 1 - i), U"*"))) ++count;
      i = j;
    }
  }
  // \*\*[^\n\*]*\*\*
  for (std::size_t i = 0; i + 1 < n; ++i) {
    if (r[i] != '*' || r[i + 1] != '*') continue;
    std::size_t j = i + 2;
    while (j < n && r[j] != '\n' && r[j] != '*') ++j;
    if (j + 1 < n && r[j] == '*' && r[j + 1] == '*') {
      if (!py_is_blank(r.substr(i + 2, j - i - 2))) ++count;
      i = j + 1;
    }
  }
  return {count >= num_highlights};
}

CheckResult format_multiple_sections(Text r, std::u32string_view spliter_in, long long num_sections) {
  const Text sp = py_strip(spliter_in);
  if (sp.empty()) return {false};
  const std::size_t n = r.size();
  // After the spliter at k: \s?\d+\s? ; returns the match end or npos.
  auto tail = [&](std::size_t k) -> std::size_t {
    std::size_t q = k;
    if (q < n && py_isspace(r[q]) && q + 1 < n && py_is_digit(r[q + 1])) ++q;
    if (q >= n || !py_is_digit(r[q])) return Text::npos;
    while (q < n && py_is_digit(r[q])) ++q;
    if (q < n && py_isspace(r[q])) ++q;
    return q;
  };
  long long count = 0;
  for (std::size_t i = 0; i < n;) {
    std::size_t end = Text::npos;
    if (py_isspace(r[i]) && r.substr(i + 1, sp.size()) == sp) end = tail(i + 1 + sp.size());
    if (end == Text::npos && r.substr(i, sp.size()) == sp) end = tail(i + sp.size());
    if (end == Text::npos) {
      ++i;
      continue;
    }
    ++count;
    i = end > i ? end : i + 1;
  }
  return {count >= num_sections};
}

CheckResult format_json_format(Text r) {
  Text v = py_strip(r);
  for (Text prefix : {Text(U"```json"), Text(U"```Json"), Text(U"```JSON"), Text(U"```")})
    if (v.substr(0, prefix.size()) == prefix) v.remove_prefix(prefix.size());
  if (v.size() >= 3 && v.substr(v.size() - 3) == U"```") v.remove_suffix(3);
  v = py_strip(v);
  const PyJsonCheck c = python_json_accepts(v);
  return {c.ok, c.too_deep};
}

CheckResult format_title(Text r) {
  const std::size_t n = r.size();
  for (std::size_t i = 0; i + 1 < n; ++i) {
    if (r[i] != '<' || r[i + 1] != '<') continue;
    const std::size_t e = line_end(r, i);
    // greedy [^\n]+ then ">>": the last ">>" on the line with at least one character before it
    std::size_t close = Text::npos;
    for (std::size_t j = e; j >= i + 3 + 2; --j)
      if (r[j - 1] == '>' && r[j - 2] == '>') {
        close = j;
        break;
      }
    if (close == Text::npos) continue;
    Text t = r.substr(i, close - i);
    while (!t.empty() && t.front() == '<') t.remove_prefix(1);
    while (!t.empty() && t.back() == '>') t.remove_suffix(1);
    if (!py_is_blank(t)) return {true};
    i = close - 1;
  }
  return {false};
}

}  // namespace quench::eval::ifeval
