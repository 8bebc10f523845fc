// quench/eval/humaneval.h: HumanEval problems, prompts, code extraction and sandboxed execution.
//
// Format: openai/human-eval data/HumanEval.jsonl(.gz), one object per line with task_id, prompt,
// entry_point, test (canonical_solution is ignored). Two ways to ask (the same for every model):
//   completion: POST /v1/completions with the prompt text, stop at a new top-level statement
//               ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#"); the program is
//               prompt + completion (human-eval's execution.py).
//   chat:       one user message asking for the completed function in a ```python block; the
//               first fenced block (any language tag) is the code. If it defines `entry_point`
//               the program is prompt + "\n" + code (the prompt's imports and helpers stay, the
//               new definition replaces the stub); otherwise the code is taken as the body that
//               continues the prompt.
// Verdicts: syntactic = the program compiles (`compile(src, 'program.py', 'exec')` in python3);
// functional = program + test + "check(entry_point)" exits 0 within the time limit (pass@1 with
// one greedy sample).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "eval/sandbox.h"

namespace quench::eval {

/// One HumanEval problem.
struct HumanEvalProblem {
  std::string task_id, prompt, entry_point, test;
  std::string canonical_solution;  ///< optional in the file; used by `--verify-canonical` only
};

/// Loads a HumanEval JSONL (optionally .gz). Throws IoError/FormatError naming file:line and field.
std::vector<HumanEvalProblem> load_humaneval(const std::filesystem::path& path);

/// The chat user message for a problem.
std::string render_humaneval_chat_prompt(const HumanEvalProblem& p);
/// Stop strings for completion mode.
const std::vector<std::string>& humaneval_stop_sequences();

/// The first fenced code block of a chat response (without the fence lines); the whole response
/// when it has no fence; an unterminated fence runs to the end.
std::string extract_code_block(std::string_view response);

/// The program whose syntax is judged: prompt + completion (completion mode) or as described in
/// the file comment (chat mode, `code` from extract_code_block).
std::string build_humaneval_program(const HumanEvalProblem& p, std::string_view code, bool chat);

/// Outcome of running one program.
struct HumanEvalVerdict {
  bool syntactic = false;
  bool functional = false;
  bool timed_out = false;
  std::string detail;  ///< the last lines of stderr (or why it failed), truncated
};

/// Judges `program` (from build_humaneval_program) with `python` in the sandbox. Throws IoError
/// when the interpreter cannot be started.
HumanEvalVerdict judge_humaneval(const HumanEvalProblem& p, const std::string& program,
                                 const std::string& python, const SandboxOptions& sandbox);

}  // namespace quench::eval
