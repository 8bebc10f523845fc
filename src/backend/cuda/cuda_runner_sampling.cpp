// quench/backend/cuda/cuda_runner_sampling.cpp: CudaModelRunner::execute_sample, the forward step
// followed by sampling on the GPU (gpu_sampler.h); only token ids and logprobs cross to the host.
#include "backend/cuda/cuda_runner.h"

#ifdef QUENCH_CUDA_RUNNER_HAS_DEVICE_SAMPLING

#include <fmt/format.h>

#include "backend/cuda/gpu_sampler.h"
#include "io/model_config.h"

namespace quench::cuda {

void CudaModelRunner::execute_sample(std::span<const SeqStep> batch, std::span<const DeviceSamplingRow> rows,
                                     std::span<int32_t> out_tokens, std::span<float> out_logprobs) {
  if (out_tokens.size() != rows.size() || (!out_logprobs.empty() && out_logprobs.size() != rows.size()))
    throw InvalidArgument(fmt::format("CUDA runner: execute_sample got {} rows but out_tokens has {} and out_logprobs {} entries",
                                      rows.size(), out_tokens.size(), out_logprobs.size()));
  int want = 0;
  for (const SeqStep& s : batch) want += s.want_logits ? 1 : 0;
  for (size_t i = 0; i < rows.size(); ++i)
    if (rows[i].logits_row < 0 || rows[i].logits_row >= want)
      throw InvalidArgument(fmt::format("CUDA runner: execute_sample row {}: logits_row {} is outside the batch's {} wanted rows",
                                        i, rows[i].logits_row, want));
  const int V = config().vocab_size;
  if (!gpu_sampler_) gpu_sampler_ = std::make_shared<GpuSampler>(V);

  // All greedy without adjustments or logprobs: the argmax fused into the (graph-replayed) step.
  bool plain_greedy = out_logprobs.empty();
  for (const DeviceSamplingRow& r : rows) plain_greedy &= r.temperature < 1e-5f && r.adjustments.empty();
  if (plain_greedy) {
    const int n = run_step(batch, StepOutput::kGreedy);
    std::vector<int32_t> argmax(static_cast<size_t>(n));
    copy_tokens(n, argmax);
    for (size_t i = 0; i < rows.size(); ++i) out_tokens[i] = argmax[static_cast<size_t>(rows[i].logits_row)];
    return;
  }
  // Rows are uploaded while the forward step runs (same stream, so they land before the draw).
  gpu_sampler_->prepare(rows, want, stream(), !out_logprobs.empty());
  const int n = run_step(batch, StepOutput::kLogits);
  if (n != want) throw InvalidArgument(fmt::format("CUDA runner: step produced {} logits rows, expected {}", n, want));
  // The logits buffer is this runner's per-step scratch: the adjustments edit it in place.
  gpu_sampler_->launch(const_cast<float*>(logits_device()), stream());
  gpu_sampler_->finish(stream(), out_tokens, out_logprobs);
}

}  // namespace quench::cuda

#endif  // QUENCH_CUDA_RUNNER_HAS_DEVICE_SAMPLING
