// quench/engine/engine.cpp: Engine construction, the loop thread, the thread-safe entry points and
// the synchronous generate(). The step itself is in engine_step.cpp.
#include "engine/engine.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/error.h"
#include "core/log.h"
#include "engine/engine_impl.h"
#include "io/model_config.h"

namespace quench {

namespace {

int resolve_max_model_len(const EngineConfig& cfg, const ModelConfig& mc) {
  if (cfg.max_model_len < 0) throw InvalidArgument(fmt::format("--max-model-len must be >= 0, got {}", cfg.max_model_len));
  if (mc.max_position_embeddings <= 0)
    throw InvalidArgument(fmt::format("config.json: max_position_embeddings must be > 0, got {}", mc.max_position_embeddings));
  if (cfg.max_model_len == 0) return mc.max_position_embeddings;
  if (cfg.max_model_len > mc.max_position_embeddings)
    throw InvalidArgument(fmt::format("--max-model-len {} exceeds the model's max_position_embeddings {}",
                                      cfg.max_model_len, mc.max_position_embeddings));
  return cfg.max_model_len;
}

KvCacheSpec checked_spec(const ModelRunner& r) {
  KvCacheSpec s = r.kv_cache_spec();
  if (s.block_size < 1) throw InvalidArgument(fmt::format("backend {}: KV block_size must be >= 1, got {}", r.name(), s.block_size));
  return s;
}

}  // namespace

SeqState::SeqState(std::unique_ptr<Sequence> s, EngineRequest* r, const Tokenizer* tok, const SamplingParams& p)
    : seq(std::move(s)), req(r), stop(p.stop, p.include_stop_str_in_output) {
  if (tok) detok = std::make_unique<IncrementalDetokenizer>(*tok, p.skip_special_tokens);
}

Engine::Impl::Impl(std::unique_ptr<ModelRunner> r, std::shared_ptr<const Tokenizer> t, GenerationConfig g, EngineConfig c)
    : runner(std::move(r)), tok(std::move(t)), gen(std::move(g)), cfg(c),
      max_model_len(resolve_max_model_len(cfg, runner->config())), vocab_size(runner->config().vocab_size),
      kv_spec(checked_spec(*runner)), kv(kv_spec, cfg.enable_prefix_caching),
      sched(SchedulerConfig{cfg.max_num_seqs, cfg.max_num_batched_tokens, cfg.enable_chunked_prefill}, kv),
      pool(cfg.num_sampler_threads > 0 ? cfg.num_sampler_threads
                                       : static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 8u))) {
  for (int w = 0; w < pool.num_workers(); ++w) samplers.emplace_back(vocab_size, gen.suppress_tokens, gen.eos_token_ids);
  if (cfg.num_sampler_threads < 0)
    throw InvalidArgument(fmt::format("num_sampler_threads must be >= 0, got {}", cfg.num_sampler_threads));
  if (!cfg.enable_chunked_prefill && cfg.max_num_batched_tokens < max_model_len)
    throw InvalidArgument(fmt::format(
        "--max-num-batched-tokens ({}) is smaller than --max-model-len ({}) without chunked prefill: long prompts "
        "could never be scheduled; raise it or enable chunked prefill",
        cfg.max_num_batched_tokens, max_model_len));
  // One sequence of max_model_len tokens must fit, or it could never finish.
  const int bs = kv_spec.block_size;
  const int need_full = (max_model_len + bs - 1) / bs;
  if (need_full > kv_spec.num_blocks_full)
    throw InvalidArgument(fmt::format("--max-model-len {} needs {} KV blocks of {} tokens, the cache has {}; lower "
                                      "--max-model-len or give the KV cache more memory",
                                      max_model_len, need_full, bs, kv_spec.num_blocks_full));
  if (kv.has_sliding_group()) {
    const int span = std::min(max_model_len, kv_spec.sliding_window + std::min(cfg.max_num_batched_tokens, max_model_len));
    const int need_sliding = (span + bs - 1) / bs + 1;
    if (need_sliding > kv_spec.num_blocks_sliding)
      throw InvalidArgument(fmt::format("sliding-window KV cache needs at least {} blocks (window {} + step of {} tokens), has {}",
                                        need_sliding, kv_spec.sliding_window, cfg.max_num_batched_tokens,
                                        kv_spec.num_blocks_sliding));
  }
  m.kv_blocks_total = kv_spec.num_blocks_full;
}

Engine::Engine(std::unique_ptr<ModelRunner> runner, std::shared_ptr<const Tokenizer> tok, GenerationConfig gen,
               EngineConfig cfg) {
  if (!runner) throw InvalidArgument("Engine: runner is null");
  impl_ = std::make_unique<Impl>(std::move(runner), std::move(tok), std::move(gen), cfg);
}

Engine::~Engine() {
  try {
    shutdown(true);
  } catch (...) {
  }
}

void Engine::start() {
  std::lock_guard lock(impl_->in_mu);
  if (impl_->started || !impl_->accepting) return;
  impl_->started = true;
  impl_->thread = std::thread([this] { impl_->loop(); });
}

void Engine::Impl::loop() {
  for (;;) {
    {
      std::unique_lock lock(in_mu);
      in_cv.wait(lock, [&] { return stop_loop || !new_requests.empty() || !aborts.empty() || sched.has_work(); });
      if (abort_all) {
        for (auto& [id, r] : requests) aborts.push_back(id);
        for (auto& r : new_requests) aborts.push_back(r->id);
        abort_all = false;
      }
      if (stop_loop && new_requests.empty() && aborts.empty() && !sched.has_work()) break;
    }
    try {
      step();
    } catch (const std::exception& e) {
      // step() fails single requests itself; anything reaching here is an engine bug. Log it and
      // fail every request rather than leave clients waiting forever.
      log().critical("engine: step failed: {}", e.what());
      std::vector<std::string> ids;
      for (auto& [id, r] : requests) ids.push_back(id);
      for (const auto& id : ids) {
        auto it = requests.find(id);
        if (it != requests.end()) abort_request(*it->second, std::string("engine failure: ") + e.what());
      }
      update_gauges();
    }
  }
}

void Engine::shutdown(bool abort_running) {
  Impl& I = *impl_;
  {
    std::lock_guard lock(I.in_mu);
    I.accepting = false;
    I.stop_loop = true;
    if (abort_running) I.abort_all = true;
  }
  I.in_cv.notify_all();
  if (I.thread.joinable()) {
    I.thread.join();
  } else if (!I.started) {
    // No loop thread: settle everything here.
    if (abort_running) {
      std::lock_guard lock(I.in_mu);
      for (auto& [id, r] : I.requests) I.aborts.push_back(id);
      for (auto& r : I.new_requests) I.aborts.push_back(r->id);
    }
    while (I.step()) {
    }
  }
}

std::shared_ptr<RequestHandle> Engine::add_request(std::string request_id, std::vector<int32_t> prompt_ids,
                                                   SamplingParams params) {
  Impl& I = *impl_;
  if (prompt_ids.empty()) throw InvalidArgument(fmt::format("request {}: the prompt is empty", request_id));
  if (static_cast<int>(prompt_ids.size()) >= I.max_model_len)
    throw InvalidArgument(fmt::format(
        "request {}: this model's maximum context length is {} tokens; the prompt has {} tokens, leaving no room "
        "for output",
        request_id, I.max_model_len, prompt_ids.size()));
  for (size_t i = 0; i < prompt_ids.size(); ++i)
    if (prompt_ids[i] < 0 || prompt_ids[i] >= I.vocab_size)
      throw InvalidArgument(fmt::format("request {}: prompt token {} is id {}, outside the vocabulary [0, {})", request_id,
                                        i, prompt_ids[i], I.vocab_size));
  params.validate(/*max_model_len=*/0, I.vocab_size);
  if (params.n > I.cfg.max_num_seqs)
    throw InvalidArgument(fmt::format("request {}: n = {} exceeds --max-num-seqs {}", request_id, params.n, I.cfg.max_num_seqs));
  if (!I.tok && !params.stop.empty())
    throw InvalidArgument(fmt::format("request {}: stop strings need a tokenizer; this engine has none", request_id));
  // A sequence can never grow beyond max_model_len tokens: a larger max_tokens is clamped to the
  // room left (it then ends with finish_reason length at the context end, as in vLLM's engine).
  params.max_tokens = std::min(params.max_tokens, I.max_model_len - static_cast<int>(prompt_ids.size()));
  params.min_tokens = std::min(params.min_tokens, params.max_tokens);

  auto req = std::make_unique<EngineRequest>();
  req->id = request_id;
  req->prompt = std::move(prompt_ids);
  req->params = std::move(params);
  req->handle = std::make_shared<RequestHandle>(request_id);
  req->arrival = Clock::now();
  auto handle = req->handle;
  {
    std::lock_guard lock(I.in_mu);
    if (!I.accepting) throw Unavailable(fmt::format("request {}: the engine is shutting down", request_id));
    if (!I.active_ids.insert(request_id).second)
      throw InvalidArgument(fmt::format("request id '{}' is already in use", request_id));
    I.new_requests.push_back(std::move(req));
  }
  {
    std::lock_guard lock(I.metrics_mu);
    ++I.m.num_requests_added;
  }
  I.in_cv.notify_all();
  return handle;
}

void Engine::abort(const std::string& request_id) {
  {
    std::lock_guard lock(impl_->in_mu);
    if (!impl_->active_ids.count(request_id)) return;
    impl_->aborts.push_back(request_id);
  }
  impl_->in_cv.notify_all();
}

EngineMetrics Engine::metrics() const {
  std::lock_guard lock(impl_->metrics_mu);
  return impl_->m;
}

int Engine::max_model_len() const { return impl_->max_model_len; }

const Tokenizer& Engine::tokenizer() const {
  if (!impl_->tok) throw InvalidArgument("Engine: constructed without a tokenizer");
  return *impl_->tok;
}

bool Engine::has_tokenizer() const { return impl_->tok != nullptr; }
const GenerationConfig& Engine::generation_config() const { return impl_->gen; }
const EngineConfig& Engine::config() const { return impl_->cfg; }
const ModelRunner& Engine::runner() const { return *impl_->runner; }
bool Engine::is_running() const { return impl_->started && impl_->thread.joinable(); }

bool Engine::step() {
  if (impl_->started) throw InvalidArgument("Engine::step(): the loop thread is running; use add_request and the handles");
  return impl_->step();
}

std::vector<RequestOutput> generate(Engine& engine, const std::vector<std::vector<int32_t>>& prompts,
                                    const SamplingParams& params) {
  static std::atomic<uint64_t> counter{0};
  std::vector<std::shared_ptr<RequestHandle>> handles;
  std::vector<RequestOutput> results(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::string id = fmt::format("gen-{}", counter++);
    handles.push_back(engine.add_request(id, prompts[i], params));
    results[i].request_id = id;
    results[i].outputs.resize(static_cast<size_t>(params.n));
    for (int k = 0; k < params.n; ++k) results[i].outputs[static_cast<size_t>(k)].index = k;
  }
  auto merge = [&](size_t i, RequestOutput& d) {
    RequestOutput& acc = results[i];
    acc.num_prompt_tokens = d.num_prompt_tokens;
    acc.num_cached_tokens = d.num_cached_tokens;
    acc.finished = d.finished;
    if (d.error) acc.error = d.error;
    for (SeqOutput& so : d.outputs) {
      SeqOutput& a = acc.outputs.at(static_cast<size_t>(so.index));
      a.new_token_ids.insert(a.new_token_ids.end(), so.new_token_ids.begin(), so.new_token_ids.end());
      a.new_text += so.new_text;
      a.new_logprobs.insert(a.new_logprobs.end(), so.new_logprobs.begin(), so.new_logprobs.end());
      if (so.finish_reason) a.finish_reason = so.finish_reason;
      if (so.stop_reason) a.stop_reason = so.stop_reason;
      a.num_output_tokens = so.num_output_tokens;
    }
  };
  std::vector<bool> done(prompts.size(), false);
  size_t num_done = 0;
  const bool threaded = engine.is_running();
  while (num_done < prompts.size()) {
    if (!threaded) engine.step();
    for (size_t i = 0; i < prompts.size(); ++i) {
      if (done[i]) continue;
      RequestOutput d;
      while (handles[i]->wait_next(d, std::chrono::milliseconds(threaded ? 5 : 0))) {
        merge(i, d);
        if (d.finished) {
          done[i] = true;
          ++num_done;
          break;
        }
      }
    }
  }
  return results;
}

}  // namespace quench
