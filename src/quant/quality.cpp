// quench/quant/quality.cpp: see quality.h.
#include "quant/quality.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "backend/cpu/forward.h"  // CpuForward
#include "core/error.h"           // InvalidArgument
#include "model/model.h"          // Model

namespace quench {

namespace {

/// log-sum-exp of `x[0..n)` in double.
double log_sum_exp(const float* x, int n) {
  double m = -INFINITY;
  for (int i = 0; i < n; ++i) m = std::max(m, static_cast<double>(x[i]));
  double s = 0.0;
  for (int i = 0; i < n; ++i) s += std::exp(static_cast<double>(x[i]) - m);
  return m + std::log(s);
}

int argmax(const float* x, int n) { return static_cast<int>(std::max_element(x, x + n) - x); }

}  // namespace

double kl_divergence(const float* p_logits, const float* q_logits, int vocab) {
  const double lp = log_sum_exp(p_logits, vocab), lq = log_sum_exp(q_logits, vocab);
  double kl = 0.0;
  for (int v = 0; v < vocab; ++v) {
    const double logp = p_logits[v] - lp, logq = q_logits[v] - lq;
    kl += std::exp(logp) * (logp - logq);
  }
  return std::max(kl, 0.0);
}

LogitQuality compare_logits(const Model& ref, const Model& quant, const std::vector<std::vector<int32_t>>& samples) {
  const int vocab = ref.config().vocab_size;
  if (quant.config().vocab_size != vocab)
    throw InvalidArgument(fmt::format("quality: vocab sizes differ ({} vs {})", vocab, quant.config().vocab_size));
  CpuForward fr(ref), fq(quant);
  LogitQuality q;
  double kl_sum = 0.0, nll_ref = 0.0, nll_q = 0.0;
  int64_t agree = 0;
  for (const auto& s : samples) {
    const int n = static_cast<int>(s.size());
    if (n < 2) continue;
    std::vector<float> lr(static_cast<std::size_t>(n) * vocab), lq(lr.size());
    ContiguousKvCache cr = fr.new_cache(n), cq = fq.new_cache(n);
    fr.forward(s, 0, cr, lr.data(), nullptr, LogitsFor::kAll);
    fq.forward(s, 0, cq, lq.data(), nullptr, LogitsFor::kAll);
    for (int t = 0; t + 1 < n; ++t) {
      const float* a = lr.data() + static_cast<std::size_t>(t) * vocab;
      const float* b = lq.data() + static_cast<std::size_t>(t) * vocab;
      const double kl = kl_divergence(a, b, vocab);
      kl_sum += kl;
      q.kl_max = std::max(q.kl_max, kl);
      agree += argmax(a, vocab) == argmax(b, vocab);
      const int next = s[t + 1];
      nll_ref += log_sum_exp(a, vocab) - a[next];
      nll_q += log_sum_exp(b, vocab) - b[next];
      ++q.positions;
    }
    ++q.samples;
  }
  if (q.positions == 0) throw InvalidArgument("quality: no held-out sample with at least two tokens");
  const double np = static_cast<double>(q.positions);
  q.kl_mean = kl_sum / np;
  q.top1_agreement = agree / np;
  q.ppl_ref = std::exp(nll_ref / np);
  q.ppl_quant = std::exp(nll_q / np);
  return q;
}

}  // namespace quench
