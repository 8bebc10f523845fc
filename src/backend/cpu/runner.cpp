// quench/backend/cpu/runner.cpp: CpuModelRunner (runner.h).
#include "backend/cpu/runner.h"

#include "core/error.h"
#include "model/model.h"

namespace quench {

CpuModelRunner::CpuModelRunner(std::shared_ptr<const Model> model, const KvCacheConfig& kv_config)
    : model_(std::move(model)), kv_config_(kv_config), decoder_(model_->config(), model_->weights()) {
  const ModelConfig& cfg = model_->config();
  std::vector<int> dims[2];
  std::vector<float> k_scales[2], v_scales[2];
  for (int l = 0; l < cfg.num_hidden_layers; ++l) {
    const LayerConfig& lc = cfg.layers[l];
    const LayerWeights& lw = model_->weights().layers[l];
    const int g = lc.type == LayerType::kSliding && lc.sliding_window > 0 ? 1 : 0;
    group_of_.push_back(g);
    index_in_group_.push_back(static_cast<int>(dims[g].size()));
    dims[g].push_back(lc.num_kv_heads * lc.head_dim);
    k_scales[g].push_back(lw.k_scale.value_or(1.0f));
    v_scales[g].push_back(lw.v_scale.value_or(1.0f));
  }
  full_pool_ = std::make_unique<PagedKvPool>("full", dims[0], k_scales[0], v_scales[0], kv_config.num_blocks_full,
                                             kv_config.block_size, kv_config.dtype);
  sliding_pool_ = std::make_unique<PagedKvPool>("sliding", dims[1], k_scales[1], v_scales[1],
                                                dims[1].empty() ? 0 : kv_config.num_blocks_sliding,
                                                kv_config.block_size, kv_config.dtype);
}

const ModelConfig& CpuModelRunner::config() const { return model_->config(); }

KvCacheSpec CpuModelRunner::kv_cache_spec() const {
  KvCacheSpec spec;
  spec.block_size = kv_config_.block_size;
  spec.num_blocks_full = full_pool_->num_blocks();
  spec.num_blocks_sliding = sliding_pool_->num_blocks();
  spec.sliding_window = model_->config().sliding_window;
  spec.dtype = kv_config_.dtype;
  return spec;
}

void CpuModelRunner::validate_tables(const SeqStep& s, int index) const {
  const int end = s.start_pos + static_cast<int>(s.tokens.size());
  const int window = model_->config().sliding_window;
  auto check = [&](std::span<const int32_t> table, const PagedKvPool& pool, int first_pos, const char* what) {
    if (pool.kv_dim_count() == 0 || end <= 0) return;
    const int bs = pool.block_size();
    for (int b = std::max(0, first_pos) / bs; b <= (end - 1) / bs; ++b) {
      const int32_t id = b < static_cast<int>(table.size()) ? table[b] : -2;
      if (id < 0 || id >= pool.num_blocks())
        throw InvalidArgument("execute: batch entry " + std::to_string(index) + ": " + what + "[" + std::to_string(b) +
                              "] = " + (id == -2 ? std::string("<missing>") : std::to_string(id)) +
                              ", but positions up to " + std::to_string(end - 1) + " need a block in [0, " +
                              std::to_string(pool.num_blocks()) + ")");
    }
  };
  check(s.block_table_full, *full_pool_, 0, "block_table_full");
  check(s.block_table_sliding, *sliding_pool_, s.start_pos - window + 1, "block_table_sliding");
}

void CpuModelRunner::execute(std::span<const SeqStep> batch, std::span<float> logits) {
  std::vector<PagedSequenceKv> views;
  std::vector<DecoderSlice> slices;
  std::vector<int> rows;
  views.reserve(batch.size());
  int row = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    const SeqStep& s = batch[i];
    if (s.tokens.empty()) throw InvalidArgument("execute: batch entry " + std::to_string(i) + " has no tokens");
    validate_tables(s, static_cast<int>(i));
    views.emplace_back(full_pool_.get(), sliding_pool_.get(), &group_of_, &index_in_group_, s.block_table_full,
                       s.block_table_sliding);
    row += static_cast<int>(s.tokens.size());
    if (s.want_logits) rows.push_back(row - 1);
  }
  for (size_t i = 0; i < batch.size(); ++i) slices.push_back({batch[i].tokens, batch[i].start_pos, &views[i]});
  const size_t need = rows.size() * size_t(model_->config().vocab_size);
  if (logits.size() != need)
    throw InvalidArgument("execute: logits span has " + std::to_string(logits.size()) + " floats, expected " +
                          std::to_string(rows.size()) + " x vocab_size " +
                          std::to_string(model_->config().vocab_size) + " = " + std::to_string(need));
  decoder_.run(slices, rows, logits.data(), nullptr);
}

}  // namespace quench
