// quench/backend/cpu/forward.cpp: single-sequence forward over a ContiguousKvCache (forward.h).
#include "backend/cpu/forward.h"

#include <numeric>
#include <vector>

#include "core/error.h"
#include "model/model.h"

namespace quench {

CpuForward::CpuForward(const Model& model) : decoder_(model.config(), model.weights()) {}

CpuForward::CpuForward(const ModelConfig& config, const ModelWeights& weights) : decoder_(config, weights) {}

ContiguousKvCache CpuForward::new_cache(int reserve_tokens) const {
  return ContiguousKvCache(decoder_.config(), reserve_tokens);
}

void CpuForward::forward(std::span<const int32_t> tokens, int start_pos, ContiguousKvCache& cache,
                         float* logits_out_or_null, const ForwardHooks* hooks, LogitsFor logits_for) {
  if (tokens.empty()) throw InvalidArgument("CpuForward::forward: no tokens");
  if (start_pos < 0 || start_pos > cache.length())
    throw InvalidArgument("CpuForward::forward: start_pos " + std::to_string(start_pos) + " outside [0, cache length " +
                          std::to_string(cache.length()) + "]");
  cache.truncate(start_pos);
  const DecoderSlice slice{tokens, start_pos, &cache};
  std::vector<int> rows;
  if (logits_out_or_null) {
    if (logits_for == LogitsFor::kAll) {
      rows.resize(tokens.size());
      std::iota(rows.begin(), rows.end(), 0);
    } else {
      rows.push_back(static_cast<int>(tokens.size()) - 1);
    }
  }
  decoder_.run({&slice, 1}, rows, logits_out_or_null, hooks);
}

}  // namespace quench
