// quench/cli/eval.cpp: `quench eval`: MMLU, HumanEval and IFEval against an OpenAI-compatible
// endpoint, written to a report; `quench eval compare A.json B.json`: paired-bootstrap deltas.
//
//   quench eval --base-url http://127.0.0.1:8000 --model NAME --tasks mmlu,humaneval,ifeval \
//       --data DIR | --data mmlu=DIR --data humaneval=FILE --data ifeval=FILE \
//       [--mmlu-per-subject 5] [--shots 0|5] [--limit N] [--concurrency 8] [--out report.json]
//   quench eval --dry-run --data DIR        (load and render every item, no server)
//   quench eval table A.json [B.json ...]   (the capability table of reports)
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include "cli/verb.h"
#include "core/error.h"
#include "eval/compare.h"
#include "eval/humaneval.h"
#include "eval/ifeval_task.h"
#include "eval/mmlu.h"
#include "eval/openai_client.h"
#include "eval/parallel.h"
#include "eval/sandbox.h"
#include "eval/report.h"
#include "eval/task_runner.h"

namespace {

namespace fs = std::filesystem;
using namespace quench;
using namespace quench::eval;

struct EvalCliOptions {
  std::string base_url, model, api_key, out, tasks = "mmlu,humaneval,ifeval", humaneval_mode = "chat";
  std::vector<std::string> data, task_max_tokens;
  int limit = 0, per_subject = 0, shots = 0, concurrency = 8, max_tokens = 0;
  double temperature = 0.0, request_timeout = 600, exec_timeout = 10;
  std::uint64_t seed = 1234;
  std::string python = "python3";
  bool dry_run = false, no_progress = false, require_netns = false, verify_canonical = false;
  // compare
  std::string cmp_a, cmp_b;
  std::vector<std::string> table_reports;
  int resamples = 10000;
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string t;
  while (std::getline(ss, t, ','))
    if (!t.empty()) out.push_back(t);
  return out;
}

// Resolves the data path of `task` from the --data values ("task=PATH" or a root directory).
fs::path data_path(const std::string& task, const std::vector<std::string>& data) {
  for (const auto& d : data) {
    const auto eq = d.find('=');
    if (eq != std::string::npos && d.substr(0, eq) == task) return d.substr(eq + 1);
  }
  static const std::map<std::string, std::vector<std::string>> kCandidates = {
      {"mmlu", {"mmlu", "."}},
      {"humaneval", {"humaneval.jsonl", "HumanEval.jsonl", "HumanEval.jsonl.gz", "humaneval/HumanEval.jsonl.gz",
                     "humaneval/HumanEval.jsonl", "humaneval/humaneval.jsonl"}},
      {"ifeval", {"ifeval.jsonl", "input_data.jsonl", "ifeval/input_data.jsonl", "ifeval/ifeval.jsonl"}}};
  for (const auto& d : data) {
    if (d.find('=') != std::string::npos) continue;
    for (const auto& c : kCandidates.at(task)) {
      const fs::path p = fs::path(d) / c;
      if (task == "mmlu") {
        if (fs::is_directory(p / "test") || (fs::is_directory(p) && [&] {
              for (const auto& e : fs::directory_iterator(p))
                if (e.path().filename().string().ends_with("_test.csv")) return true;
              return false;
            }()))
          return p;
      } else if (fs::is_regular_file(p)) {
        return p;
      }
    }
  }
  throw InvalidArgument("--data: no " + task + " data found; pass --data " + task + "=PATH or a directory holding " +
                        (task == "mmlu" ? std::string("mmlu/test/*_test.csv")
                                        : task == "humaneval" ? std::string("humaneval.jsonl or HumanEval.jsonl.gz")
                                                              : std::string("ifeval.jsonl or ifeval/input_data.jsonl")));
}

std::string utc_now() {
  char buf[32];
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int run_compare(const EvalCliOptions& o) {
  const auto a = read_report(o.cmp_a);
  const auto b = read_report(o.cmp_b);
  std::cout << render_table({a, b}) << "\n";
  const auto deltas = compare_reports(a, b, o.resamples);
  std::cout << render_compare(a.value("model", o.cmp_a) + " (" + o.cmp_a + ")",
                              b.value("model", o.cmp_b) + " (" + o.cmp_b + ")", deltas);
  return 0;
}

int run_table(const EvalCliOptions& o) {
  std::vector<nlohmann::json> reports;
  for (const auto& p : o.table_reports) reports.push_back(read_report(p));
  std::cout << render_table(reports);
  return 0;
}

int run_eval(const EvalCliOptions& o) {
  const auto tasks = split_list(o.tasks);
  if (tasks.empty()) throw InvalidArgument("--tasks: expected a comma-separated subset of mmlu,humaneval,ifeval");
  for (const auto& t : tasks)
    if (t != "mmlu" && t != "humaneval" && t != "ifeval")
      throw InvalidArgument("--tasks: unknown task '" + t + "' (expected mmlu, humaneval or ifeval)");
  if (o.shots != 0 && o.shots != 5) throw InvalidArgument("--shots must be 0 or 5, got " + std::to_string(o.shots));
  if (o.concurrency < 1) throw InvalidArgument("--concurrency must be >= 1");
  if (o.humaneval_mode != "chat" && o.humaneval_mode != "completion")
    throw InvalidArgument("--humaneval-mode must be chat or completion, got '" + o.humaneval_mode + "'");
  if (o.data.empty()) throw InvalidArgument("--data is required (a directory, or TASK=PATH per task)");
  if (!o.dry_run && (o.base_url.empty() || o.model.empty()))
    throw InvalidArgument("--base-url and --model are required (or use --dry-run)");

  TaskOptions topt;
  topt.concurrency = o.concurrency;
  if (o.max_tokens > 0) topt.max_tokens = o.max_tokens;
  for (const auto& kv : o.task_max_tokens) {
    const auto eq = kv.find('=');
    const std::string task = kv.substr(0, eq);
    if (eq == std::string::npos || (task != "mmlu" && task != "humaneval" && task != "ifeval"))
      throw InvalidArgument("--task-max-tokens '" + kv + "': expected TASK=N with TASK one of mmlu, humaneval, ifeval");
    try {
      topt.task_max_tokens[task] = std::stoi(kv.substr(eq + 1));
    } catch (const std::exception&) {
      throw InvalidArgument("--task-max-tokens '" + kv + "': N must be an integer");
    }
  }
  topt.temperature = o.temperature;
  topt.shots = o.shots;
  topt.mmlu_per_subject = o.per_subject;
  topt.limit = o.limit;
  topt.seed = o.seed;
  topt.humaneval_chat = o.humaneval_mode == "chat";
  topt.python = o.python;
  topt.sandbox.wall_seconds = o.exec_timeout;
  topt.sandbox.cpu_seconds = static_cast<unsigned>(std::max(1.0, o.exec_timeout));
  topt.sandbox.require_network_isolation = o.require_netns;
  topt.progress = !o.no_progress;

  // Load everything first: a malformed file fails before any request is sent.
  std::optional<MmluData> mmlu;
  std::vector<HumanEvalProblem> humaneval;
  std::vector<IfevalItem> ifeval;
  for (const auto& t : tasks) {
    const fs::path p = data_path(t, o.data);
    if (t == "mmlu") mmlu = load_mmlu(p);
    if (t == "humaneval") humaneval = load_humaneval(p);
    if (t == "ifeval") ifeval = load_ifeval(p);
  }

  if (o.dry_run) {
    // Render every prompt (all MMLU test questions, with 5-shot exemplars when asked).
    std::size_t chars = 0;
    if (mmlu) {
      for (const auto& [subject, qs] : mmlu->test)
        for (const auto& q : qs) {
          std::vector<MmluQuestion> shots;
          if (o.shots) {
            auto it = mmlu->dev.find(subject);
            if (it != mmlu->dev.end()) shots = it->second;
          }
          chars += render_mmlu_prompt(q, shots).size();
        }
      const auto sample = sample_mmlu(*mmlu, o.per_subject, o.seed, o.limit);
      std::printf("mmlu: %zu subjects, %zu test questions, %zu dev questions; selected %zu (per subject %d, seed %llu)\n",
                  mmlu->test.size(), mmlu->num_test(), mmlu->num_dev(), sample.size(), o.per_subject,
                  static_cast<unsigned long long>(o.seed));
    }
    if (!humaneval.empty()) {
      for (const auto& p : humaneval) chars += render_humaneval_chat_prompt(p).size();
      std::printf("humaneval: %zu problems\n", humaneval.size());
      if (o.verify_canonical) {
        // The sandbox and test harness, checked with the reference solutions (all should pass).
        std::vector<int> ok(humaneval.size(), 0);
        parallel_for(humaneval.size(), o.concurrency, "humaneval canonical", !o.no_progress, [&](int, std::size_t i) {
          const auto& p = humaneval[i];
          const auto v = judge_humaneval(p, build_humaneval_program(p, p.canonical_solution, false), o.python, topt.sandbox);
          ok[i] = v.functional;
          if (!v.functional) std::fprintf(stderr, "canonical solution of %s failed: %s\n", p.task_id.c_str(), v.detail.c_str());
        });
        int passed = 0;
        for (int x : ok) passed += x;
        std::printf("humaneval: canonical solutions pass %d/%zu (network isolation: %s)\n", passed, humaneval.size(),
                    network_namespace_available() ? "yes" : "no");
      }
    }
    if (!ifeval.empty()) {
      // Every checker runs twice: on an empty response (must fail) and on the prompt text itself.
      std::size_t inst = 0, blank_pass = 0;
      IfevalScores echo;
      for (const auto& it : ifeval) {
        inst += it.instruction_ids.size();
        for (const auto& v : judge_ifeval(it, "")) blank_pass += v.strict || v.loose;
        echo.add(judge_ifeval(it, it.prompt));
        chars += it.prompt.size();
      }
      std::printf("ifeval: %zu prompts, %zu instructions (all checkers built and run; the prompts echoed as "
                  "responses follow %zu instructions strictly)\n",
                  ifeval.size(), inst, echo.inst_strict);
      if (blank_pass) throw Error("ifeval: an empty response passed an instruction (driver bug)");
    }
    std::printf("dry run: every item loaded and rendered (%zu prompt characters); no requests sent\n", chars);
    return 0;
  }

  std::signal(SIGPIPE, SIG_IGN);
  ClientOptions copt;
  copt.base_url = o.base_url;
  copt.api_key = o.api_key;
  if (copt.api_key.empty())
    if (const char* k = std::getenv("OPENAI_API_KEY")) copt.api_key = k;
  copt.timeout_s = o.request_timeout;
  split_base_url(copt.base_url);  // validate early
  GeneratorPool pool = [&](int) -> GenerateFn {
    auto client = std::make_shared<OpenAIClient>(copt, o.model);
    return [client](const GenerationRequest& r) { return client->generate(r); };
  };

  nlohmann::json report = {{"format", "quench-eval-report/1"},
                           {"model", o.model},
                           {"base_url", o.base_url},
                           {"created", utc_now()},
                           {"settings",
                            {{"tasks", tasks},
                             {"limit", o.limit},
                             {"mmlu_per_subject", o.per_subject},
                             {"shots", o.shots},
                             {"seed", o.seed},
                             {"temperature", o.temperature},
                             {"max_tokens",
                              {{"mmlu", budget_for(topt, "mmlu", kMmluMaxTokens)},
                               {"humaneval", budget_for(topt, "humaneval", kHumanEvalMaxTokens)},
                               {"ifeval", budget_for(topt, "ifeval", kIfevalMaxTokens)}}},
                             {"humaneval_mode", o.humaneval_mode},
                             {"exec_timeout_s", o.exec_timeout},
                             {"concurrency", o.concurrency}}},
                           {"tasks", nlohmann::json::object()}};
  for (const auto& t : tasks) {
    if (t == "mmlu") report["tasks"]["mmlu"] = run_mmlu(sample_mmlu(*mmlu, o.per_subject, o.seed, o.limit), *mmlu, topt, pool);
    if (t == "humaneval") report["tasks"]["humaneval"] = run_humaneval(humaneval, topt, pool);
    if (t == "ifeval") report["tasks"]["ifeval"] = run_ifeval(ifeval, topt, pool);
  }
  if (!o.out.empty()) write_json_atomic(o.out, report);
  std::cout << render_table({report});
  if (report["tasks"].contains("ifeval")) {
    const auto& s = report["tasks"]["ifeval"]["summary"];
    std::printf("IFEval: prompt strict %.1f, inst strict %.1f, prompt loose %.1f, inst loose %.1f (%zu of %zu "
                "instruction verdicts approximate)\n",
                100 * s["prompt_level_strict_acc"].get<double>(), 100 * s["inst_level_strict_acc"].get<double>(),
                100 * s["prompt_level_loose_acc"].get<double>(), 100 * s["inst_level_loose_acc"].get<double>(),
                s["approximate_instructions"].get<std::size_t>(), s["instructions"].get<std::size_t>());
  }
  if (!o.out.empty()) std::printf("report: %s\n", o.out.c_str());
  return 0;
}

const bool registered = quench::cli::register_verb(
    {"eval", "Evaluate an OpenAI-compatible endpoint on MMLU, HumanEval and IFEval; compare two reports",
     [](CLI::App& app) -> quench::cli::VerbAction {
       auto o = std::make_shared<EvalCliOptions>();
       app.add_option("--base-url", o->base_url, "Server URL, e.g. http://127.0.0.1:8000 (with or without /v1)");
       app.add_option("--model", o->model, "Model name sent in requests (the server's served model name)");
       app.add_option("--tasks", o->tasks, "Comma-separated tasks: mmlu,humaneval,ifeval")->capture_default_str();
       app.add_option("--data", o->data,
                      "Data: a directory (mmlu/, humaneval.jsonl or HumanEval.jsonl.gz, ifeval.jsonl or "
                      "ifeval/input_data.jsonl) or TASK=PATH; repeatable");
       app.add_option("--limit", o->limit, "At most N items per task (0 = all)");
       app.add_option("--mmlu-per-subject", o->per_subject,
                      "MMLU questions per subject, seeded sample (5 = the 285-question balanced set; 0 = all)");
       app.add_option("--shots", o->shots, "MMLU exemplars from the dev split: 0 or 5")->capture_default_str();
       app.add_option("--seed", o->seed, "Seed of the MMLU subject-balanced sample")->capture_default_str();
       app.add_option("--concurrency", o->concurrency, "Requests in flight")->capture_default_str();
       app.add_option("--max-tokens", o->max_tokens, "Generation budget for every task (default: mmlu 32, humaneval 512, ifeval 1024)");
       app.add_option("--task-max-tokens", o->task_max_tokens, "Budget of one task, TASK=N (repeatable; overrides --max-tokens)");
       app.add_option("--temperature", o->temperature, "Sampling temperature")->capture_default_str();
       app.add_option("--api-key", o->api_key, "Bearer token (default: $OPENAI_API_KEY)");
       app.add_option("--out", o->out, "Write the JSON report here");
       app.add_option("--humaneval-mode", o->humaneval_mode, "chat (code block) or completion (/v1/completions)")
           ->capture_default_str();
       app.add_option("--python", o->python, "Python interpreter for HumanEval")->capture_default_str();
       app.add_option("--exec-timeout", o->exec_timeout, "Wall-clock seconds per HumanEval program")->capture_default_str();
       app.add_option("--request-timeout", o->request_timeout, "Seconds to wait for one response")->capture_default_str();
       app.add_flag("--require-network-isolation", o->require_netns,
                    "Refuse to run HumanEval programs when a network namespace cannot be created");
       app.add_flag("--dry-run", o->dry_run, "Load and render every item, send nothing");
       app.add_flag("--verify-canonical", o->verify_canonical,
                    "With --dry-run: run HumanEval's canonical solutions through the sandbox (all should pass)");
       app.add_flag("--no-progress", o->no_progress, "No progress bar");
       CLI::App* cmp = app.add_subcommand("compare", "Deltas between two reports with paired-bootstrap 95% intervals");
       cmp->add_option("a", o->cmp_a, "Baseline report (A)")->required();
       cmp->add_option("b", o->cmp_b, "Candidate report (B)")->required();
       cmp->add_option("--resamples", o->resamples, "Bootstrap resamples")->capture_default_str();
       CLI::App* table = app.add_subcommand("table", "The capability table of one or more reports");
       table->add_option("reports", o->table_reports, "Report files")->required();
       return [o, cmp, table]() {
         if (cmp->parsed()) return run_compare(*o);
         if (table->parsed()) return run_table(*o);
         return run_eval(*o);
       };
     }});

}  // namespace
