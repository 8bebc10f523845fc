// quench/eval/report.h: the eval report (JSON) and the capability table.
//
// Report JSON (written by `quench eval --out`):
//   {"format": "quench-eval-report/1", "model", "base_url", "created" (UTC ISO 8601),
//    "settings": {...TaskOptions as run},
//    "tasks": {"mmlu": {"summary", "items": [{id, subject, prompt, response, finish_reason,
//                                             extracted, gold, correct}]},
//              "humaneval": {"summary", "items": [{id, prompt, response, finish_reason, extracted,
//                                                  syntactic, functional, timed_out, detail}]},
//              "ifeval": {"summary", "items": [{id, prompt, response, finish_reason, instructions:
//                          [{id, kwargs, strict, loose, approximate}], follow_all_strict,
//                          follow_all_loose}]}}}
// Table: "| model | MMLU (n) | HumanEval-syn (n) | HumanEval-fun (n) | IFEval (n) |", scores in
// percent with one decimal; IFEval is prompt-level strict accuracy; "-" where a task was not run.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace quench::eval {

/// The markdown capability table, one row per report.
std::string render_table(const std::vector<nlohmann::json>& reports);

/// Writes JSON to `path` atomically (temporary name in the same directory, then rename).
/// Throws IoError naming the path.
void write_json_atomic(const std::filesystem::path& path, const nlohmann::json& j);

/// Reads a report written by write_json_atomic; throws IoError / FormatError (not a report).
nlohmann::json read_report(const std::filesystem::path& path);

}  // namespace quench::eval
