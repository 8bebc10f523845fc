// quench/eval/punkt.cpp: Punkt English sentence splitting and word tokenization (see punkt.h).
// Algorithm: nltk/tokenize/punkt.py (NLTK 3.8) PunktSentenceTokenizer.span_tokenize and
// nltk/tokenize/destructive.py NLTKWordTokenizer, re-implemented over code points.
#include "eval/punkt.h"

#include <algorithm>
#include <optional>

#include "eval/punkt_english_tables.h"
#include "eval/unicode_text.h"

namespace quench::eval {

namespace {

constexpr std::u32string_view kNonWord = U")\";}]*:@'({[!?";  // punkt _re_non_word_chars
constexpr std::u32string_view kWordStartExcluded = U"(\"`{[:;&#*@)}]-,";

bool in(std::u32string_view set, char32_t c) { return set.find(c) != std::u32string_view::npos; }
bool ascii_ws(char32_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0x0B || c == 0x0C; }

bool table_has(std::u32string_view word, const std::string_view* begin, const std::string_view* end) {
  const std::string w = utf8_encode(word);
  return std::find(begin, end, std::string_view(w)) != end;
}
bool is_abbrev(std::u32string_view w) {
  return table_has(w, std::begin(punkt_tables::kAbbrevTypes), std::end(punkt_tables::kAbbrevTypes));
}
bool is_sent_starter(std::u32string_view w) {
  return table_has(w, std::begin(punkt_tables::kSentStarters), std::end(punkt_tables::kSentStarters));
}
bool is_collocation(std::u32string_view a, std::u32string_view b) {
  const std::string sa = utf8_encode(a), sb = utf8_encode(b);
  for (const auto& [x, y] : punkt_tables::kCollocations)
    if (x == sa && y == sb) return true;
  return false;
}

// Length of a MultiChar match (`-{2,}` | `\.{2,}` | `(?:\.\s){2,}\.`) at p, or 0.
std::size_t multi_char_at(std::u32string_view s, std::size_t p) {
  const std::size_t n = s.size();
  if (p + 1 < n && s[p] == '-' && s[p + 1] == '-') {
    std::size_t q = p;
    while (q < n && s[q] == '-') ++q;
    return q - p;
  }
  if (p + 1 < n && s[p] == '.' && s[p + 1] == '.') {
    std::size_t q = p;
    while (q < n && s[q] == '.') ++q;
    return q - p;
  }
  std::size_t reps = 0, q = p;
  while (q + 1 < n && s[q] == '.' && py_isspace(s[q + 1])) {
    ++reps;
    q += 2;
  }
  if (reps >= 2 && q < n && s[q] == '.') return q + 1 - p;
  if (reps >= 3) return (reps - 1) * 2 + 1;  // backtrack one repetition: its '.' closes the match
  return 0;
}

// The Punkt word regex (_word_tokenize_fmt), findall over one line.
std::vector<std::u32string> punkt_word_tokens(std::u32string_view s) {
  std::vector<std::u32string> out;
  const std::size_t n = s.size();
  std::size_t p = 0;
  while (p < n) {
    if (py_isspace(s[p])) {
      ++p;
      continue;
    }
    if (std::size_t m = multi_char_at(s, p)) {
      out.emplace_back(s.substr(p, m));
      p += m;
      continue;
    }
    if (!in(kWordStartExcluded, s[p])) {
      std::size_t q = p + 1;
      for (;; ++q) {
        if (q >= n || py_isspace(s[q]) || in(kNonWord, s[q]) || multi_char_at(s, q)) break;
        if (s[q] == ',' && (q + 1 >= n || py_isspace(s[q + 1]) || in(kNonWord, s[q + 1]) || multi_char_at(s, q + 1)))
          break;
      }
      out.emplace_back(s.substr(p, q - p));
      p = q;
      continue;
    }
    out.emplace_back(s.substr(p, 1));
    ++p;
  }
  return out;
}

// ^-?[\.,]?\d[\d,\.-]*\.?$
bool is_numeric_type(std::u32string_view t) {
  std::size_t i = 0;
  if (i < t.size() && t[i] == '-') ++i;
  if (i < t.size() && (t[i] == '.' || t[i] == ',')) ++i;
  if (i >= t.size() || !py_is_digit(t[i])) return false;
  ++i;
  while (i < t.size() && (py_is_digit(t[i]) || t[i] == ',' || t[i] == '.' || t[i] == '-')) ++i;
  return i == t.size();  // a final '.' is already covered by the class
}

struct Token {
  std::u32string tok;
  std::u32string type;
  bool sentbreak = false, abbr = false, ellipsis = false;

  explicit Token(std::u32string t) : tok(std::move(t)) {
    type = py_lower(tok);
    if (is_numeric_type(type)) type = U"##number##";
  }
  std::u32string type_no_period() const {
    return (type.size() > 1 && type.back() == '.') ? type.substr(0, type.size() - 1) : type;
  }
  std::u32string type_no_sentperiod() const { return sentbreak ? type_no_period() : type; }
  bool first_upper() const { return !tok.empty() && is_upper_char(tok[0]); }
  bool first_lower() const { return !tok.empty() && is_lower_char(tok[0]); }
  bool period_final() const { return !tok.empty() && tok.back() == '.'; }
  bool is_initial() const { return tok.size() == 2 && py_is_word(tok[0]) && !py_is_digit(tok[0]) && tok[1] == '.'; }
  bool is_ellipsis_tok() const {
    return tok.size() >= 2 && std::all_of(tok.begin(), tok.end(), [](char32_t c) { return c == '.'; });
  }
};

enum class Ortho { kFalse, kTrue, kUnknown };

class SentenceSplitter {
 public:
  bool used_ortho = false;

  // _ortho_heuristic with an empty ortho_context: every type reads as "never seen".
  Ortho ortho_heuristic(const Token& t) {
    if (t.tok.size() == 1 && in(U";:,.!?", t.tok[0])) return Ortho::kFalse;
    used_ortho = true;
    if (t.first_lower()) return Ortho::kFalse;  // (ortho & UC) or not (ortho & BEG_LC) is true for 0
    return Ortho::kUnknown;
  }

  void first_pass(Token& t) {
    const std::u32string& tok = t.tok;
    if (tok == U"." || tok == U"?" || tok == U"!") {
      t.sentbreak = true;
    } else if (t.is_ellipsis_tok()) {
      t.ellipsis = true;
    } else if (t.period_final() && !(tok.size() >= 2 && tok[tok.size() - 2] == '.')) {
      const std::u32string stem = py_lower(std::u32string_view(tok).substr(0, tok.size() - 1));
      const std::size_t dash = stem.rfind('-');
      const std::u32string last = dash == std::u32string::npos ? stem : stem.substr(dash + 1);
      if (is_abbrev(stem) || is_abbrev(last)) t.abbr = true;
      else t.sentbreak = true;
    }
  }

  void second_pass(Token& t1, const Token& t2) {
    if (!t1.period_final()) return;
    const std::u32string typ = t1.type_no_period();
    const std::u32string next_typ = t2.type_no_sentperiod();
    const bool initial = t1.is_initial();
    if (is_collocation(typ, next_typ)) {
      t1.sentbreak = false;
      t1.abbr = true;
      return;
    }
    if ((t1.abbr || t1.ellipsis) && !initial) {
      const Ortho o = ortho_heuristic(t2);
      if (o == Ortho::kTrue) {
        t1.sentbreak = true;
        return;
      }
      if (t2.first_upper() && is_sent_starter(next_typ)) {
        t1.sentbreak = true;
        return;
      }
    }
    if (initial || typ == U"##number##") {
      const Ortho o = ortho_heuristic(t2);
      if (o == Ortho::kFalse) {
        t1.sentbreak = false;
        t1.abbr = true;
        return;
      }
      if (o == Ortho::kUnknown && initial && t2.first_upper()) {  // and never seen lowercase
        t1.sentbreak = false;
        t1.abbr = true;
      }
    }
  }

  bool text_contains_sentbreak(std::u32string_view context) {
    std::vector<Token> toks;
    for (auto line : py_split(context, U"\n")) {
      if (py_is_blank(line)) continue;
      for (auto& w : punkt_word_tokens(line)) toks.emplace_back(std::move(w));
    }
    for (auto& t : toks) first_pass(t);
    for (std::size_t i = 0; i + 1 < toks.size(); ++i) second_pass(toks[i], toks[i + 1]);
    bool found = false;
    for (const auto& t : toks) {
      if (found) return true;
      if (t.sentbreak) found = true;
    }
    return false;
  }
};

struct Candidate {
  std::size_t mark = 0;      // index of the . ? ! character
  std::size_t end = 0;       // match.end() == mark + 1
  std::size_t after_end = 0; // end of after_tok
  std::optional<std::size_t> next_tok;  // start of next_tok when the whitespace branch matched
};

// _match_potential_end_contexts: (match, context) pairs, skipping overlapping words.
std::vector<std::pair<Candidate, std::u32string>> potential_ends(std::u32string_view s) {
  std::vector<Candidate> matches;
  const std::size_t n = s.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (s[i] != '.' && s[i] != '?' && s[i] != '!') continue;
    if (i + 1 >= n) continue;
    Candidate c{i, i + 1, 0, std::nullopt};
    if (in(kNonWord, s[i + 1])) {
      c.after_end = i + 2;
    } else if (py_isspace(s[i + 1])) {
      std::size_t q = i + 1;
      while (q < n && py_isspace(s[q])) ++q;
      if (q >= n) continue;
      c.next_tok = q;
      while (q < n && !py_isspace(s[q])) ++q;
      c.after_end = q;
    } else {
      continue;
    }
    matches.push_back(c);
  }
  std::vector<std::pair<Candidate, std::u32string>> out;
  std::size_t prev_start = 0, prev_stop = 0;
  const Candidate* prev = nullptr;
  auto context_of = [&](const Candidate& m, std::size_t a, std::size_t b) {
    std::u32string ctx(s.substr(a, b - a));
    ctx += s.substr(m.mark, m.after_end - m.mark);
    return ctx;
  };
  for (const auto& m : matches) {
    std::size_t last_ws = 0;  // _get_last_whitespace_index over text[prev_stop:m.mark]
    for (std::size_t k = m.mark; k > prev_stop; --k) {
      if (ascii_ws(s[k - 1])) {
        last_ws = k - 1 - prev_stop;
        break;
      }
    }
    std::size_t word_start = last_ws ? last_ws + prev_stop + 1 : prev_start;
    if (prev && prev_stop <= word_start) out.emplace_back(*prev, context_of(*prev, prev_start, prev_stop));
    prev = &m;
    prev_start = word_start;
    prev_stop = m.mark;
  }
  if (prev) out.emplace_back(*prev, context_of(*prev, prev_start, prev_stop));
  return out;
}

// Length of re_boundary_realignment (`["')\]}]+?(?:\s+|(?=--)|$)`) at the start of s, with
// the length of its rstripped match, or nullopt.
std::optional<std::pair<std::size_t, std::size_t>> realign_match(std::u32string_view s) {
  for (std::size_t k = 1; k <= s.size(); ++k) {
    if (!in(U"\"')]}", s[k - 1])) return std::nullopt;
    if (k < s.size() && py_isspace(s[k])) {
      std::size_t q = k;
      while (q < s.size() && py_isspace(s[q])) ++q;
      return std::make_pair(q, k);
    }
    if (s.substr(k, 2) == U"--" || k == s.size()) return std::make_pair(k, k);
  }
  return std::nullopt;
}

}  // namespace

PunktResult punkt_sentences(std::u32string_view text) {
  SentenceSplitter sp;
  std::vector<std::pair<std::size_t, std::size_t>> slices;
  std::size_t last_break = 0;
  for (const auto& [m, ctx] : potential_ends(text)) {
    if (!sp.text_contains_sentbreak(ctx)) continue;
    slices.emplace_back(last_break, m.end);
    last_break = m.next_tok ? *m.next_tok : m.end;
  }
  slices.emplace_back(last_break, py_rstrip(text).size());

  PunktResult r;
  r.used_ortho_heuristic = sp.used_ortho;
  std::size_t realign = 0;
  for (std::size_t i = 0; i < slices.size(); ++i) {
    std::size_t a = slices[i].first + realign, b = slices[i].second;
    if (i + 1 == slices.size()) {
      if (a < b) r.sentences.emplace_back(text.substr(a, b - a));
      continue;
    }
    const auto& next = slices[i + 1];
    const std::u32string_view next_text =
        next.first < next.second ? text.substr(next.first, next.second - next.first) : std::u32string_view();
    if (auto m = realign_match(next_text)) {
      const std::size_t stop = next.first + m->second;
      if (a < stop) r.sentences.emplace_back(text.substr(a, stop - a));
      realign = m->first;
    } else {
      realign = 0;
      if (a < b) r.sentences.emplace_back(text.substr(a, b - a));
    }
  }
  return r;
}

namespace {

// Splits off a clitic ('s 'm 'd 'll 're 've n't, any case) or a bare trailing "'" from a token.
void push_with_clitics(std::u32string tok, std::vector<std::u32string>& out) {
  static const std::u32string_view kClitics[] = {U"n't", U"'ll", U"'re", U"'ve", U"'s", U"'m", U"'d"};
  static const std::u32string_view kSplits[][3] = {
      {U"cannot", U"can", U"not"}, {U"d'ye", U"d'", U"ye"},   {U"gimme", U"gim", U"me"},
      {U"gonna", U"gon", U"na"},   {U"gotta", U"got", U"ta"}, {U"lemme", U"lem", U"me"},
      {U"more'n", U"more", U"'n"}, {U"wanna", U"wan", U"na"}, {U"'tis", U"'t", U"is"},
      {U"'twas", U"'t", U"was"}};
  const std::u32string low = py_lower(tok);
  for (const auto& sp : kSplits) {
    if (low == sp[0]) {
      out.push_back(tok.substr(0, sp[1].size()));
      out.push_back(tok.substr(sp[1].size()));
      return;
    }
  }
  for (auto c : kClitics) {
    if (low.size() > c.size() && low.compare(low.size() - c.size(), c.size(), c) == 0) {
      out.push_back(tok.substr(0, tok.size() - c.size()));
      out.push_back(tok.substr(tok.size() - c.size()));
      return;
    }
  }
  if (tok.size() > 1 && tok.back() == '\'' && tok[tok.size() - 2] != '\'') {
    out.push_back(tok.substr(0, tok.size() - 1));
    out.push_back(U"'");
    return;
  }
  out.push_back(std::move(tok));
}

}  // namespace

std::vector<std::u32string> nltk_word_tokenize(std::u32string_view text) {
  std::vector<std::u32string> out;
  for (const auto& sentence : punkt_sentences(text).sentences) {
    // Pad punctuation with spaces (the destructive.py regex rules, reduced), then split.
    std::u32string padded;
    const std::u32string_view s = sentence;
    // Sentence-final period (with trailing closing brackets/quotes) is split off.
    std::size_t final_period = std::u32string::npos;
    {
      std::size_t e = py_rstrip(s).size();
      while (e > 0 && in(U"]})>\"'", s[e - 1])) --e;
      if (e > 0 && s[e - 1] == '.' && !(e > 1 && s[e - 2] == '.')) final_period = e - 1;
    }
    for (std::size_t i = 0; i < s.size(); ++i) {
      const char32_t c = s[i];
      const bool next_digit = i + 1 < s.size() && py_is_digit(s[i + 1]);
      if (i == final_period || in(U";@#$%&?!*[](){}<>\"`«»“”‘’„", c) ||
          ((c == ',' || c == ':') && !next_digit)) {
        padded += U' ';
        padded += c;
        padded += U' ';
      } else if ((c == '.' && i + 1 < s.size() && s[i + 1] == '.') || (c == '-' && i + 1 < s.size() && s[i + 1] == '-')) {
        std::size_t j = i;
        while (j < s.size() && s[j] == c) ++j;
        padded += U' ';
        padded += s.substr(i, j - i);
        padded += U' ';
        i = j - 1;
      } else {
        padded += c;
      }
    }
    for (auto w : py_split_ws(padded)) push_with_clitics(std::u32string(w), out);
  }
  return out;
}

}  // namespace quench::eval
