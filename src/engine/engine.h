// quench/engine/engine.h: the serving engine: request queue, engine-loop thread, outputs.
//
// Data flow (../shared/design.md): add_request() validates and enqueues; one engine thread owns the
// Scheduler, the KV cache manager and the ModelRunner; each step it schedules a batch under the
// token budget (continuous batching, chunked prefill, preemption by recompute), runs the backend,
// samples, detokenizes, checks stops and pushes a RequestOutput delta to each request's handle.
// HTTP threads only call add_request / abort / metrics and read their RequestHandle.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"         // ModelRunner
#include "engine/engine_metrics.h"   // EngineMetrics
#include "engine/request_handle.h"   // RequestHandle
#include "engine/request_output.h"   // RequestOutput, SeqOutput, FinishReason
#include "engine/sampling_params.h"  // SamplingParams

namespace quench {

class Tokenizer;          // src/tokenizer/tokenizer.h
struct GenerationConfig;  // src/tokenizer/generation_config.h

/// Scheduler limits (vLLM's engine arguments of the same names).
struct EngineConfig {
  int max_num_seqs = 256;             ///< --max-num-seqs: sequences in the running batch at most
  int max_model_len = 0;              ///< --max-model-len: prompt + output tokens; 0 = model max_position_embeddings
  int max_num_batched_tokens = 2048;  ///< --max-num-batched-tokens: tokens per forward step
  bool enable_prefix_caching = true;  ///< --enable-prefix-caching
  bool enable_chunked_prefill = true; ///< --enable-chunked-prefill: prompts longer than the budget split across steps
  uint64_t seed = 0;                  ///< --seed: RNG seed of requests without their own
  int num_sampler_threads = 0;        ///< threads sampling a step's rows in parallel; 0 = min(8, cores)
  /// Sample on the backend's device (ModelRunner::execute_sample) when it supports it and no request
  /// of the step needs top-N logprobs; otherwise the logits come to the host (CPU Sampler).
  bool device_sampling = true;
};

class Engine {
 public:
  /// Takes the backend (whose KV cache is already allocated) and the tokenizer. `tok` may be null
  /// (token ids only): outputs then carry no text and requests with stop strings are rejected. Throws
  /// InvalidArgument when cfg is out of range (max_num_seqs < 1, max_model_len above the model's,
  /// max_num_batched_tokens < 1, or, without chunked prefill, below max_model_len; a KV cache too
  /// small for one sequence of max_model_len tokens).
  Engine(std::unique_ptr<ModelRunner> runner, std::shared_ptr<const Tokenizer> tok, GenerationConfig gen,
         EngineConfig cfg);
  ~Engine();  ///< shutdown(true) if still running
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  /// Starts the engine-loop thread (owns scheduler + runner). Idempotent.
  void start();
  /// Stops accepting requests; when abort_running, aborts every request (finish_reason abort),
  /// else lets running and waiting requests finish; then joins the thread.
  void shutdown(bool abort_running);

  /// Enqueues a request; returns the handle its outputs arrive on. Throws InvalidArgument when the
  /// prompt is empty, prompt length + 1 exceeds max_model_len, a token id is outside the vocabulary,
  /// params fail validate() or the id is already in use; Unavailable once the engine is shutting
  /// down (the server answers 503). max_tokens beyond the context left after the prompt is clamped
  /// to it.
  std::shared_ptr<RequestHandle> add_request(std::string request_id, std::vector<int32_t> prompt_ids,
                                             SamplingParams params);
  /// Aborts a request (client disconnect): its sequences finish with kAbort and free their blocks.
  /// Unknown or finished ids are ignored. Thread-safe.
  void abort(const std::string& request_id);

  /// A consistent snapshot of counters and gauges. Thread-safe.
  EngineMetrics metrics() const;
  int max_model_len() const;
  /// The tokenizer; throws InvalidArgument when the engine was built without one.
  const Tokenizer& tokenizer() const;
  bool has_tokenizer() const;
  const GenerationConfig& generation_config() const;
  const EngineConfig& config() const;
  const ModelRunner& runner() const;

  /// True between start() and shutdown().
  bool is_running() const;

  /// Runs one engine step on the calling thread (used by tests without start()); returns false
  /// when there was nothing to do. Not to be mixed with a started loop thread.
  bool step();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Synchronous convenience for `quench generate` and tests: adds every prompt (ids "gen-N" from a
/// process-wide counter), runs until all finish (using the loop thread when started, else step()) and returns
/// one RequestOutput per prompt with the *accumulated* tokens, text and logprobs of each sequence.
std::vector<RequestOutput> generate(Engine& engine, const std::vector<std::vector<int32_t>>& prompts,
                                    const SamplingParams& params);

}  // namespace quench
