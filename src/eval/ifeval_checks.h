// quench/eval/ifeval_checks.h: the 25 IFEval instruction checkers as pure functions.
//
// Semantics follow google-research instruction_following_eval/instructions.py (newest revision) as
// written down, with test cases, in the shared reference ifeval-checkers.md §5. Every function takes
// the response as code points (unicode_text.h) and returns whether the instruction is followed
// (strict mode: the driver in ifeval_driver.h adds the blank-response rule and the loose variants).
// `approximate` marks verdicts that rest on a stand-in for a Python dependency (langdetect, the
// Punkt ortho_context table, NLTK's word tokenizer) and could differ from the reference.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace quench::eval::ifeval {

/// "less than" (count < N) or "at least" (count >= N), the two relations IFEval uses.
enum class Relation { kLessThan, kAtLeast };
/// Applies a relation: count < n or count >= n.
bool holds(Relation r, long long count, long long n);

/// One checker verdict.
struct CheckResult {
  bool followed = false;
  bool approximate = false;
};

using Text = std::u32string_view;

// keywords:*
CheckResult keywords_existence(Text r, const std::vector<std::u32string>& keywords);
CheckResult keywords_frequency(Text r, std::u32string_view keyword, long long frequency, Relation rel);
CheckResult keywords_forbidden_words(Text r, const std::vector<std::u32string>& forbidden);
CheckResult keywords_letter_frequency(Text r, std::u32string_view letter, long long frequency, Relation rel);
// language:response_language (langid.h stand-in for langdetect; always approximate)
CheckResult language_response_language(Text r, const std::string& language);
// length_constraints:*
CheckResult length_number_sentences(Text r, long long num_sentences, Relation rel);
CheckResult length_number_paragraphs(Text r, long long num_paragraphs);
CheckResult length_number_words(Text r, long long num_words, Relation rel);
CheckResult length_nth_paragraph_first_word(Text r, long long num_paragraphs, long long nth,
                                            std::u32string_view first_word);
// detectable_content:*
CheckResult content_number_placeholders(Text r, long long num_placeholders);
CheckResult content_postscript(Text r, std::u32string_view marker);
// detectable_format:*
CheckResult format_number_bullet_lists(Text r, long long num_bullets);
CheckResult format_constrained_response(Text r);
CheckResult format_number_highlighted_sections(Text r, long long num_highlights);
CheckResult format_multiple_sections(Text r, std::u32string_view spliter, long long num_sections);
CheckResult format_json_format(Text r);
CheckResult format_title(Text r);
// combination:*
CheckResult combination_two_responses(Text r);
CheckResult combination_repeat_prompt(Text r, std::u32string_view prompt_to_repeat);
// startend:*
CheckResult startend_end_checker(Text r, std::u32string_view end_phrase);
CheckResult startend_quotation(Text r);
// change_case:*
CheckResult case_capital_word_frequency(Text r, long long capital_frequency, Relation rel);
CheckResult case_english_capital(Text r);
CheckResult case_english_lowercase(Text r);
// punctuation:no_comma
CheckResult punctuation_no_comma(Text r);

// Counting helpers, exposed for tests.
/// Number of maximal `\w` runs (nltk RegexpTokenizer(r"\w+"), instructions_util.count_words).
long long count_words(Text r);
/// Number of non-overlapping case-insensitive occurrences of `needle` (non-empty) in `hay`.
long long count_ci(Text hay, std::u32string_view needle);

}  // namespace quench::eval::ifeval
