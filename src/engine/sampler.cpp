// quench/engine/sampler.cpp: logits processors, truncation and the seeded draw (see sampler.h).
#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <fmt/format.h>

#include "backend/backend.h"  // sampling_random_bits
#include "core/error.h"

namespace quench {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kLogprobFloor = -9999.0f;  // OpenAI's clamp for -inf logprobs

float clamp_logprob(float v) { return std::isfinite(v) ? v : kLogprobFloor; }

/// Ids by descending value, ties by ascending id.
bool ranks_before(const std::vector<float>& row, int32_t a, int32_t b) {
  if (row[static_cast<size_t>(a)] != row[static_cast<size_t>(b)]) return row[static_cast<size_t>(a)] > row[static_cast<size_t>(b)];
  return a < b;
}

TokenLogprob make_logprob(const std::vector<float>& lp, int32_t token, int top_n) {
  TokenLogprob out;
  out.token_id = token;
  out.logprob = clamp_logprob(lp[static_cast<size_t>(token)]);
  const int n = std::min<int>(top_n, static_cast<int>(lp.size()));
  if (n > 0) {
    std::vector<int32_t> ids(lp.size());
    std::iota(ids.begin(), ids.end(), 0);
    std::partial_sort(ids.begin(), ids.begin() + n, ids.end(),
                      [&](int32_t a, int32_t b) { return ranks_before(lp, a, b); });
    for (int i = 0; i < n; ++i) out.top.emplace_back(ids[static_cast<size_t>(i)], clamp_logprob(lp[static_cast<size_t>(ids[static_cast<size_t>(i)])]));
  }
  return out;
}

}  // namespace

double seeded_uniform(uint64_t seed, uint64_t index, uint64_t step) {
  // The same bits as a device sampler's draw (backend/backend.h).
  return static_cast<double>(sampling_random_bits(seed, index, step)) * 0x1.0p-53;
}

std::vector<float> log_softmax(std::span<const float> row) {
  double mx = -std::numeric_limits<double>::infinity();
  for (float v : row) mx = std::max(mx, static_cast<double>(v));
  std::vector<float> out(row.size(), kNegInf);
  if (!std::isfinite(mx)) return out;
  double sum = 0.0;
  for (float v : row) sum += std::exp(static_cast<double>(v) - mx);
  const double lse = mx + std::log(sum);
  for (size_t i = 0; i < row.size(); ++i)
    out[i] = std::isfinite(row[i]) ? static_cast<float>(static_cast<double>(row[i]) - lse) : kNegInf;
  return out;
}

Sampler::Sampler(int vocab_size, std::vector<int32_t> suppress_ids, std::vector<int32_t> eos_ids)
    : vocab_size_(vocab_size), suppress_ids_(std::move(suppress_ids)), eos_ids_(std::move(eos_ids)) {
  if (vocab_size_ < 1) throw InvalidArgument(fmt::format("Sampler: vocab_size must be >= 1, got {}", vocab_size_));
  std::sort(suppress_ids_.begin(), suppress_ids_.end());
}

bool Sampler::is_suppressed(int32_t id) const {
  return std::binary_search(suppress_ids_.begin(), suppress_ids_.end(), id);
}

bool Sampler::changes_logits(const SamplerSeqState& st) const {
  const SamplingParams& p = *st.params;
  return p.repetition_penalty != 1.0f || p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f ||
         !p.logit_bias.empty() || st.num_output_tokens < p.min_tokens;
}

void Sampler::apply_processors(std::vector<float>& row, const SamplerSeqState& st) const {
  const SamplingParams& p = *st.params;
  auto in_vocab = [&](int32_t id) { return id >= 0 && id < vocab_size_; };
  // 1. suppression and min_tokens
  for (int32_t id : suppress_ids_) if (in_vocab(id)) row[static_cast<size_t>(id)] = kNegInf;
  if (st.num_output_tokens < p.min_tokens) {
    if (!p.ignore_eos) for (int32_t id : eos_ids_) if (in_vocab(id)) row[static_cast<size_t>(id)] = kNegInf;
    for (int32_t id : p.stop_token_ids) if (in_vocab(id)) row[static_cast<size_t>(id)] = kNegInf;
  }
  // 2. logit_bias
  for (const auto& [id, bias] : p.logit_bias)
    if (in_vocab(id)) row[static_cast<size_t>(id)] += std::clamp(bias, -100.0f, 100.0f);
  // 3. penalties: repetition over prompt + output, then frequency / presence over output
  if (p.repetition_penalty != 1.0f && st.seen_ids) {
    const float r = p.repetition_penalty;
    for (int32_t id : *st.seen_ids) {
      if (!in_vocab(id)) continue;
      float& v = row[static_cast<size_t>(id)];
      v = v > 0.0f ? v / r : v * r;
    }
  }
  if ((p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f) && st.output_counts) {
    for (const auto& [id, count] : *st.output_counts) {
      if (!in_vocab(id) || count <= 0) continue;
      row[static_cast<size_t>(id)] -= p.frequency_penalty * static_cast<float>(count) + p.presence_penalty;
    }
  }
}

SampleResult Sampler::sample(std::span<const float> logits, const SamplerSeqState& st) {
  if (static_cast<int>(logits.size()) != vocab_size_)
    throw InvalidArgument(fmt::format("Sampler: logits row has {} values, expected vocab_size {}", logits.size(), vocab_size_));
  const SamplingParams& p = *st.params;
  SampleResult res;
  if (p.is_greedy() && !p.logprobs && !changes_logits(st)) {
    // Fast path: argmax of the backend's row without a copy; suppressed ids are skipped.
    int32_t best = -1;
    for (int32_t i = 0; i < vocab_size_; ++i) {
      const float v = logits[static_cast<size_t>(i)];
      if (std::isfinite(v) && (best < 0 || v > logits[static_cast<size_t>(best)]) && !is_suppressed(i)) best = i;
    }
    if (best < 0) throw InvalidArgument("Sampler: every token id is masked (-inf) after suppression, bias and penalties");
    res.token_id = best;
    return res;
  }
  row_.assign(logits.begin(), logits.end());
  apply_processors(row_, st);

  if (p.is_greedy()) {
    int32_t best = -1;
    for (int32_t i = 0; i < vocab_size_; ++i)
      if (std::isfinite(row_[static_cast<size_t>(i)]) && (best < 0 || row_[static_cast<size_t>(i)] > row_[static_cast<size_t>(best)])) best = i;
    if (best < 0) throw InvalidArgument("Sampler: every token id is masked (-inf) after suppression, bias and penalties");
    res.token_id = best;
    if (p.logprobs) res.logprob = make_logprob(log_softmax(row_), best, *p.logprobs);
    return res;
  }

  // 5. temperature; from here on only the candidates (finite logits) are visited.
  const float t = std::max(p.temperature, 0.01f);
  float mx = kNegInf;
  cand_.clear();
  for (int32_t i = 0; i < vocab_size_; ++i) {
    float& v = row_[static_cast<size_t>(i)];
    v /= t;
    if (!std::isfinite(v)) continue;
    cand_.push_back(i);
    mx = std::max(mx, v);
  }
  if (cand_.empty()) throw InvalidArgument("Sampler: every token id is masked (-inf) after suppression, bias and penalties");
  auto drop = [&](auto pred) {
    size_t w = 0;
    for (int32_t id : cand_) {
      if (pred(id)) row_[static_cast<size_t>(id)] = kNegInf;
      else cand_[w++] = id;
    }
    cand_.resize(w);
  };
  // 6. min_p: p_i < min_p * p_max  <=>  l_i - l_max < log(min_p)
  if (p.min_p > 0.0f) {
    const double log_thr = std::log(static_cast<double>(p.min_p));
    drop([&](int32_t id) { return static_cast<double>(row_[static_cast<size_t>(id)]) - mx < log_thr; });
  }
  // 7a. top_k: keep values >= the k-th largest (ties with it included)
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < cand_.size()) {
    // The k-th largest value: a min-heap of the k best seen (one comparison for most ids).
    const size_t k = static_cast<size_t>(p.top_k);
    vals_.clear();
    for (int32_t id : cand_) {
      const float v = row_[static_cast<size_t>(id)];
      if (vals_.size() < k) {
        vals_.push_back(v);
        std::push_heap(vals_.begin(), vals_.end(), std::greater<float>());
      } else if (v > vals_.front()) {
        std::pop_heap(vals_.begin(), vals_.end(), std::greater<float>());
        vals_.back() = v;
        std::push_heap(vals_.begin(), vals_.end(), std::greater<float>());
      }
    }
    const float kth = vals_.front();
    drop([&](int32_t id) { return row_[static_cast<size_t>(id)] < kth; });
  }
  // 7b. top_p over the renormalised survivors, most likely first. Only the head of the ranking
  // is sorted: k grows (64, 256, ...) until the k best reach the mass, so a 262k vocabulary is not
  // sorted whole for every token.
  auto weight = [&](int32_t id) { return static_cast<double>(std::exp(row_[static_cast<size_t>(id)] - mx)); };
  if (p.top_p < 1.0f && cand_.size() > 1) {
    double total = 0.0;
    for (int32_t id : cand_) total += weight(id);
    const double target = static_cast<double>(p.top_p) * total;
    order_.assign(cand_.begin(), cand_.end());
    auto rank = [&](int32_t a, int32_t b) { return ranks_before(row_, a, b); };
    size_t keep = order_.size();
    for (size_t k = std::min<size_t>(64, order_.size());; k = std::min(order_.size(), k * 4)) {
      std::partial_sort(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(k), order_.end(), rank);
      double before = 0.0;
      size_t j = 0;
      for (; j < k; ++j) {
        if (j > 0 && before >= target) break;
        before += weight(order_[j]);
      }
      if (j < k || before >= target) {
        keep = j;
        break;
      }
      if (k == order_.size()) break;
    }
    if (keep < order_.size()) {
      for (size_t j = keep; j < order_.size(); ++j) row_[static_cast<size_t>(order_[j])] = kNegInf;
      order_.resize(keep);
      std::sort(order_.begin(), order_.end());  // back to ascending ids for the draw
      cand_.swap(order_);
    }
  }
  // 8. draw by inverse CDF over the candidates in ascending id order
  weights_.resize(cand_.size());
  double total = 0.0;
  for (size_t j = 0; j < cand_.size(); ++j) total += (weights_[j] = weight(cand_[j]));
  const double target = seeded_uniform(st.seed, static_cast<uint64_t>(st.index), static_cast<uint64_t>(st.num_output_tokens)) * total;
  double cum = 0.0;
  int32_t chosen = cand_.back();
  for (size_t j = 0; j < cand_.size(); ++j) {
    cum += weights_[j];
    if (cum > target) {
      chosen = cand_[j];
      break;
    }
  }
  res.token_id = chosen;
  if (p.logprobs) res.logprob = candidate_logprob(chosen, *p.logprobs, mx + std::log(total));
  return res;
}

TokenLogprob Sampler::candidate_logprob(int32_t token, int top_n, double lse) {
  // log_softmax restricted to the candidates (every other id is -inf, reported as -9999).
  TokenLogprob out;
  out.token_id = token;
  out.logprob = clamp_logprob(static_cast<float>(static_cast<double>(row_[static_cast<size_t>(token)]) - lse));
  const size_t n = std::min<size_t>(static_cast<size_t>(top_n), static_cast<size_t>(vocab_size_));
  if (n == 0) return out;
  order_.assign(cand_.begin(), cand_.end());
  const size_t head = std::min(n, order_.size());
  std::partial_sort(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(head), order_.end(),
                    [&](int32_t a, int32_t b) { return ranks_before(row_, a, b); });
  for (size_t j = 0; j < head; ++j)
    out.top.emplace_back(order_[j], clamp_logprob(static_cast<float>(static_cast<double>(row_[static_cast<size_t>(order_[j])]) - lse)));
  // Fewer candidates than asked: the rest are -inf ids, lowest ids first (as a full ranking would list them).
  for (int32_t id = 0; out.top.size() < n && id < vocab_size_; ++id)
    if (!std::isfinite(row_[static_cast<size_t>(id)])) out.top.emplace_back(id, kLogprobFloor);
  return out;
}

}  // namespace quench
