// quench/server/generation_job.cpp: engine requests of one HTTP request.
#include "server/generation_job.h"

#include <fmt/format.h>

#include "core/error.h"
#include "server/api_error.h"

namespace quench::server {

GenerationJob::GenerationJob(Engine& engine, const std::string& request_id,
                             const std::vector<std::vector<int32_t>>& prompts, const SamplingParams& params)
    : engine_(engine), n_(params.n), prompts_(prompts), start_(std::chrono::steady_clock::now()) {
  choices_.resize(prompts.size() * static_cast<size_t>(n_));
  for (size_t p = 0; p < prompts.size(); ++p) {
    Part part;
    part.engine_id = prompts.size() == 1 ? request_id : fmt::format("{}-{}", request_id, p);
    part.num_prompt_tokens = static_cast<int>(prompts[p].size());
    try {
      part.handle = engine_.add_request(part.engine_id, prompts[p], params);
    } catch (const InvalidArgument& e) {
      abort();
      throw bad_request(e.what(), prompts.size() == 1 ? std::nullopt : std::optional<std::string>("prompt"));
    } catch (const Unavailable& e) {
      abort();
      throw ApiError(503, "ServiceUnavailableError", e.what());
    }
    parts_.push_back(std::move(part));
  }
}

GenerationJob::~GenerationJob() { abort(); }

void GenerationJob::abort() {
  for (auto& p : parts_)
    if (!p.finished) engine_.abort(p.engine_id);
}

bool GenerationJob::finished() const {
  for (const auto& p : parts_)
    if (!p.finished) return false;
  return true;
}

void GenerationJob::apply(int part, RequestOutput& out, std::vector<ChoiceDelta>& deltas) {
  Part& p = parts_[part];
  if (out.error) throw ApiError(500, "InternalServerError", "engine error: " + *out.error);
  p.num_prompt_tokens = out.num_prompt_tokens;
  p.num_cached_tokens = out.num_cached_tokens;
  if (out.finished) p.finished = true;
  held_.push_back(std::move(out));
  for (const SeqOutput& s : held_.back().outputs) {
    int c = part * n_ + s.index;
    if (c < 0 || c >= num_choices()) continue;
    ChoiceState& st = choices_[c];
    st.text += s.new_text;
    st.token_ids.insert(st.token_ids.end(), s.new_token_ids.begin(), s.new_token_ids.end());
    st.logprobs.insert(st.logprobs.end(), s.new_logprobs.begin(), s.new_logprobs.end());
    st.num_output_tokens = s.num_output_tokens;
    if (s.finish_reason) {
      st.finish_reason = s.finish_reason;
      st.stop_reason = s.stop_reason;
    }
    if (!ttft_s_ && !s.new_token_ids.empty())
      ttft_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    deltas.push_back({c, &s});
  }
}

std::vector<ChoiceDelta> GenerationJob::next(std::chrono::milliseconds timeout) {
  held_.clear();
  std::vector<ChoiceDelta> deltas;
  if (finished()) return deltas;
  RequestOutput out;
  if (parts_.size() == 1) {
    if (parts_[0].handle->wait_next(out, timeout)) apply(0, out, deltas);
    return deltas;
  }
  // Several prompts: take whatever is ready, round-robin; otherwise wait briefly on one.
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    for (size_t k = 0; k < parts_.size(); ++k) {
      size_t i = (rr_ + k) % parts_.size();
      if (parts_[i].finished) continue;
      if (parts_[i].handle->wait_next(out, std::chrono::milliseconds(0))) {
        rr_ = i + 1;
        apply(static_cast<int>(i), out, deltas);
        return deltas;
      }
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return deltas;
    size_t i = rr_ % parts_.size();
    while (parts_[i].finished) i = (i + 1) % parts_.size();
    auto slice = std::min<std::chrono::milliseconds>(
        std::chrono::milliseconds(5), std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now));
    if (parts_[i].handle->wait_next(out, slice)) {
      rr_ = i + 1;
      apply(static_cast<int>(i), out, deltas);
      return deltas;
    }
  }
}

void GenerationJob::wait_all() {
  while (!finished()) next(std::chrono::milliseconds(100));
}

int GenerationJob::prompt_tokens() const {
  int s = 0;
  for (const auto& p : parts_) s += p.num_prompt_tokens;
  return s;
}

int GenerationJob::completion_tokens() const {
  int s = 0;
  for (const auto& c : choices_) s += c.num_output_tokens;
  return s;
}

int GenerationJob::cached_tokens() const {
  int s = 0;
  for (const auto& p : parts_) s += p.num_cached_tokens;
  return s;
}

}  // namespace quench::server
