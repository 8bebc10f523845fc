// quench/eval/task_runner.cpp: MMLU, HumanEval and IFEval task loops (see task_runner.h).
#include "eval/task_runner.h"

#include <map>

#include "eval/parallel.h"

namespace quench::eval {

namespace {

template <typename T>
std::vector<T> limited(const std::vector<T>& v, int limit) {
  if (limit <= 0 || static_cast<std::size_t>(limit) >= v.size()) return v;
  return std::vector<T>(v.begin(), v.begin() + limit);
}

// One generator per worker, created lazily on that worker's thread.
struct Workers {
  explicit Workers(const GeneratorPool& pool, int n) : pool_(pool), gens_(static_cast<std::size_t>(std::max(n, 1))) {}
  GenerateFn& get(int w) {
    auto& g = gens_[static_cast<std::size_t>(w)];
    if (!g) g = pool_(w);
    return g;
  }
  const GeneratorPool& pool_;
  std::vector<GenerateFn> gens_;
};

// Calls the generator; a context-length 400 becomes an empty reply (the item scores as failed).
GenerationResult generate_or_overflow(GenerateFn& gen, const GenerationRequest& req) {
  try {
    return gen(req);
  } catch (const ContextLengthError& e) {
    return {"", "context_length_exceeded"};
  }
}

}  // namespace

int budget_for(const TaskOptions& opt, const std::string& task, int fallback) {
  auto it = opt.task_max_tokens.find(task);
  if (it != opt.task_max_tokens.end()) return it->second;
  return opt.max_tokens.value_or(fallback);
}

nlohmann::json run_mmlu(const std::vector<MmluQuestion>& questions, const MmluData& data, const TaskOptions& opt,
                        const GeneratorPool& pool) {
  std::vector<nlohmann::json> items(questions.size());
  Workers workers(pool, opt.concurrency);
  parallel_for(questions.size(), opt.concurrency, "mmlu", opt.progress, [&](int w, std::size_t i) {
    const MmluQuestion& q = questions[i];
    std::vector<MmluQuestion> shots;
    if (opt.shots > 0) {
      auto it = data.dev.find(q.subject);
      if (it != data.dev.end())
        shots.assign(it->second.begin(), it->second.begin() + std::min<std::size_t>(it->second.size(), opt.shots));
    }
    GenerationRequest req;
    req.chat = true;
    req.text = render_mmlu_prompt(q, shots);
    req.max_tokens = budget_for(opt, "mmlu", kMmluMaxTokens);
    req.temperature = opt.temperature;
    const GenerationResult res = generate_or_overflow(workers.get(w), req);
    const auto ans = extract_mmlu_answer(res.text);
    const std::string gold(1, static_cast<char>('A' + q.answer));
    items[i] = {{"id", q.id},
                {"subject", q.subject},
                {"prompt", req.text},
                {"response", res.text},
                {"finish_reason", res.finish_reason},
                {"extracted", ans ? nlohmann::json(std::string(1, *ans)) : nlohmann::json(nullptr)},
                {"gold", gold},
                {"correct", ans && *ans == gold[0]}};
  });
  std::map<std::string, std::pair<int, int>> per;  // subject -> (correct, n)
  int correct = 0, no_answer = 0;
  for (const auto& it : items) {
    auto& p = per[it["subject"].get<std::string>()];
    ++p.second;
    if (it["correct"].get<bool>()) {
      ++p.first;
      ++correct;
    }
    if (it["extracted"].is_null()) ++no_answer;
  }
  nlohmann::json per_subject = nlohmann::json::object();
  for (const auto& [s, p] : per)
    per_subject[s] = {{"accuracy", p.second ? double(p.first) / p.second : 0.0}, {"n", p.second}, {"correct", p.first}};
  const auto n = items.size();
  return {{"summary",
           {{"n", n},
            {"accuracy", n ? double(correct) / double(n) : 0.0},
            {"correct", correct},
            {"no_answer", no_answer},
            {"shots", opt.shots},
            {"subjects", per.size()},
            {"per_subject", per_subject}}},
          {"items", items}};
}

nlohmann::json run_humaneval(const std::vector<HumanEvalProblem>& problems_in, const TaskOptions& opt,
                             const GeneratorPool& pool) {
  const auto problems = limited(problems_in, opt.limit);
  std::vector<nlohmann::json> items(problems.size());
  Workers workers(pool, opt.concurrency);
  parallel_for(problems.size(), opt.concurrency, "humaneval", opt.progress, [&](int w, std::size_t i) {
    const HumanEvalProblem& p = problems[i];
    GenerationRequest req;
    req.chat = opt.humaneval_chat;
    req.text = opt.humaneval_chat ? render_humaneval_chat_prompt(p) : p.prompt;
    if (!opt.humaneval_chat) req.stop = humaneval_stop_sequences();
    req.max_tokens = budget_for(opt, "humaneval", kHumanEvalMaxTokens);
    req.temperature = opt.temperature;
    const GenerationResult res = generate_or_overflow(workers.get(w), req);
    const std::string code = opt.humaneval_chat ? extract_code_block(res.text) : res.text;
    const std::string program = build_humaneval_program(p, code, opt.humaneval_chat);
    const HumanEvalVerdict v = judge_humaneval(p, program, opt.python, opt.sandbox);
    items[i] = {{"id", p.task_id},
                {"prompt", req.text},
                {"response", res.text},
                {"finish_reason", res.finish_reason},
                {"extracted", code},
                {"syntactic", v.syntactic},
                {"functional", v.functional},
                {"timed_out", v.timed_out},
                {"detail", v.detail}};
  });
  int syn = 0, fun = 0, timeouts = 0;
  for (const auto& it : items) {
    syn += it["syntactic"].get<bool>();
    fun += it["functional"].get<bool>();
    timeouts += it["timed_out"].get<bool>();
  }
  const auto n = items.size();
  return {{"summary",
           {{"n", n},
            {"syntactic", n ? double(syn) / double(n) : 0.0},
            {"functional", n ? double(fun) / double(n) : 0.0},
            {"syntactic_count", syn},
            {"functional_count", fun},
            {"timed_out", timeouts},
            {"mode", opt.humaneval_chat ? "chat" : "completion"},
            {"network_isolated", opt.sandbox.isolate_network && network_namespace_available()}}},
          {"items", items}};
}

nlohmann::json run_ifeval(const std::vector<IfevalItem>& items_in, const TaskOptions& opt, const GeneratorPool& pool) {
  const auto& all = items_in;
  const std::size_t count = opt.limit > 0 ? std::min<std::size_t>(all.size(), opt.limit) : all.size();
  std::vector<nlohmann::json> items(count);
  std::vector<std::vector<InstructionVerdict>> verdicts(count);
  Workers workers(pool, opt.concurrency);
  parallel_for(count, opt.concurrency, "ifeval", opt.progress, [&](int w, std::size_t i) {
    const IfevalItem& it = all[i];
    GenerationRequest req;
    req.chat = true;
    req.text = it.prompt;
    req.max_tokens = budget_for(opt, "ifeval", kIfevalMaxTokens);
    req.temperature = opt.temperature;
    const GenerationResult res = generate_or_overflow(workers.get(w), req);
    verdicts[i] = judge_ifeval(it, res.text);
    nlohmann::json inst = nlohmann::json::array();
    bool all_s = true, all_l = true;
    for (std::size_t k = 0; k < verdicts[i].size(); ++k) {
      const auto& v = verdicts[i][k];
      inst.push_back({{"id", v.id}, {"kwargs", it.kwargs[k]}, {"strict", v.strict}, {"loose", v.loose},
                      {"approximate", v.approximate}});
      all_s = all_s && v.strict;
      all_l = all_l && v.loose;
    }
    items[i] = {{"id", it.key},
                {"prompt", it.prompt},
                {"response", res.text},
                {"finish_reason", res.finish_reason},
                {"instructions", inst},
                {"follow_all_strict", all_s},
                {"follow_all_loose", all_l}};
  });
  IfevalScores scores;
  for (const auto& v : verdicts) scores.add(v);
  nlohmann::json summary = scores.to_json();
  summary["n"] = count;
  return {{"summary", summary}, {"items", items}};
}

}  // namespace quench::eval
