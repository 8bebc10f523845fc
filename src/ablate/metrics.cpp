// quench/ablate/metrics.cpp: see metrics.h.
#include "ablate/metrics.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace quench::ablate {

namespace {
double proj_norm(const Vectors& q, const float* x, const float* prev, double inv_scalar) {
  double s2 = 0.0;
  for (const auto& qi : q) {
    double c = 0.0;
    for (std::size_t j = 0; j < qi.size(); ++j) c += qi[j] * (prev ? x[j] * inv_scalar - prev[j] : x[j]);
    s2 += c * c;
  }
  return std::sqrt(s2);
}
}  // namespace

Projections subspace_projections(const Captures& c, const std::vector<Vectors>& subspace,
                                 const std::vector<float>& layer_scalars) {
  Projections p;
  p.stream.assign(c.num_layers, 0.0);
  p.write.assign(c.num_layers, 0.0);
  if (c.num_prompts == 0) return p;
  for (int l = 0; l < c.num_layers; ++l) {
    const Vectors& q = subspace.at(l);
    if (q.empty()) continue;
    const double inv = 1.0 / static_cast<double>(layer_scalars.at(l));
    for (int i = 0; i < c.num_prompts; ++i) {
      p.stream[l] += proj_norm(q, c.h(i, l), nullptr, 1.0);
      p.write[l] += proj_norm(q, c.h(i, l), c.h_prev(i, l), inv);
    }
    p.stream[l] /= c.num_prompts;
    p.write[l] /= c.num_prompts;
  }
  return p;
}

std::vector<double> first_token_kl(const Captures& original, const Captures& edited) {
  if (original.logits.empty() || edited.logits.empty() || original.num_prompts != edited.num_prompts ||
      original.vocab != edited.vocab)
    throw InvalidArgument("first_token_kl: both captures need logits of the same prompts");
  const int v = original.vocab;
  std::vector<double> out;
  auto log_softmax = [v](const float* z, std::vector<double>& ls) {
    const double mx = *std::max_element(z, z + v);
    double s = 0.0;
    for (int i = 0; i < v; ++i) s += std::exp(static_cast<double>(z[i]) - mx);
    const double lse = mx + std::log(s);
    for (int i = 0; i < v; ++i) ls[i] = z[i] - lse;
  };
  std::vector<double> lp(v), lq(v);
  for (int p = 0; p < original.num_prompts; ++p) {
    log_softmax(original.logits.data() + static_cast<std::size_t>(p) * v, lp);
    log_softmax(edited.logits.data() + static_cast<std::size_t>(p) * v, lq);
    double kl = 0.0;
    for (int i = 0; i < v; ++i) kl += std::exp(lp[i]) * (lp[i] - lq[i]);
    out.push_back(std::max(0.0, kl));
  }
  return out;
}

std::string normalize_for_marker(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '*') continue;
    // U+2018 / U+2019 are E2 80 98 / E2 80 99 in UTF-8.
    if (c == 0xE2 && i + 2 < text.size() && static_cast<unsigned char>(text[i + 1]) == 0x80 &&
        (static_cast<unsigned char>(text[i + 2]) == 0x98 || static_cast<unsigned char>(text[i + 2]) == 0x99)) {
      out.push_back('\'');
      i += 2;
      continue;
    }
    out.push_back(c < 0x80 ? static_cast<char>(std::tolower(c)) : static_cast<char>(c));
  }
  return out;
}

bool has_marker(const std::string& reply, const std::vector<std::string>& markers) {
  const std::string r = normalize_for_marker(reply);
  if (r.find_first_not_of(" \t\r\n") == std::string::npos) return true;
  for (const auto& m : markers)
    if (!m.empty() && r.find(normalize_for_marker(m)) != std::string::npos) return true;
  return false;
}

}  // namespace quench::ablate
