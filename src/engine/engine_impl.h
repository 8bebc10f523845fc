// quench/engine/engine_impl.h: Engine's private state, shared by engine.cpp (API, thread, input
// queue) and engine_step.cpp (one step: schedule, forward, sample, stops, outputs). Not installed.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "engine/engine.h"
#include "engine/kv_cache_manager.h"
#include "engine/sampler.h"
#include "engine/scheduler.h"
#include "engine/sequence.h"
#include "engine/stop_checker.h"
#include "engine/worker_pool.h"
#include "tokenizer/generation_config.h"
#include "tokenizer/incremental_detokenizer.h"
#include "tokenizer/tokenizer.h"

namespace quench {

using Clock = std::chrono::steady_clock;

struct EngineRequest;

/// A sequence plus its output-side state (text, stops, the delta not yet pushed).
struct SeqState {
  std::unique_ptr<Sequence> seq;
  EngineRequest* req = nullptr;
  std::unique_ptr<IncrementalDetokenizer> detok;  ///< null without a tokenizer
  StopStringMatcher stop;
  // delta since the last pushed message
  std::vector<int32_t> new_ids;
  std::string new_text;
  std::vector<TokenLogprob> new_logprobs;
  bool dirty = false;             ///< something to report
  std::optional<SequenceStatus> pending_finish;  ///< decided this step, applied after KV bookkeeping
  bool finish_reported = false;

  SeqState(std::unique_ptr<Sequence> s, EngineRequest* r, const Tokenizer* tok, const SamplingParams& p);
};

/// Engine-side state of one request (immutable params, mutable progress kept apart).
struct EngineRequest {
  std::string id;
  SamplingParams params;
  std::shared_ptr<RequestHandle> handle;
  uint64_t seed = 0;
  std::vector<int32_t> prompt;
  std::vector<std::unique_ptr<SeqState>> seqs;  ///< index order; grows to n at the fork
  int num_cached_tokens = -1;                   ///< set at first scheduling
  int num_finished = 0;
  Clock::time_point arrival{};
  bool first_token_seen = false;
  bool scheduled_once = false;
};

struct Engine::Impl {
  Impl(std::unique_ptr<ModelRunner> r, std::shared_ptr<const Tokenizer> t, GenerationConfig g, EngineConfig c);

  // ---- fixed at construction ----
  std::unique_ptr<ModelRunner> runner;
  std::shared_ptr<const Tokenizer> tok;
  GenerationConfig gen;
  EngineConfig cfg;
  int max_model_len = 0;
  int vocab_size = 0;
  KvCacheSpec kv_spec;

  // ---- engine thread only ----
  KvCacheManager kv;
  Scheduler sched;
  WorkerPool pool;
  std::vector<Sampler> samplers;  ///< one per pool worker (each keeps scratch rows)
  std::unordered_map<std::string, std::unique_ptr<EngineRequest>> requests;
  std::unordered_map<const Sequence*, SeqState*> seq_states;
  int64_t next_seq_id = 0;
  uint64_t request_counter = 0;
  std::vector<float> logits;
  std::vector<SeqStep> batch;
  // device sampling (ModelRunner::execute_sample), reused across steps
  std::vector<std::vector<LogitAdjustment>> dev_adjustments;
  std::vector<DeviceSamplingRow> dev_rows;
  std::vector<int32_t> dev_tokens;
  std::vector<float> dev_logprobs;
  /// Messages of this step, delivered by update_gauges() at the end of the step.
  std::vector<std::pair<std::shared_ptr<RequestHandle>, RequestOutput>> outbox;

  // ---- shared with other threads, under in_mu ----
  mutable std::mutex in_mu;
  std::condition_variable in_cv;
  std::deque<std::unique_ptr<EngineRequest>> new_requests;
  std::vector<std::string> aborts;
  std::unordered_set<std::string> active_ids;
  bool accepting = true;
  bool stop_loop = false;
  bool abort_all = false;
  std::thread thread;
  std::atomic<bool> started{false};

  mutable std::mutex metrics_mu;
  EngineMetrics m;

  // engine_step.cpp
  bool step();
  void drain_inputs();
  void admit(std::unique_ptr<EngineRequest> req);
  void abort_request(EngineRequest& req, const std::optional<std::string>& error);
  void process_token(SeqState& st, int32_t token, std::optional<TokenLogprob> lp);
  void finish_seq(SeqState& st, SequenceStatus status);
  void push_outputs(EngineRequest& req);
  void retire_if_done(EngineRequest& req);
  void update_gauges();  ///< also delivers the outbox
  SeqState& new_seq(EngineRequest& req, int index);
  void loop();
};

}  // namespace quench
