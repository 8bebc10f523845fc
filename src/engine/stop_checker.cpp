// quench/engine/stop_checker.cpp: stop ids, stop strings across token boundaries, length limits.
#include "engine/stop_checker.h"

#include <algorithm>

namespace quench {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stop, bool include_stop_str_in_output)
    : stop_(std::move(stop)), include_(include_stop_str_in_output) {
  for (const auto& s : stop_) hold_ = std::max(hold_, s.empty() ? 0 : s.size() - 1);
}

StopStringMatcher::Result StopStringMatcher::feed(std::string_view delta) {
  Result r;
  if (matched_) return r;
  held_.append(delta);
  // Any match ending in `delta` starts inside held_ (held_ had at most hold_ bytes before).
  size_t best = std::string::npos;
  const std::string* which = nullptr;
  for (const auto& s : stop_) {
    if (s.empty()) continue;
    const size_t pos = held_.find(s);
    if (pos != std::string::npos && pos < best) {
      best = pos;
      which = &s;
    }
  }
  if (which) {
    matched_ = true;
    r.emit = held_.substr(0, include_ ? best + which->size() : best);
    r.matched = *which;
    held_.clear();
    return r;
  }
  if (held_.size() <= hold_) return r;
  size_t cut = held_.size() - hold_;
  // Never split a UTF-8 character: move the cut back to a character's first byte.
  while (cut > 0 && cut < held_.size() && (static_cast<unsigned char>(held_[cut]) & 0xC0) == 0x80) --cut;
  r.emit = held_.substr(0, cut);
  held_.erase(0, cut);
  return r;
}

std::string StopStringMatcher::flush() {
  std::string out;
  out.swap(held_);
  return out;
}

TokenStop check_stop_token(int32_t token, int num_output_tokens, const SamplingParams& params,
                           const std::vector<int32_t>& eos_ids) {
  TokenStop r;
  if (num_output_tokens < params.min_tokens) return r;
  if (!params.ignore_eos && std::find(eos_ids.begin(), eos_ids.end(), token) != eos_ids.end()) {
    r.status = SequenceStatus::kFinishedStopped;
    return r;
  }
  if (std::find(params.stop_token_ids.begin(), params.stop_token_ids.end(), token) != params.stop_token_ids.end()) {
    r.status = SequenceStatus::kFinishedStopped;
    r.stop_reason = std::to_string(token);
  }
  return r;
}

std::optional<SequenceStatus> check_length(int num_output_tokens, int num_tokens, const SamplingParams& params,
                                           int max_model_len) {
  if (num_tokens >= max_model_len || num_output_tokens >= params.max_tokens) return SequenceStatus::kFinishedLength;
  return std::nullopt;
}

}  // namespace quench
