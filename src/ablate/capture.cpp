// quench/ablate/capture.cpp: see capture.h.
#include "ablate/capture.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/forward.h"
#include "core/error.h"
#include "model/weights.h"

namespace quench::ablate {

Captures capture_last_position(CpuForward& fwd, const ModelWeights& weights,
                               const std::vector<std::vector<int32_t>>& prompts, bool keep_logits) {
  const ModelConfig& cfg = fwd.config();
  Captures c;
  c.num_prompts = static_cast<int>(prompts.size());
  c.num_layers = cfg.num_hidden_layers;
  c.hidden = cfg.hidden_size;
  c.vocab = cfg.vocab_size;
  c.residual.assign(static_cast<std::size_t>(c.num_prompts) * c.num_layers * c.hidden, 0.0f);
  c.embed.assign(static_cast<std::size_t>(c.num_prompts) * c.hidden, 0.0f);
  if (keep_logits) c.logits.assign(static_cast<std::size_t>(c.num_prompts) * c.vocab, 0.0f);
  const float embed_scale = static_cast<float>(std::sqrt(static_cast<double>(c.hidden)));
  std::vector<float> logits(c.vocab);
  for (int p = 0; p < c.num_prompts; ++p) {
    const auto& ids = prompts[p];
    if (ids.empty()) throw InvalidArgument("capture: prompt " + std::to_string(p) + " has no tokens");
    ForwardHooks hooks;
    hooks.after_block = [&](int layer, const float* residual, int n_tokens, int hidden) {
      std::memcpy(c.residual.data() + (static_cast<std::size_t>(p) * c.num_layers + layer) * c.hidden,
                  residual + static_cast<std::size_t>(n_tokens - 1) * hidden, sizeof(float) * hidden);
    };
    auto cache = fwd.new_cache(static_cast<int>(ids.size()));
    fwd.forward(ids, 0, cache, logits.data(), &hooks);
    if (keep_logits) std::copy(logits.begin(), logits.end(), c.logits.begin() + static_cast<std::size_t>(p) * c.vocab);
    const int64_t tok = ids.back();
    for (int j = 0; j < c.hidden; ++j)
      c.embed[static_cast<std::size_t>(p) * c.hidden + j] = weights.embed_tokens.get_f32(tok * c.hidden + j) * embed_scale;
  }
  return c;
}

std::vector<int32_t> greedy_generate(CpuForward& fwd, const std::vector<int32_t>& prompt, int max_new_tokens,
                                     const std::vector<int32_t>& stop_ids) {
  std::vector<int32_t> out;
  if (max_new_tokens <= 0) return out;
  std::vector<float> logits(fwd.config().vocab_size);
  auto cache = fwd.new_cache(static_cast<int>(prompt.size()) + max_new_tokens);
  fwd.forward(prompt, 0, cache, logits.data());
  for (int step = 0; step < max_new_tokens; ++step) {
    const int32_t next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    if (std::find(stop_ids.begin(), stop_ids.end(), next) != stop_ids.end()) break;
    out.push_back(next);
    if (step + 1 == max_new_tokens) break;
    fwd.forward({&next, 1}, cache.length(), cache, logits.data());
  }
  return out;
}

}  // namespace quench::ablate
