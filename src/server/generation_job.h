// quench/server/generation_job.h: the engine requests behind one HTTP request, and their outputs.
//
// A chat request is one engine request with n sequences; a completions request with P prompts is
// P engine requests, prompt p's sequence i being choice p*n + i (vLLM's indexing). The job adds
// them, multiplexes their output handles, accumulates each choice, and aborts what is unfinished
// when it is destroyed (client gone, error), so a dropped connection always frees its KV blocks.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace quench::server {

/// Everything generated for one choice so far.
struct ChoiceState {
  std::string text;
  std::vector<int32_t> token_ids;
  std::vector<TokenLogprob> logprobs;
  std::optional<FinishReason> finish_reason;
  std::optional<std::string> stop_reason;
  int num_output_tokens = 0;
};

/// One SeqOutput delta, tagged with its choice index.
struct ChoiceDelta {
  int choice = 0;
  const SeqOutput* seq = nullptr;
};

class GenerationJob {
 public:
  /// Adds one engine request per prompt ("<id>" for one prompt, "<id>-<p>" for several).
  /// Throws ApiError 400 when the engine rejects a prompt (InvalidArgument), 503 when it is shut down;
  /// requests already added are aborted.
  GenerationJob(Engine& engine, const std::string& request_id, const std::vector<std::vector<int32_t>>& prompts,
                const SamplingParams& params);
  ~GenerationJob();
  GenerationJob(const GenerationJob&) = delete;
  GenerationJob& operator=(const GenerationJob&) = delete;

  /// Waits up to `timeout` for the next output of any unfinished request; applies it to the choice
  /// states and returns its deltas (empty on timeout). Throws ApiError 500 when the engine reports an error.
  std::vector<ChoiceDelta> next(std::chrono::milliseconds timeout);
  /// Blocks until every request finished (used by non-streaming routes).
  void wait_all();
  bool finished() const;
  /// Aborts every unfinished engine request.
  void abort();

  int n() const { return n_; }
  int num_choices() const { return static_cast<int>(choices_.size()); }
  const ChoiceState& choice(int i) const { return choices_[i]; }
  /// usage.prompt_tokens: prompt tokens of every prompt.
  int prompt_tokens() const;
  /// usage.completion_tokens: output tokens of every choice.
  int completion_tokens() const;
  /// Prompt tokens served from the prefix cache, over all prompts.
  int cached_tokens() const;
  const std::vector<std::vector<int32_t>>& prompts() const { return prompts_; }
  /// Time from construction to the first generated token, seconds (nullopt before it).
  std::optional<double> ttft_s() const { return ttft_s_; }

 private:
  struct Part {
    std::string engine_id;
    std::shared_ptr<RequestHandle> handle;
    bool finished = false;
    int num_prompt_tokens = 0;
    int num_cached_tokens = 0;
  };
  void apply(int part, RequestOutput& out, std::vector<ChoiceDelta>& deltas);

  Engine& engine_;
  int n_;
  std::vector<std::vector<int32_t>> prompts_;
  std::vector<Part> parts_;
  std::vector<ChoiceState> choices_;
  std::vector<RequestOutput> held_;  ///< outputs whose deltas were returned (kept alive for ChoiceDelta::seq)
  size_t rr_ = 0;
  std::chrono::steady_clock::time_point start_;
  std::optional<double> ttft_s_;
};

}  // namespace quench::server
