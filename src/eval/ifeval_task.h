// quench/eval/ifeval_task.h: IFEval prompts, the strict/loose driver and the metrics.
//
// Driver and metrics: google-research evaluation_lib.py as written down in the shared reference
// ifeval-checkers.md §2. Strict: followed iff the stripped response is non-blank and the checker
// passes on the unstripped response. Loose: the same over 8 variants (as is, '*' removed, first /
// last / both lines dropped, each also with '*' removed); followed if any non-blank variant passes.
// Prompt-level accuracy: prompts with every instruction followed / prompts. Instruction-level:
// followed instructions / instructions (pooled).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/ifeval_registry.h"

namespace quench::eval {

/// One IFEval prompt with its bound checkers.
struct IfevalItem {
  std::string key;  ///< the "key" field, as text
  std::string prompt;
  std::vector<std::string> instruction_ids;
  std::vector<nlohmann::json> kwargs;            ///< per instruction, nulls dropped
  std::vector<ifeval::Checker> checkers;         ///< per instruction
};

/// Loads input_data.jsonl (or the HF copy with null-padded kwargs). Every checker is built, so a
/// bad id or kwargs fails here: FormatError "FILE:LINE: kwargs[i]: ...".
std::vector<IfevalItem> load_ifeval(const std::filesystem::path& path);

/// Verdict for one instruction of one response.
struct InstructionVerdict {
  std::string id;
  bool strict = false;
  bool loose = false;
  bool approximate = false;  ///< a stand-in (language id, Punkt tables, word tokenizer) decided it
};

/// Judges `response` (UTF-8) against every instruction of `item`.
std::vector<InstructionVerdict> judge_ifeval(const IfevalItem& item, std::string_view response);

/// The 8 loose-mode variants of a response, in the reference's order (code points).
std::vector<std::u32string> loose_variants(std::u32string_view response);

/// Accumulated IFEval metrics.
struct IfevalScores {
  std::size_t prompts = 0, instructions = 0;
  std::size_t prompt_strict = 0, prompt_loose = 0, inst_strict = 0, inst_loose = 0;
  std::size_t approximate_prompts = 0, approximate_instructions = 0;
  void add(const std::vector<InstructionVerdict>& verdicts);
  /// {"prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc",
  ///  "inst_level_loose_acc", counts...} (lm-eval names), accuracies as fractions.
  nlohmann::json to_json() const;
};

}  // namespace quench::eval
