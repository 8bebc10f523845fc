// quench/server/engine_loader.cpp: model directory -> Engine.
#include "server/engine_loader.h"

#include <algorithm>

#include <fmt/format.h>
#include "core/log.h"

#include "backend/cpu/runner.h"
#include "core/error.h"
#include "model/model.h"
#include "tokenizer/generation_config.h"
#include "tokenizer/tokenizer.h"

namespace quench::server {

KvCacheDtype parse_kv_cache_dtype(const std::string& s) {
  if (s == "auto" || s == "bf16" || s == "bfloat16") return KvCacheDtype::kBF16;
  if (s == "fp8" || s == "fp8_e4m3") return KvCacheDtype::kFP8E4M3;
  if (s == "fp32" || s == "float32") return KvCacheDtype::kFP32;
  throw InvalidArgument(fmt::format("--kv-cache-dtype: '{}' is not one of auto, bf16, fp8, fp8_e4m3, fp32", s));
}

std::unique_ptr<Engine> load_engine(const std::filesystem::path& model_dir, const EngineLoadOptions& opts) {
  if (opts.device != "cpu" && !opts.make_runner)
    throw UnsupportedError(fmt::format("--device {}: only 'cpu' is available in this build", opts.device));
  std::shared_ptr<const Model> model = Model::load(model_dir);
  const ModelConfig& mc = model->config();
  auto tok = std::make_shared<const Tokenizer>(Tokenizer::load(model_dir / "tokenizer.json"));
  GenerationConfig gen = GenerationConfig::load(model_dir);

  EngineConfig ec = opts.engine;
  int max_len = ec.max_model_len > 0 ? ec.max_model_len : mc.max_position_embeddings;
  // Checked before any KV memory is sized or allocated (a huge value must not reach the allocator).
  if (ec.max_model_len < 0) throw InvalidArgument(fmt::format("--max-model-len must be >= 0, got {}", ec.max_model_len));
  if (mc.max_position_embeddings > 0 && max_len > mc.max_position_embeddings)
    throw InvalidArgument(fmt::format("--max-model-len {} exceeds the model's max_position_embeddings {}",
                                      ec.max_model_len, mc.max_position_embeddings));
  if (opts.block_size < 1) throw InvalidArgument(fmt::format("block size must be >= 1, got {}", opts.block_size));
  KvCacheConfig kv;
  kv.block_size = opts.block_size;
  kv.dtype = parse_kv_cache_dtype(opts.kv_cache_dtype);
  int blocks = opts.num_kv_blocks;
  if (blocks <= 0) {
    // Enough for min(max_num_seqs, kv_full_length_seqs) full-length sequences (short requests share
    // the pool far more widely), capped by the memory budget; --num-kv-blocks overrides.
    size_t elem = kv.dtype == KvCacheDtype::kFP32 ? 4 : kv.dtype == KvCacheDtype::kBF16 ? 2 : 1;
    size_t bytes_per_block = 0;
    for (const auto& l : mc.layers) bytes_per_block += 2ull * kv.block_size * l.num_kv_heads * l.head_dim * elem;
    int per_seq = (max_len + kv.block_size - 1) / kv.block_size;
    int64_t want = static_cast<int64_t>(per_seq) * std::min(ec.max_num_seqs, std::max(opts.kv_full_length_seqs, 1)) + 1;
    int64_t cap = bytes_per_block ? static_cast<int64_t>(opts.kv_cache_memory_gib * (1ull << 30) / bytes_per_block) : want;
    blocks = static_cast<int>(std::max<int64_t>(std::min(want, cap), per_seq + 1));
  }
  kv.num_blocks_full = blocks;
  kv.num_blocks_sliding = mc.num_layers_of(LayerType::kSliding) > 0 ? blocks : 0;
  std::unique_ptr<ModelRunner> runner =
      opts.device == "cpu" ? std::make_unique<CpuModelRunner>(model, kv) : opts.make_runner(model, kv);
  quench::log().info("quench: loaded {} on {} ({} layers, vocab {}), KV cache {} blocks x {} tokens per group, max_model_len {}",
               model_dir.string(), runner->name(), mc.num_hidden_layers, mc.vocab_size, blocks, kv.block_size, max_len);
  return std::make_unique<Engine>(std::move(runner), std::move(tok), std::move(gen), ec);
}

}  // namespace quench::server
