// quench/engine/engine_step.cpp: one engine step: take new requests and aborts, schedule, run the
// backend on the whole batch, sample, detokenize, check stops, push each request's delta.
#include <algorithm>
#include <exception>

#include <fmt/format.h>
#include "core/error.h"
#include "core/log.h"
#include "engine/device_sampling.h"
#include "engine/engine_impl.h"
#include "io/model_config.h"

namespace quench {

namespace {

uint64_t mix_seed(uint64_t engine_seed, uint64_t counter) {
  uint64_t x = engine_seed ^ (counter + 0x9e3779b97f4a7c15ull + (engine_seed << 6) + (engine_seed >> 2));
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

SeqState& Engine::Impl::new_seq(EngineRequest& req, int index) {
  auto seq = std::make_unique<Sequence>(next_seq_id++, index, req.prompt, kv_spec.block_size);
  auto st = std::make_unique<SeqState>(std::move(seq), &req, tok.get(), req.params);
  SeqState& ref = *st;
  seq_states[ref.seq.get()] = &ref;
  req.seqs.push_back(std::move(st));
  return ref;
}

void Engine::Impl::admit(std::unique_ptr<EngineRequest> req) {
  EngineRequest& r = *req;
  r.seed = r.params.seed ? *r.params.seed : mix_seed(cfg.seed, request_counter);
  ++request_counter;
  SeqState& st = new_seq(r, 0);
  st.seq->num_pending_forks = r.params.n - 1;
  requests.emplace(r.id, std::move(req));
  sched.add_waiting(st.seq.get());
}

void Engine::Impl::drain_inputs() {
  std::deque<std::unique_ptr<EngineRequest>> incoming;
  std::vector<std::string> to_abort;
  {
    std::lock_guard lock(in_mu);
    incoming.swap(new_requests);
    to_abort.swap(aborts);
  }
  for (auto& r : incoming) admit(std::move(r));
  for (const auto& id : to_abort) {
    auto it = requests.find(id);
    if (it != requests.end()) abort_request(*it->second, std::nullopt);
  }
}

void Engine::Impl::finish_seq(SeqState& st, SequenceStatus status) {
  if (is_finished(st.seq->status)) return;
  sched.finish(st.seq.get(), status);
  st.dirty = true;
  ++st.req->num_finished;
}

void Engine::Impl::abort_request(EngineRequest& req, const std::optional<std::string>& error) {
  for (auto& st : req.seqs) finish_seq(*st, SequenceStatus::kFinishedAborted);
  // Forks that never happened count as aborted too.
  req.num_finished = req.params.n;
  if (error) {
    RequestOutput out;
    out.request_id = req.id;
    out.num_prompt_tokens = static_cast<int>(req.prompt.size());
    out.num_cached_tokens = std::max(0, req.num_cached_tokens);
    out.error = error;
    for (auto& st : req.seqs) {
      SeqOutput so;
      so.index = st->seq->index();
      so.finish_reason = FinishReason::kAbort;
      so.num_output_tokens = st->seq->num_output_tokens();
      st->finish_reported = true;
      st->dirty = false;
      out.outputs.push_back(std::move(so));
    }
    out.finished = true;
    outbox.emplace_back(req.handle, std::move(out));
  } else {
    push_outputs(req);
  }
  retire_if_done(req);
}

void Engine::Impl::process_token(SeqState& st, int32_t token, std::optional<TokenLogprob> lp) {
  Sequence& seq = *st.seq;
  EngineRequest& req = *st.req;
  const SamplingParams& p = req.params;
  const auto now = Clock::now();
  seq.append_token(token);
  st.new_ids.push_back(token);
  if (lp) st.new_logprobs.push_back(std::move(*lp));
  st.dirty = true;
  {
    std::lock_guard lock(metrics_mu);
    ++m.generation_tokens;
    if (!req.first_token_seen) m.time_to_first_token.observe(seconds(now - req.arrival));
    else if (seq.num_output_tokens() > 1) m.inter_token_latency.observe(seconds(now - seq.last_token_time));
  }
  req.first_token_seen = true;
  seq.last_token_time = now;

  TokenStop ts = check_stop_token(token, seq.num_output_tokens(), p, gen.eos_token_ids);
  std::optional<SequenceStatus> status = ts.status;
  std::optional<std::string> reason = ts.stop_reason;
  if (st.detok) {
    std::string text;
    if (!(status && !p.include_stop_str_in_output)) text = st.detok->push(token);
    if (!status) {
      auto r = st.stop.feed(text);
      st.new_text += r.emit;
      if (r.matched) {
        status = SequenceStatus::kFinishedStopped;
        reason = r.matched;
      }
    } else {
      st.new_text += st.stop.feed(text).emit;
    }
  }
  if (!status) status = check_length(seq.num_output_tokens(), seq.num_tokens(), p, max_model_len);
  if (!status) return;
  if (st.detok && !st.stop.matched()) {
    auto r = st.stop.feed(st.detok->flush());
    st.new_text += r.emit;
    if (r.matched) {
      status = SequenceStatus::kFinishedStopped;
      reason = r.matched;
    } else {
      st.new_text += st.stop.flush();
    }
  }
  seq.stop_reason = reason;
  // The scheduler drops it after the KV bookkeeping of this step (see step()).
  st.pending_finish = *status;
}

void Engine::Impl::push_outputs(EngineRequest& req) {
  RequestOutput out;
  out.request_id = req.id;
  out.num_prompt_tokens = static_cast<int>(req.prompt.size());
  out.num_cached_tokens = std::max(0, req.num_cached_tokens);
  for (auto& stp : req.seqs) {
    SeqState& st = *stp;
    if (!st.dirty) continue;
    SeqOutput so;
    so.index = st.seq->index();
    so.new_token_ids = std::move(st.new_ids);
    so.new_text = std::move(st.new_text);
    so.new_logprobs = std::move(st.new_logprobs);
    st.new_ids.clear();
    st.new_text.clear();
    st.new_logprobs.clear();
    so.num_output_tokens = st.seq->num_output_tokens();
    if (is_finished(st.seq->status) && !st.finish_reported) {
      so.finish_reason = finish_reason_of(st.seq->status);
      so.stop_reason = st.seq->stop_reason;
      st.finish_reported = true;
    }
    st.dirty = false;
    out.outputs.push_back(std::move(so));
  }
  out.finished = req.num_finished >= req.params.n;
  if (!out.outputs.empty() || out.finished) outbox.emplace_back(req.handle, std::move(out));
}

void Engine::Impl::retire_if_done(EngineRequest& req) {
  if (req.num_finished < req.params.n) return;
  {
    std::lock_guard lock(metrics_mu);
    const SequenceStatus s0 = req.seqs.empty() ? SequenceStatus::kFinishedAborted : req.seqs.front()->seq->status;
    switch (s0) {
      case SequenceStatus::kFinishedStopped: ++m.num_requests_finished_stop; break;
      case SequenceStatus::kFinishedLength: ++m.num_requests_finished_length; break;
      default: ++m.num_requests_finished_abort; break;
    }
    m.e2e_request_latency.observe(seconds(Clock::now() - req.arrival));
  }
  for (auto& st : req.seqs) seq_states.erase(st->seq.get());
  {
    std::lock_guard lock(in_mu);
    active_ids.erase(req.id);
  }
  const std::string id = req.id;  // erasing destroys req
  requests.erase(id);
}

void Engine::Impl::update_gauges() {
  {
    std::lock_guard lock(metrics_mu);
    m.num_requests_running = sched.num_running();
    m.num_requests_waiting = sched.num_waiting();
    m.kv_blocks_used = kv.full_pool().num_used_blocks();
    m.kv_blocks_total = kv.full_pool().num_blocks();
    m.kv_cache_usage = kv.usage();
  }
  // Deliver after the metrics: a client that sees its last message also sees its blocks freed.
  for (auto& [handle, out] : outbox) handle->push(std::move(out));
  outbox.clear();
}

bool Engine::Impl::step() {
  drain_inputs();
  if (!sched.has_work()) {
    update_gauges();
    return false;
  }
  SchedulerOutput plan = sched.schedule();
  {
    std::lock_guard lock(metrics_mu);
    m.num_preemptions += plan.preempted.size();
    m.prefix_cache_queries += static_cast<uint64_t>(plan.prefix_cache_queries);
    m.prefix_cache_hits += static_cast<uint64_t>(plan.prefix_cache_hits);
    ++m.num_steps;
  }
  if (plan.empty()) {
    // Work exists but nothing fits even with an idle batch: fail the head of the queue rather
    // than spin (the constructor's capacity checks make this unreachable for valid requests).
    if (sched.num_running() == 0 && sched.num_waiting() > 0) {
      EngineRequest& req = *seq_states.at(sched.waiting().front())->req;
      abort_request(req, fmt::format("request {}: cannot be scheduled: it needs more KV cache blocks than the cache has",
                                     req.id));
    }
    update_gauges();
    return true;
  }

  // ---- forward the whole batch ----
  batch.clear();
  int n_want = 0;
  for (const ScheduledSeq& s : plan.scheduled) {
    const Sequence& seq = *s.seq;
    SeqStep step;
    step.tokens = seq.token_ids().subspan(static_cast<size_t>(s.start_pos), static_cast<size_t>(s.num_new_tokens));
    step.start_pos = s.start_pos;
    step.block_table_full = seq.blocks.full;
    step.block_table_sliding = seq.blocks.sliding;
    step.want_logits = s.want_logits;
    n_want += s.want_logits;
    batch.push_back(step);
  }
  // ---- what to sample: one task per row, plus one per child of an n > 1 parent whose prompt
  // just completed (the children draw from the parent's prompt logits with their own index) ----
  struct Task {
    Sequence* seq;
    size_t row;
    int index;
  };
  std::vector<Task> tasks;
  {
    size_t row = 0;
    for (const ScheduledSeq& s : plan.scheduled) {
      if (!s.want_logits) continue;
      tasks.push_back({s.seq, row, s.seq->index()});
      if (s.seq->num_pending_forks > 0 && s.seq->num_output_tokens() == 0)
        for (int i = 1; i <= s.seq->num_pending_forks; ++i) tasks.push_back({s.seq, row, i});
      ++row;
    }
  }
  auto seq_state = [&](const Task& task) {
    const EngineRequest& req = *seq_states.at(task.seq)->req;
    SamplerSeqState ss;
    ss.params = &req.params;
    ss.seen_ids = &task.seq->seen_ids();  // a child's: the prompt's, as its parent's before this step
    ss.output_counts = &task.seq->output_counts();
    ss.num_output_tokens = task.seq->num_output_tokens();
    ss.seed = req.seed;
    ss.index = task.index;
    return ss;
  };
  // Sampling on the device when the backend can and no request needs its whole logits row.
  bool on_device = cfg.device_sampling && !tasks.empty() && runner->supports_device_sampling();
  for (const Task& task : tasks) on_device = on_device && can_sample_on_device(seq_states.at(task.seq)->req->params);

  std::vector<SampleResult> results(tasks.size());
  std::vector<std::string> errors(tasks.size());
  try {
    if (on_device) {
      // Only token ids (and the sampled token's logprob) cross to the host.
      if (dev_adjustments.size() < tasks.size()) dev_adjustments.resize(tasks.size());
      dev_rows.resize(tasks.size());
      bool want_logprobs = false;
      for (size_t t = 0; t < tasks.size(); ++t) {
        const SamplerSeqState ss = seq_state(tasks[t]);
        build_logit_adjustments(ss, gen.suppress_tokens, gen.eos_token_ids, vocab_size, dev_adjustments[t]);
        dev_rows[t] = make_device_sampling_row(ss, static_cast<int>(tasks[t].row), dev_adjustments[t]);
        want_logprobs |= ss.params->logprobs.has_value();
      }
      dev_tokens.assign(tasks.size(), -1);
      dev_logprobs.assign(want_logprobs ? tasks.size() : 0, 0.0f);
      runner->execute_sample(batch, dev_rows, dev_tokens, dev_logprobs);
      {
        std::lock_guard lock(metrics_mu);
        ++m.num_device_sampled_steps;
      }
      for (size_t t = 0; t < tasks.size(); ++t) {
        if (dev_tokens[t] < 0) {
          errors[t] = "every token id is masked (-inf) after suppression, bias and penalties";
          continue;
        }
        results[t].token_id = dev_tokens[t];
        if (seq_states.at(tasks[t].seq)->req->params.logprobs) {
          TokenLogprob lp;
          lp.token_id = dev_tokens[t];
          lp.logprob = dev_logprobs[t];
          results[t].logprob = std::move(lp);
        }
      }
    } else {
      logits.resize(static_cast<size_t>(n_want) * static_cast<size_t>(vocab_size));
      runner->execute(batch, logits);
    }
  } catch (const std::exception& e) {
    log().error("engine: forward step of {} sequences failed: {}", plan.scheduled.size(), e.what());
    std::vector<std::string> ids;
    for (const ScheduledSeq& s : plan.scheduled) {
      const std::string& id = seq_states.at(s.seq)->req->id;
      if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
    }
    for (const auto& id : ids) {
      auto it = requests.find(id);
      if (it != requests.end()) abort_request(*it->second, fmt::format("backend {} failed: {}", runner->name(), e.what()));
    }
    update_gauges();
    return true;
  }

  // ---- sample on the host (in parallel: each draw depends only on its row and its sequence) ----
  if (!on_device) {
    pool.run(tasks.size(), [&](size_t t, int worker) {
      const Task& task = tasks[t];
      const SamplerSeqState ss = seq_state(task);
      try {
        results[t] = samplers[static_cast<size_t>(worker)].sample(
            std::span<const float>(logits.data() + task.row * static_cast<size_t>(vocab_size), static_cast<size_t>(vocab_size)),
            ss);
      } catch (const std::exception& e) {
        errors[t] = e.what();
      }
    });
  }

  // ---- detokenize, stop, fork, KV bookkeeping (serial) ----
  std::vector<EngineRequest*> touched;
  std::vector<std::pair<std::string, std::string>> failed;  // request id, error
  size_t t = 0;
  for (const ScheduledSeq& s : plan.scheduled) {
    Sequence& seq = *s.seq;
    SeqState& st = *seq_states.at(&seq);
    EngineRequest& req = *st.req;
    if (std::find(touched.begin(), touched.end(), &req) == touched.end()) touched.push_back(&req);
    if (!req.scheduled_once) {
      req.scheduled_once = true;
      req.num_cached_tokens = s.start_pos;
      std::lock_guard lock(metrics_mu);
      m.prompt_tokens += req.prompt.size();
    }
    seq.num_computed_tokens = s.start_pos + s.num_new_tokens;
    if (!s.want_logits) {
      kv.on_computed(seq);
      continue;
    }
    const int forks = seq.num_output_tokens() == 0 ? seq.num_pending_forks : 0;
    const size_t first_task = t;
    t += 1 + static_cast<size_t>(forks);
    std::string error;
    for (size_t k = first_task; k < t; ++k)
      if (!errors[k].empty()) error = errors[k];
    try {
      if (!error.empty()) throw InvalidArgument(error);
      process_token(st, results[first_task].token_id, std::move(results[first_task].logprob));
      kv.on_computed(seq);
      if (forks > 0) {
        // n > 1: the other n-1 sequences start from the same prompt logits and share its blocks.
        seq.num_pending_forks = 0;
        for (int i = 1; i <= forks; ++i) {
          SeqState& child = new_seq(req, i);
          SampleResult& r = results[first_task + static_cast<size_t>(i)];
          process_token(child, r.token_id, std::move(r.logprob));
          if (child.pending_finish) {
            finish_seq(child, *child.pending_finish);
          } else {
            kv.fork(seq, *child.seq);
            sched.add_running(child.seq.get());
          }
        }
      }
      if (st.pending_finish) finish_seq(st, *st.pending_finish);
    } catch (const std::exception& e) {
      // One request's failure (e.g. a sampled id the tokenizer cannot decode) fails that request only.
      failed.emplace_back(req.id, fmt::format("request {}: {}", req.id, e.what()));
    }
  }
  for (const auto& [id, msg] : failed) {
    auto it = requests.find(id);
    if (it == requests.end()) continue;
    log().error("engine: {}", msg);
    touched.erase(std::remove(touched.begin(), touched.end(), it->second.get()), touched.end());
    abort_request(*it->second, msg);
  }
  for (EngineRequest* req : touched) {
    push_outputs(*req);
    retire_if_done(*req);
  }
  update_gauges();
  return true;
}

}  // namespace quench
