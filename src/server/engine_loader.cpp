// quench/server/engine_loader.cpp: model directory -> Engine.
#include "server/engine_loader.h"

#include <algorithm>

#include <fmt/format.h>
#include "core/log.h"

#include "backend/cpu/runner.h"
#include "core/error.h"
#include "engine/kv_cache_sizing.h"
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
  // Both groups sized by plan_kv_cache (engine/kv_cache_sizing.h): the full group holds
  // min(max_num_seqs, kv_full_length_seqs) full-length sequences (short requests share the pool far
  // more widely), capped by the memory budget; the sliding-window group only what a window of each
  // running sequence can hold, the rest of the budget going to the full group; --num-kv-blocks
  // sets the full group.
  KvSizingRequest req;
  req.block_size = kv.block_size;
  req.dtype = kv.dtype;
  req.max_model_len = max_len;
  req.max_num_seqs = ec.max_num_seqs;
  req.max_num_batched_tokens = ec.max_num_batched_tokens;
  req.full_length_seqs = std::max(opts.kv_full_length_seqs, 1);
  req.budget_bytes = opts.kv_cache_memory_gib * double(1ull << 30);
  req.num_blocks_override = opts.num_kv_blocks;
  const KvCachePlan plan = plan_kv_cache(mc, req);
  kv.num_blocks_full = plan.num_blocks_full;
  kv.num_blocks_sliding = plan.num_blocks_sliding;
  std::unique_ptr<ModelRunner> runner =
      opts.device == "cpu" ? std::make_unique<CpuModelRunner>(model, kv) : opts.make_runner(model, kv);
  quench::log().info("quench: loaded {} on {} ({} layers, vocab {}), KV cache {} full-attention + {} sliding-window blocks of {} tokens ({:.2f} GiB), max_model_len {}",
               model_dir.string(), runner->name(), mc.num_hidden_layers, mc.vocab_size, kv.num_blocks_full,
               kv.num_blocks_sliding, kv.block_size, plan.bytes() / double(1ull << 30), max_len);
  return std::make_unique<Engine>(std::move(runner), std::move(tok), std::move(gen), ec);
}

}  // namespace quench::server
