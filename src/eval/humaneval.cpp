// quench/eval/humaneval.cpp: HumanEval loading, prompts, extraction and judging (see humaneval.h).
#include "eval/humaneval.h"

#include <set>

#include "core/error.h"
#include "eval/data_file.h"

namespace quench::eval {

std::vector<HumanEvalProblem> load_humaneval(const std::filesystem::path& path) {
  std::vector<HumanEvalProblem> out;
  std::set<std::string> seen;
  for_each_jsonl(path, [&](const nlohmann::json& rec, const std::string& where) {
    HumanEvalProblem p;
    p.task_id = json_string_field(rec, "task_id", where);
    p.prompt = json_string_field(rec, "prompt", where);
    p.entry_point = json_string_field(rec, "entry_point", where);
    p.test = json_string_field(rec, "test", where);
    if (rec.contains("canonical_solution")) p.canonical_solution = json_string_field(rec, "canonical_solution", where);
    if (p.entry_point.empty()) throw FormatError(where + ": field 'entry_point' is empty");
    if (!seen.insert(p.task_id).second) throw FormatError(where + ": duplicate task_id '" + p.task_id + "'");
    out.push_back(std::move(p));
  });
  if (out.empty()) throw FormatError(path.string() + ": no HumanEval problems");
  return out;
}

std::string render_humaneval_chat_prompt(const HumanEvalProblem& p) {
  return "Complete the following Python function. Reply with the complete function (including the "
         "signature and any imports it needs) in one ```python code block.\n\n```python\n" +
         p.prompt + "```";
}

const std::vector<std::string>& humaneval_stop_sequences() {
  static const std::vector<std::string> s = {"\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#"};
  return s;
}

std::string extract_code_block(std::string_view r) {
  const std::size_t open = r.find("```");
  if (open == std::string_view::npos) return std::string(r);
  std::size_t body = r.find('\n', open);
  if (body == std::string_view::npos) return "";
  ++body;
  std::size_t close = r.find("\n```", body - 1);
  if (close == std::string_view::npos) return std::string(r.substr(body));
  if (close < body) return "";  // "```python\n```": an empty block
  return std::string(r.substr(body, close + 1 - body));
}

namespace {

bool defines(std::string_view code, const std::string& name) {
  const std::string needle = "def " + name + "(";
  for (std::size_t p = code.find(needle); p != std::string_view::npos; p = code.find(needle, p + 1)) {
    std::size_t ls = p;
    while (ls > 0 && code[ls - 1] != '\n') --ls;
    const std::string_view before = code.substr(ls, p - ls);
    if (before.find_first_not_of(" \t") == std::string_view::npos || before == "async ") return true;
  }
  return false;
}

}  // namespace

std::string build_humaneval_program(const HumanEvalProblem& p, std::string_view code, bool chat) {
  if (chat && defines(code, p.entry_point)) return p.prompt + "\n" + std::string(code) + "\n";
  return p.prompt + std::string(code) + "\n";
}

namespace {

std::string tail_lines(const std::string& s, std::size_t max_chars) {
  if (s.size() <= max_chars) return s;
  return "..." + s.substr(s.size() - max_chars);
}

}  // namespace

HumanEvalVerdict judge_humaneval(const HumanEvalProblem& p, const std::string& program, const std::string& python,
                                 const SandboxOptions& sandbox) {
  HumanEvalVerdict v;
  // Syntactic: compile only (no code runs).
  SandboxOptions compile_opt = sandbox;
  compile_opt.wall_seconds = std::min(sandbox.wall_seconds, 10.0);
  const SandboxResult c = run_sandboxed(
      {python, "-I", "-c",
       "import sys\nsrc = open('program.py', encoding='utf-8').read()\ncompile(src, 'program.py', 'exec')\n"},
      "", {{"program.py", program}}, compile_opt);
  if (!c.started) throw IoError("humaneval: cannot start '" + python + "' (set --python)");
  if (c.timed_out) {
    v.detail = "compile timed out";
    return v;
  }
  v.syntactic = c.exit_code == 0;
  if (!v.syntactic) {
    v.detail = tail_lines(c.stderr_text, 600);
    return v;
  }
  // Functional: the program, the tests and the call of check().
  const std::string full = program + "\n\n" + p.test + "\n\ncheck(" + p.entry_point + ")\n";
  const SandboxResult r = run_sandboxed({python, "-I", "program.py"}, "", {{"program.py", full}}, sandbox);
  v.timed_out = r.timed_out;
  v.functional = r.exit_code == 0 && !r.timed_out;
  if (r.timed_out) v.detail = "timed out after " + std::to_string(sandbox.wall_seconds) + " s";
  else if (!v.functional)
    v.detail = (r.term_signal ? "killed by signal " + std::to_string(r.term_signal) + "; " : std::string()) +
               tail_lines(r.stderr_text, 600);
  return v;
}

}  // namespace quench::eval
