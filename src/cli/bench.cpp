// quench/cli/bench.cpp: `quench bench`: load generator for an OpenAI-compatible endpoint or an in-process engine.
//
//   quench bench --base-url http://127.0.0.1:8000 --num-prompts 64 --concurrency 16
//                --input-len 128 --output-len 128 [--endpoint chat] [--out result.json]
//   quench bench --model models/gemma4-tiny-it --concurrency 1 ...   (engine without HTTP)
//
// Prints a table (vLLM benchmark_serving's layout) and writes the same figures as JSON with --out.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "cli/verb.h"
#include "core/error.h"
#include "server/bench_runner.h"

namespace {

int run_bench_verb(const quench::server::BenchConfig& cfg, const std::string& out_path) {
  using namespace quench;
  server::BenchReport r = server::run_bench(cfg);
  std::fputs(r.table().c_str(), stdout);
  if (!out_path.empty()) {
    // Written to a temporary name and renamed: never a half-written result file.
    std::filesystem::path out(out_path), tmp(out_path + ".tmp");
    {
      std::ofstream f(tmp);
      if (!f) throw IoError(fmt::format("--out {}: cannot open for writing", tmp.string()));
      f << r.to_json().dump(2) << "\n";
      if (!f) throw IoError(fmt::format("--out {}: write failed", tmp.string()));
    }
    std::filesystem::rename(tmp, out);
  }
  return r.failed == 0 ? 0 : 1;
}

const bool registered = quench::cli::register_verb(
    {"bench", "Throughput and latency against an OpenAI-compatible endpoint or an in-process engine",
     [](CLI::App& app) {
       auto cfg = std::make_shared<quench::server::BenchConfig>();
       auto out = std::make_shared<std::string>();
       app.add_option("--base-url", cfg->base_url, "Endpoint, e.g. http://127.0.0.1:8000 (ours or vLLM's)");
       app.add_option("--model", cfg->model_dir, "Model directory: drive an in-process engine (no HTTP)");
       app.add_option("--served-model-name", cfg->model_name, "`model` field of requests (default: from /v1/models)");
       app.add_option("--api-key", cfg->api_key, "Bearer key for the endpoint");
       app.add_option("--endpoint", cfg->endpoint, "completions | chat")->check(CLI::IsMember({"completions", "chat"}));
       app.add_option("--num-prompts", cfg->num_prompts, "Requests to send");
       app.add_option("--concurrency", cfg->concurrency, "Clients sending at the same time");
       app.add_option("--input-len", cfg->input_len, "Prompt length (words over HTTP, tokens in-process)");
       app.add_option("--output-len", cfg->output_len, "Tokens to generate per request (ignore_eos)");
       app.add_option("--random-range-ratio", cfg->random_range_ratio,
                      "Lengths uniform in [len*(1-r), len*(1+r)]; 0 = fixed");
       app.add_option("--temperature", cfg->temperature, "Sampling temperature (0 = greedy)");
       app.add_option("--seed", cfg->seed, "Seed of the prompt generator");
       app.add_option("--timeout", cfg->timeout_s, "Per-request timeout, seconds");
       app.add_option("--max-model-len", cfg->load.engine.max_model_len, "In-process: context length");
       app.add_option("--max-num-seqs", cfg->load.engine.max_num_seqs, "In-process: running sequences at most");
       app.add_option("--max-num-batched-tokens", cfg->load.engine.max_num_batched_tokens, "In-process: tokens per step");
       app.add_option("--kv-cache-dtype", cfg->load.kv_cache_dtype, "In-process: auto | bf16 | fp8 | fp8_e4m3 | fp32");
       app.add_option("--num-kv-blocks", cfg->load.num_kv_blocks, "In-process: KV blocks per group (0 = automatic)");
       app.add_option("--out", *out, "Write the results as JSON to this file");
       return [cfg, out] { return run_bench_verb(*cfg, *out); };
     }});

}  // namespace
