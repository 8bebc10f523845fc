// quench/server/engine_loader.h: builds a started Engine for a model directory (serve, bench, tests).
//
// Loads the checkpoint (Model::load), its tokenizer.json and generation_config, sizes the paged KV
// cache and constructs the backend's ModelRunner (CPU now; CUDA when that backend lands).
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "engine/engine.h"

namespace quench {
class Model;
}

namespace quench::server {

/// Builds the backend for a loaded model and KV-cache config (e.g. the CUDA runner, which only
/// the executable links). Throws what the backend throws (no device, out of memory ...).
using RunnerFactory =
    std::function<std::unique_ptr<ModelRunner>(std::shared_ptr<const Model>, const KvCacheConfig&)>;

/// `quench serve` / `quench bench --model` options that shape the engine (vLLM flag names).
struct EngineLoadOptions {
  EngineConfig engine;                ///< --max-num-seqs, --max-model-len, --max-num-batched-tokens, prefix/chunked
  std::string kv_cache_dtype = "auto";///< --kv-cache-dtype: auto (bf16) | bf16 | fp8 | fp8_e4m3 | fp32
  int num_kv_blocks = 0;              ///< --num-kv-blocks per KV group; 0 = sized from the limits below
  int block_size = 16;                ///< tokens per KV block
  double kv_cache_memory_gib = 1.0;   ///< cap on automatic KV sizing (CPU stand-in for --gpu-memory-utilization)
  /// Automatic sizing aims at this many full-length (max_model_len) sequences, capped by
  /// kv_cache_memory_gib; the GPU path sets it to max_num_seqs so the budget decides (as vLLM).
  int kv_full_length_seqs = 8;
  std::string device = "cpu";         ///< --device: "cpu" (built in) or any device make_runner serves
  RunnerFactory make_runner;          ///< required when device != "cpu" (the CLI passes the CUDA runner)
};

/// Parses --kv-cache-dtype; throws InvalidArgument naming the flag and the allowed values.
KvCacheDtype parse_kv_cache_dtype(const std::string& s);

/// Loads `model_dir` and returns an engine (not started). Throws IoError / FormatError /
/// UnsupportedError from the loaders, InvalidArgument for bad options (naming the flag).
std::unique_ptr<Engine> load_engine(const std::filesystem::path& model_dir, const EngineLoadOptions& opts);

}  // namespace quench::server
