// quench/server/device_runner.cpp: see device_runner.h.
#include "server/device_runner.h"

#include <fmt/format.h>

#include "core/error.h"
#ifdef QUENCH_HAVE_CUDA
#include "backend/cuda/cuda_runner.h"
#endif

namespace quench::server {

void configure_device(EngineLoadOptions& opts, const std::string& device, double gpu_memory_utilization,
                      const std::filesystem::path& model_dir) {
  if (!(gpu_memory_utilization > 0.0 && gpu_memory_utilization <= 1.0))
    throw InvalidArgument(fmt::format("--gpu-memory-utilization must be in (0, 1], got {}", gpu_memory_utilization));
  opts.device = device;
  if (device == "cpu") return;
  if (device != "cuda") throw InvalidArgument(fmt::format("--device must be cpu or cuda, got '{}'", device));
#ifdef QUENCH_HAVE_CUDA
  opts.make_runner = [](std::shared_ptr<const Model> model, const KvCacheConfig& kv) -> std::unique_ptr<ModelRunner> {
    return std::make_unique<cuda::CudaModelRunner>(std::move(model), kv);
  };
  cuda::require_cuda_device();
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) throw cuda::CudaError("cudaMemGetInfo failed");
  double weights = 0;
  for (const auto& e : std::filesystem::directory_iterator(model_dir))
    if (e.path().extension() == ".safetensors") weights += static_cast<double>(e.file_size());
  constexpr double kGiB = double(1ull << 30), kReserve = 4.0 * kGiB;
  const double in_use = static_cast<double>(total_b - free_b);
  const double budget = gpu_memory_utilization * static_cast<double>(total_b) - weights - kReserve - in_use;
  if (budget <= 0)
    throw InvalidArgument(fmt::format(
        "--gpu-memory-utilization {}: {:.1f} of {:.1f} GiB leaves no room for the KV cache after {:.1f} GiB of "
        "weights, a {:.0f} GiB reserve and {:.1f} GiB already in use",
        gpu_memory_utilization, gpu_memory_utilization * total_b / kGiB, total_b / kGiB, weights / kGiB,
        kReserve / kGiB, in_use / kGiB));
  opts.kv_cache_memory_gib = budget / kGiB;
  opts.kv_full_length_seqs = opts.engine.max_num_seqs;
#else
  (void)model_dir;
  throw UnsupportedError("--device cuda: this quench was built without the CUDA backend");
#endif
}

}  // namespace quench::server
