// quench/server/device_runner.h: `--device` for the verbs that build an engine (serve, generate,
// the server tests): picks the ModelRunner and sizes the KV cache for that device.
#pragma once

#include <filesystem>
#include <string>

#include "server/engine_loader.h"

namespace quench::server {

/// Sets opts.device / opts.make_runner for `device` ("cpu" or "cuda") and, on the GPU, the
/// automatic KV budget as vLLM does: gpu_memory_utilization x device memory, minus the weights
/// (the checkpoint's .safetensors bytes, an upper bound: vision/audio towers are not uploaded),
/// minus a 4 GiB reserve (activations, cuBLAS workspaces, CUDA graphs) and memory already in use;
/// the budget then serves as many full-length sequences as max_num_seqs (--num-kv-blocks overrides).
/// Throws InvalidArgument for an unknown device (naming the flag) or a utilization outside (0, 1]
/// or too small to leave room for a KV cache; UnsupportedError for "cuda" in a build without the
/// CUDA backend; CudaError when no GPU is present.
void configure_device(EngineLoadOptions& opts, const std::string& device, double gpu_memory_utilization,
                      const std::filesystem::path& model_dir);

}  // namespace quench::server
