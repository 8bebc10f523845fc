// quench/engine/device_sampling.cpp: see device_sampling.h.
#include "engine/device_sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

namespace quench {

bool can_sample_on_device(const SamplingParams& p) { return !p.logprobs || *p.logprobs == 0; }

void build_logit_adjustments(const SamplerSeqState& st, std::span<const int32_t> suppress_ids,
                             std::span<const int32_t> eos_ids, int vocab_size, std::vector<LogitAdjustment>& out) {
  out.clear();
  const SamplingParams& p = *st.params;
  std::unordered_map<int32_t, size_t> at;
  auto entry = [&](int32_t id) -> LogitAdjustment* {
    if (id < 0 || id >= vocab_size) return nullptr;
    auto [it, fresh] = at.try_emplace(id, out.size());
    if (fresh) {
      LogitAdjustment a;
      a.token_id = id;
      out.push_back(a);
    }
    return &out[it->second];
  };
  for (int32_t id : suppress_ids)
    if (auto* a = entry(id)) a->flags |= LogitAdjustment::kMasked;
  if (st.num_output_tokens < p.min_tokens) {
    if (!p.ignore_eos)
      for (int32_t id : eos_ids)
        if (auto* a = entry(id)) a->flags |= LogitAdjustment::kMasked;
    for (int32_t id : p.stop_token_ids)
      if (auto* a = entry(id)) a->flags |= LogitAdjustment::kMasked;
  }
  for (const auto& [id, bias] : p.logit_bias)
    if (auto* a = entry(id)) a->bias += bias;
  if (p.repetition_penalty != 1.0f && st.seen_ids)
    for (int32_t id : *st.seen_ids)
      if (auto* a = entry(id)) a->flags |= LogitAdjustment::kSeen;
  if ((p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f) && st.output_counts)
    for (const auto& [id, count] : *st.output_counts)
      if (count > 0)
        if (auto* a = entry(id)) a->output_count = count;
  std::sort(out.begin(), out.end(), [](const LogitAdjustment& a, const LogitAdjustment& b) { return a.token_id < b.token_id; });
}

DeviceSamplingRow make_device_sampling_row(const SamplerSeqState& st, int logits_row,
                                           std::span<const LogitAdjustment> adjustments) {
  const SamplingParams& p = *st.params;
  DeviceSamplingRow r;
  r.logits_row = logits_row;
  r.temperature = p.temperature;
  r.top_k = p.top_k;
  r.top_p = p.top_p;
  r.min_p = p.min_p;
  r.repetition_penalty = p.repetition_penalty;
  r.presence_penalty = p.presence_penalty;
  r.frequency_penalty = p.frequency_penalty;
  r.adjustments = adjustments;
  r.seed = st.seed;
  r.index = static_cast<uint64_t>(st.index);
  r.step = static_cast<uint64_t>(st.num_output_tokens);
  return r;
}

void apply_logit_adjustments(std::span<float> row, std::span<const LogitAdjustment> adjustments,
                             const DeviceSamplingRow& params) {
  const float r = params.repetition_penalty;
  for (const LogitAdjustment& a : adjustments) {
    if (a.token_id < 0 || static_cast<size_t>(a.token_id) >= row.size()) continue;
    float& v = row[static_cast<size_t>(a.token_id)];
    if (a.flags & LogitAdjustment::kMasked) {
      v = -std::numeric_limits<float>::infinity();
      continue;
    }
    if (a.bias != 0.0f) v += std::clamp(a.bias, -100.0f, 100.0f);
    if ((a.flags & LogitAdjustment::kSeen) && r != 1.0f) v = v > 0.0f ? v / r : v * r;
    if (a.output_count > 0 && (params.frequency_penalty != 0.0f || params.presence_penalty != 0.0f))
      v -= params.frequency_penalty * static_cast<float>(a.output_count) + params.presence_penalty;
  }
}

std::pair<int32_t, float> sample_device_row_on_host(std::span<const float> logits, const DeviceSamplingRow& row,
                                                    Sampler& sampler) {
  std::vector<float> work(logits.begin(), logits.end());
  apply_logit_adjustments(work, row.adjustments, row);
  bool any = false;
  for (float v : work) any |= std::isfinite(v);
  if (!any) return {-1, 0.0f};
  SamplingParams p;
  p.temperature = row.temperature;
  p.top_k = row.top_k;
  p.top_p = row.top_p;
  p.min_p = row.min_p;
  p.logprobs = 0;
  SamplerSeqState st;
  st.params = &p;
  st.num_output_tokens = static_cast<int>(row.step);
  st.seed = row.seed;
  st.index = static_cast<int>(row.index);
  const SampleResult r = sampler.sample(work, st);
  return {r.token_id, r.logprob ? r.logprob->logprob : 0.0f};
}

}  // namespace quench
