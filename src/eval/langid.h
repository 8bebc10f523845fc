// quench/eval/langid.h: a small language identifier standing in for langdetect in IFEval.
//
// IFEval's response_language and english_capital/english_lowercase call `langdetect.detect`
// (shared reference ifeval-checkers.md §5-6), an unseeded n-gram Bayes model over 55 profiles that
// quench does not ship. This stand-in decides in two steps: (1) the dominant script of the letters
// (Unicode block ranges); a script used by one language in langdetect's set answers directly
// (Bengali -> bn, Gurmukhi -> pa, Gujarati -> gu, Tamil -> ta, Telugu -> te, Kannada -> kn,
// Malayalam -> ml, Thai -> th, Hangul -> ko, Kana -> ja, Greek -> el, Hebrew -> he); (2) within a
// shared script (Latin, Cyrillic, Arabic, Devanagari, Han) a vote of language-specific letters and
// stopword profiles (short lists of each language's most frequent function words). Its answers are
// langdetect codes ("en", "zh-cn"). Limitation: verdicts are approximate by construction (the
// reference itself is nondeterministic on short texts); texts with no stopword hit in a Latin
// script come back "unknown".
#pragma once

#include <string>
#include <string_view>

namespace quench::eval {

/// Outcome of detect_language().
struct LanguageGuess {
  std::string code;         ///< langdetect code ("en", "ru", "zh-cn") or "unknown"
  bool no_features = false; ///< no letters at all: langdetect raises here (IFEval then passes)
};

/// Guesses the language of UTF-8 text `text`. Never throws.
LanguageGuess detect_language(std::u32string_view text);

}  // namespace quench::eval
