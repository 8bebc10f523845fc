// quench/eval/ifeval_checks_text.cpp: IFEval keyword, language, length, case, punctuation, start/end
// and combination checkers (ifeval_checks.h; reference ifeval-checkers.md §5).
#include <cstdlib>

#include "eval/ifeval_checks.h"
#include "eval/langid.h"
#include "eval/punkt.h"
#include "eval/unicode_text.h"

namespace quench::eval::ifeval {

namespace {

bool ci_match_at(Text hay, std::size_t i, std::u32string_view needle) {
  if (i + needle.size() > hay.size()) return false;
  for (std::size_t k = 0; k < needle.size(); ++k)
    if (!ci_equal(hay[i + k], needle[k])) return false;
  return true;
}

bool word_at(Text s, std::ptrdiff_t i) {
  return i >= 0 && static_cast<std::size_t>(i) < s.size() && py_is_word(s[static_cast<std::size_t>(i)]);
}
bool boundary_at(Text s, std::size_t i) {
  return word_at(s, static_cast<std::ptrdiff_t>(i) - 1) != word_at(s, static_cast<std::ptrdiff_t>(i));
}

// A count compared with a threshold: robust when at least 2 away from it (reference §6).
bool near_threshold(long long count, long long n) { return std::llabs(count - n) < 2; }

}  // namespace

bool holds(Relation r, long long count, long long n) { return r == Relation::kLessThan ? count < n : count >= n; }

long long count_ci(Text hay, std::u32string_view needle) {
  if (needle.empty()) return 0;
  long long n = 0;
  for (std::size_t i = 0; i + needle.size() <= hay.size();) {
    if (ci_match_at(hay, i, needle)) {
      ++n;
      i += needle.size();
    } else {
      ++i;
    }
  }
  return n;
}

long long count_words(Text r) {
  long long n = 0;
  bool in_word = false;
  for (char32_t c : r) {
    const bool w = py_is_word(c);
    if (w && !in_word) ++n;
    in_word = w;
  }
  return n;
}

CheckResult keywords_existence(Text r, const std::vector<std::u32string>& keywords) {
  for (const auto& k : keywords)
    if (!k.empty() && count_ci(r, k) == 0) return {false};
  return {true};
}

CheckResult keywords_frequency(Text r, std::u32string_view keyword, long long frequency, Relation rel) {
  return {holds(rel, count_ci(r, py_strip(keyword)), frequency)};
}

CheckResult keywords_forbidden_words(Text r, const std::vector<std::u32string>& forbidden) {
  for (const auto& w : forbidden) {
    if (w.empty()) continue;
    for (std::size_t i = 0; i + w.size() <= r.size(); ++i)
      if (boundary_at(r, i) && ci_match_at(r, i, w) && boundary_at(r, i + w.size())) return {false};
  }
  return {true};
}

CheckResult keywords_letter_frequency(Text r, std::u32string_view letter, long long frequency, Relation rel) {
  const std::u32string l = py_lower(py_strip(letter));
  long long count = 0;
  if (l.size() == 1)  // collections.Counter(response.lower())[letter]: a longer key never matches
    for (char32_t c : r)
      if (to_lower_char(c) == l[0]) ++count;
  return {holds(rel, count, frequency)};
}

CheckResult language_response_language(Text r, const std::string& language) {
  const LanguageGuess g = detect_language(r);
  if (g.no_features) return {true, true};
  return {g.code == language, true};
}

CheckResult length_number_sentences(Text r, long long num_sentences, Relation rel) {
  const PunktResult p = punkt_sentences(r);
  const auto count = static_cast<long long>(p.sentences.size());
  return {holds(rel, count, num_sentences), p.used_ortho_heuristic && near_threshold(count, num_sentences)};
}

CheckResult length_number_paragraphs(Text r, long long num_paragraphs) {
  // re.split(r"\s?\*\*\*\s?", r)
  std::vector<Text> pieces;
  std::size_t start = 0, i = 0;
  const std::size_t n = r.size();
  auto stars = [&](std::size_t p) { return p + 3 <= n && r[p] == '*' && r[p + 1] == '*' && r[p + 2] == '*'; };
  while (i < n) {
    std::size_t m = std::u32string_view::npos;
    if (py_isspace(r[i]) && stars(i + 1)) m = i + 4;
    else if (stars(i)) m = i + 3;
    if (m == std::u32string_view::npos) {
      ++i;
      continue;
    }
    if (m < n && py_isspace(r[m])) ++m;
    pieces.push_back(r.substr(start, i - start));
    start = i = m;
  }
  pieces.push_back(r.substr(start));
  long long count = static_cast<long long>(pieces.size());
  for (std::size_t k = 0; k < pieces.size(); ++k) {
    if (!py_is_blank(pieces[k])) continue;
    if (k == 0 || k + 1 == pieces.size()) --count;
    else return {false};
  }
  return {count == num_paragraphs};
}

CheckResult length_number_words(Text r, long long num_words, Relation rel) {
  return {holds(rel, count_words(r), num_words)};
}

CheckResult length_nth_paragraph_first_word(Text r, long long num_paragraphs, long long nth,
                                            std::u32string_view first_word) {
  const auto pieces = py_split(r, U"\n\n");
  long long count = static_cast<long long>(pieces.size());
  for (auto p : pieces)
    if (py_is_blank(p)) --count;
  if (nth < 1 || nth > count) return {false};
  const Text para = py_strip(pieces[static_cast<std::size_t>(nth - 1)]);
  if (para.empty()) return {false};
  Text w = py_split_ws(para)[0];
  std::size_t b = 0;
  while (b < w.size() && w[b] == '\'') ++b;
  while (b < w.size() && w[b] == '"') ++b;
  std::u32string word;
  for (std::size_t k = b; k < w.size(); ++k) {
    const char32_t c = w[k];
    if (c == '.' || c == ',' || c == '?' || c == '!' || c == '\'' || c == '"') break;
    word.push_back(to_lower_char(c));
  }
  return {count == num_paragraphs && word == py_lower(first_word)};
}

CheckResult combination_two_responses(Text r) {
  const auto pieces = py_split(r, U"******");
  std::vector<Text> valid;
  for (std::size_t k = 0; k < pieces.size(); ++k) {
    if (py_is_blank(pieces[k])) {
      if (k != 0 && k + 1 != pieces.size()) return {false};
    } else {
      valid.push_back(pieces[k]);
    }
  }
  return {valid.size() == 2 && py_strip(valid[0]) != py_strip(valid[1])};
}

CheckResult combination_repeat_prompt(Text r, std::u32string_view prompt_to_repeat) {
  const std::u32string resp = py_lower(py_strip(r));
  const std::u32string want = py_lower(py_strip(prompt_to_repeat));
  return {resp.compare(0, want.size(), want) == 0 && resp.size() >= want.size()};
}

CheckResult startend_end_checker(Text r, std::u32string_view end_phrase) {
  const std::u32string v = py_lower(py_strip_chars(py_strip(r), U"\""));
  const std::u32string e = py_lower(py_strip(end_phrase));
  return {v.size() >= e.size() && v.compare(v.size() - e.size(), e.size(), e) == 0};
}

CheckResult startend_quotation(Text r) {
  const Text v = py_strip(r);
  return {v.size() > 1 && v.front() == '"' && v.back() == '"'};
}

CheckResult case_capital_word_frequency(Text r, long long capital_frequency, Relation rel) {
  long long n = 0;
  for (const auto& w : nltk_word_tokenize(r))
    if (py_isupper(w)) ++n;
  return {holds(rel, n, capital_frequency), near_threshold(n, capital_frequency)};
}

CheckResult case_english_capital(Text r) {
  if (!py_isupper(r)) return {false};
  const LanguageGuess g = detect_language(r);
  return {g.no_features || g.code == "en", true};
}

CheckResult case_english_lowercase(Text r) {
  if (!py_islower(r)) return {false};
  const LanguageGuess g = detect_language(r);
  return {g.no_features || g.code == "en", true};
}

CheckResult punctuation_no_comma(Text r) { return {r.find(U',') == Text::npos}; }

}  // namespace quench::eval::ifeval
