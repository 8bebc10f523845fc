// quench/eval/task_runner.h: one benchmark task through a generator: prompts -> responses -> verdicts.
//
// The same prompts and settings go to every model: a task's prompts depend only on the data, the
// seed and these options. A task result is JSON:
//   {"summary": {...metrics, "n": N...}, "items": [{"id", "prompt", "response", "finish_reason",
//    "extracted"/"verdict" fields...}]}
// (field names in report.h's file comment).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/humaneval.h"
#include "eval/ifeval_task.h"
#include "eval/mmlu.h"
#include "eval/openai_client.h"
#include "eval/sandbox.h"

namespace quench::eval {

/// Produces a response for a request. Called concurrently from worker threads: a GeneratorPool
/// hands each worker its own.
using GenerateFn = std::function<GenerationResult(const GenerationRequest&)>;
/// Makes the generator of worker `w` (e.g. an OpenAIClient per thread).
using GeneratorPool = std::function<GenerateFn(int worker)>;

/// Settings shared by all tasks of one run (recorded in the report).
struct TaskOptions {
  int concurrency = 8;
  std::optional<int> max_tokens;      ///< overrides every task's default budget
  std::map<std::string, int> task_max_tokens;  ///< per task ("mmlu"...), overrides max_tokens
  double temperature = 0.0;
  int shots = 0;                      ///< MMLU: 0 or 5 (dev split exemplars)
  int mmlu_per_subject = 0;           ///< 0 = every question
  int limit = 0;                      ///< per task, 0 = no limit
  std::uint64_t seed = 1234;          ///< MMLU subject-balanced sampling
  bool humaneval_chat = true;         ///< chat (code block) or /v1/completions
  std::string python = "python3";
  SandboxOptions sandbox;
  bool progress = true;
};

/// Default generation budgets per task (used when TaskOptions::max_tokens is unset).
inline constexpr int kMmluMaxTokens = 32;
inline constexpr int kHumanEvalMaxTokens = 512;
inline constexpr int kIfevalMaxTokens = 1024;

/// The generation budget of `task`: task_max_tokens, else max_tokens, else `fallback`.
int budget_for(const TaskOptions& opt, const std::string& task, int fallback);

/// MMLU on `questions` (from sample_mmlu); `data` provides dev exemplars for shots = 5.
/// Summary: accuracy, n, correct, no_answer, per_subject {subject: {accuracy, n}}.
nlohmann::json run_mmlu(const std::vector<MmluQuestion>& questions, const MmluData& data, const TaskOptions& opt,
                        const GeneratorPool& gen);

/// HumanEval on `problems`. Summary: syntactic, functional (pass@1), n, counts, mode.
nlohmann::json run_humaneval(const std::vector<HumanEvalProblem>& problems, const TaskOptions& opt,
                             const GeneratorPool& gen);

/// IFEval on `items`. Summary: IfevalScores::to_json() plus n.
nlohmann::json run_ifeval(const std::vector<IfevalItem>& items, const TaskOptions& opt, const GeneratorPool& gen);

}  // namespace quench::eval
