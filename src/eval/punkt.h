// quench/eval/punkt.h: NLTK's Punkt English sentence splitter and word tokenizer, as IFEval uses them.
//
// IFEval's number_sentences counts `nltk.tokenize.sent_tokenize`'s Punkt English sentences and
// capital_word_frequency counts `nltk.word_tokenize` tokens (shared reference ifeval-checkers.md §4).
// This port follows nltk/tokenize/punkt.py (3.8): candidate marks, the Punkt word regex, the
// first-pass (break / abbreviation / ellipsis) and second-pass (collocation, orthographic heuristic)
// annotations and boundary realignment, with three of the four trained tables of the English model
// (abbrev_types, collocations, sent_starters; punkt_tab/english, Apache-2.0). The fourth table,
// ortho_context (~236k chars), is not shipped: every token reads as "never seen", and a count that
// consulted the orthographic heuristic is flagged approximate. word_tokenize is a reduced port of the
// NLTK "improved Treebank" rules (punctuation, clitics, contractions): exact for the token counts of
// upper-case words except on rare quote/period layouts, and flagged approximate by the checker.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace quench::eval {

/// One Punkt sentence split of a text.
struct PunktResult {
  std::vector<std::u32string> sentences;  ///< non-empty sentence strings, in order
  bool used_ortho_heuristic = false;      ///< a decision consulted the missing ortho_context table
};

/// Splits `text` into sentences like `PunktSentenceTokenizer(english).tokenize(text)`.
PunktResult punkt_sentences(std::u32string_view text);

/// Tokens of `nltk.word_tokenize(text)` (reduced port, see file comment).
std::vector<std::u32string> nltk_word_tokenize(std::u32string_view text);

}  // namespace quench::eval
