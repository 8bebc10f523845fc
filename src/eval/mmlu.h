// quench/eval/mmlu.h: MMLU data (both CSV layouts), balanced sampling, the prompt, answer extraction.
//
// Layouts (shared datasets README): the original hendrycks/test CSVs have no header and a letter
// answer (A-D); the cais/mmlu-style files have the header `question,choice0,choice1,choice2,choice3,
// answer` and an index answer (0 = A). Each file is SUBJECT_test.csv / SUBJECT_dev.csv, either in
// DIR/test/ and DIR/dev/ or directly in DIR. The prompt follows lm-evaluation-harness'
// `mmlu` task format ("The following are multiple choice questions (with answers) about SUBJECT.",
// question, "A. ..." x4, "Answer:"), sent as one chat user message with an instruction to answer
// with the letter; `--shots 5` prepends the subject's 5 dev exemplars with their answers.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace quench::eval {

/// One MMLU question. `answer` is 0..3 (A..D).
struct MmluQuestion {
  std::string id;       ///< "SUBJECT/test/ROW" (ROW counts data rows from 0)
  std::string subject;  ///< file stem, e.g. "abstract_algebra"
  std::string question;
  std::array<std::string, 4> choices;
  int answer = 0;
};

/// All questions by subject (sorted by name), test and dev splits.
struct MmluData {
  std::map<std::string, std::vector<MmluQuestion>> test;
  std::map<std::string, std::vector<MmluQuestion>> dev;
  std::size_t num_test() const;
  std::size_t num_dev() const;
};

/// Parses RFC 4180 CSV (quoted fields with "" escapes and embedded newlines, CRLF or LF).
/// Throws FormatError naming `where` and the row for an unterminated quote.
std::vector<std::vector<std::string>> parse_csv(std::string_view text, const std::string& where);

/// Parses one MMLU CSV file's text (either layout); `subject`/`split` name the ids.
/// Throws FormatError "FILE:row N: ..." for a row without 6 fields or an answer outside A-D / 0-3.
std::vector<MmluQuestion> parse_mmlu_csv(std::string_view text, const std::string& subject,
                                         const std::string& split, const std::string& where);

/// Loads every *_test.csv (required) and *_dev.csv (optional) under `dir`. Throws IoError/FormatError.
MmluData load_mmlu(const std::filesystem::path& dir);

/// Deterministic subject-balanced sample: per subject (name order), a seeded Fisher-Yates
/// shuffle (splitmix64 stream of `seed` and the subject name) keeps `per_subject` questions
/// (all when 0 or more than there are), restored to file order. `limit` > 0 then keeps the first
/// `limit` of the concatenation.
std::vector<MmluQuestion> sample_mmlu(const MmluData& data, int per_subject, std::uint64_t seed, int limit);

/// The user message for `q`; `shots` (may be empty) are the few-shot exemplars.
std::string render_mmlu_prompt(const MmluQuestion& q, const std::vector<MmluQuestion>& shots);

/// The answer letter in a response: the first standalone A-D after "answer" (any case), else the
/// response's single standalone letter A-D (after markup such as "**", "(", ")" is stripped), else
/// a leading "B." / "(B)" / "B)" option label. nullopt when none is found.
std::optional<char> extract_mmlu_answer(std::string_view response);

}  // namespace quench::eval
