// quench/server/bench_runner.h: the load generator behind `quench bench`.
//
// Sends `num_prompts` requests from `concurrency` client threads (each starts its next request as
// soon as its previous one finished, as vLLM's benchmark with --max-concurrency), streaming, with
// ignore_eos so every request generates its output length. Targets: any OpenAI-compatible
// endpoint (ours or vLLM's) at base_url, or an in-process engine (model_dir, no HTTP).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "server/bench_report.h"
#include "server/engine_loader.h"

namespace quench::server {

struct BenchConfig {
  std::string base_url;          ///< e.g. http://127.0.0.1:8000 (HTTP mode)
  std::string model_dir;         ///< in-process mode when set
  std::string endpoint = "completions";  ///< completions | chat
  std::string model_name;        ///< `model` field; empty = the first id of GET /v1/models
  std::string api_key;
  int num_prompts = 32;
  int concurrency = 1;
  int input_len = 128;           ///< prompt length: words over HTTP (usage reports tokens), tokens in-process
  int output_len = 128;          ///< max_tokens (with ignore_eos)
  double random_range_ratio = 0; ///< lengths uniform in [len*(1-r), len*(1+r)] (vLLM's random dataset)
  double temperature = 0.0;
  uint64_t seed = 0;
  double timeout_s = 600;        ///< per request
  EngineLoadOptions load;        ///< in-process engine options
};

/// One generated prompt: its text and the output length to request.
struct BenchPrompt {
  std::string text;
  int input_len = 0;
  int output_len = 0;
};

/// Deterministic prompts from `seed`: `input_len` words each from a fixed English word list, a
/// per-prompt prefix so prompts differ from their first word (no accidental prefix-cache hits).
std::vector<BenchPrompt> make_bench_prompts(const BenchConfig& cfg);

/// Runs the benchmark. Throws InvalidArgument for bad options (naming the flag), IoError when the
/// endpoint cannot be reached before the run starts.
BenchReport run_bench(const BenchConfig& cfg);

}  // namespace quench::server
