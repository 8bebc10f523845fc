// quench/backend/cuda/gpu_sampler.cpp: packing, upload and read-back around the sampling kernels.
#include "backend/cuda/gpu_sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include <fmt/format.h>

namespace quench::cuda {

namespace {

constexpr float kLogprobFloor = -9999.0f;  // OpenAI's clamp for -inf logprobs (as the CPU sampler)

bool same_adjustments(const DeviceSamplingRow& a, const DeviceSamplingRow& b) {
  if (a.repetition_penalty != b.repetition_penalty || a.presence_penalty != b.presence_penalty ||
      a.frequency_penalty != b.frequency_penalty || a.adjustments.size() != b.adjustments.size())
    return false;
  if (a.adjustments.data() == b.adjustments.data()) return true;
  return std::memcmp(a.adjustments.data(), b.adjustments.data(), a.adjustments.size_bytes()) == 0;
}

}  // namespace

GpuSampler::GpuSampler(int vocab_size) : vocab_(vocab_size) {
  if (vocab_ < 1) throw InvalidArgument(fmt::format("GpuSampler: vocab_size must be >= 1, got {}", vocab_));
}

GpuSampler::~GpuSampler() {
  if (host_) cudaFreeHost(host_);
  if (host_out_) cudaFreeHost(host_out_);
}

void GpuSampler::ensure(size_t rows, size_t adjustments) {
  if (rows <= cap_rows_ && adjustments <= cap_adj_) return;
  const size_t r = std::max(rows, cap_rows_ == 0 ? size_t{64} : cap_rows_ * 2);
  const size_t a = std::max(adjustments, cap_adj_ == 0 ? size_t{4096} : cap_adj_ * 2);
  // The previous step's copies may still be in flight on a stream: wait before freeing.
  QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
  if (host_) cudaFreeHost(host_);
  if (host_out_) cudaFreeHost(host_out_);
  host_ = nullptr;
  host_out_ = nullptr;
  const size_t bytes = r * sizeof(SamplingRowParams) + a * sizeof(LogitAdjustment);
  QUENCH_CUDA_CHECK(cudaMallocHost(&host_, bytes));
  QUENCH_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&host_out_), r * sizeof(SamplingRowResult)));
  dev_.reset(bytes);
  dev_out_.reset(r * sizeof(SamplingRowResult));
  cap_rows_ = r;
  cap_adj_ = a;
}

void GpuSampler::prepare(std::span<const DeviceSamplingRow> rows, int n_logits, cudaStream_t stream, bool logprobs) {
  size_t n_adj = 0;
  // First sampling row of each logits row: it applies the (shared) adjustments.
  std::vector<int> owner(static_cast<size_t>(std::max(n_logits, 0)), -1);
  for (size_t i = 0; i < rows.size(); ++i) {
    const DeviceSamplingRow& r = rows[i];
    if (r.logits_row < 0 || r.logits_row >= n_logits)
      throw InvalidArgument(fmt::format("GPU sampler: row {}: logits_row {} is outside the step's {} logits rows", i,
                                        r.logits_row, n_logits));
    int& o = owner[static_cast<size_t>(r.logits_row)];
    if (o < 0) {
      o = static_cast<int>(i);
      for (const LogitAdjustment& a : r.adjustments)
        if (a.token_id < 0 || a.token_id >= vocab_)
          throw InvalidArgument(fmt::format("GPU sampler: row {}: adjustment token id {} is outside the vocabulary [0, {})",
                                            i, a.token_id, vocab_));
      n_adj += r.adjustments.size();
    } else if (!same_adjustments(rows[static_cast<size_t>(o)], r)) {
      throw InvalidArgument(fmt::format(
          "GPU sampler: rows {} and {} share logits row {} but differ in penalties or adjustments", o, i, r.logits_row));
    }
  }
  ensure(rows.size(), n_adj);
  auto* params = static_cast<SamplingRowParams*>(host_);
  auto* adj = reinterpret_cast<LogitAdjustment*>(static_cast<char*>(host_) + cap_rows_ * sizeof(SamplingRowParams));
  size_t off = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const DeviceSamplingRow& r = rows[i];
    SamplingRowParams& p = params[i];
    p = SamplingRowParams{};
    p.logits_row = r.logits_row;
    p.greedy = r.temperature < 1e-5f ? 1 : 0;  // SamplingParams::is_greedy
    p.want_logprob = logprobs ? 1 : 0;
    p.temperature = std::max(r.temperature, 0.01f);
    p.top_k = r.top_k > 0 ? r.top_k : 0;
    p.top_p = r.top_p;
    p.min_p = r.min_p;
    p.repetition_penalty = r.repetition_penalty;
    p.presence_penalty = r.presence_penalty;
    p.frequency_penalty = r.frequency_penalty;
    p.random_bits = sampling_random_bits(r.seed, r.index, r.step);
    if (owner[static_cast<size_t>(r.logits_row)] == static_cast<int>(i) && !r.adjustments.empty()) {
      p.apply_adjustments = 1;
      p.adj_offset = static_cast<int32_t>(off);
      p.adj_count = static_cast<int32_t>(r.adjustments.size());
      std::memcpy(adj + off, r.adjustments.data(), r.adjustments.size_bytes());
      off += r.adjustments.size();
    }
  }
  n_rows_ = static_cast<int>(rows.size());
  n_adj_ = off;
  if (rows.empty()) return;
  // Two copies (params, then adjustments) into the same layout on the device.
  QUENCH_CUDA_CHECK(cudaMemcpyAsync(dev_.get(), host_, rows.size() * sizeof(SamplingRowParams), cudaMemcpyHostToDevice,
                                    stream));
  if (off > 0)
    QUENCH_CUDA_CHECK(cudaMemcpyAsync(static_cast<char*>(dev_.get()) + cap_rows_ * sizeof(SamplingRowParams), adj,
                                      off * sizeof(LogitAdjustment), cudaMemcpyHostToDevice, stream));
}

void GpuSampler::launch(float* logits, cudaStream_t stream, uint8_t* kept_mask) {
  if (n_rows_ == 0) return;
  const auto* params = dev_.get<SamplingRowParams>();
  if (n_adj_ > 0)
    apply_logit_adjustments(logits, vocab_, params, n_rows_,
                            reinterpret_cast<const LogitAdjustment*>(static_cast<char*>(dev_.get()) +
                                                                     cap_rows_ * sizeof(SamplingRowParams)),
                            stream);
  sample_rows(logits, vocab_, params, n_rows_, dev_out_.get<SamplingRowResult>(), kept_mask, stream);
}

void GpuSampler::finish(cudaStream_t stream, std::span<int32_t> out_tokens, std::span<float> out_logprobs) {
  if (out_tokens.size() != static_cast<size_t>(n_rows_) || (!out_logprobs.empty() && out_logprobs.size() != out_tokens.size()))
    throw InvalidArgument(fmt::format("GPU sampler: {} rows prepared but out_tokens has {} and out_logprobs {} entries",
                                      n_rows_, out_tokens.size(), out_logprobs.size()));
  if (n_rows_ > 0)
    QUENCH_CUDA_CHECK(cudaMemcpyAsync(host_out_, dev_out_.get(), static_cast<size_t>(n_rows_) * sizeof(SamplingRowResult),
                                      cudaMemcpyDeviceToHost, stream));
  QUENCH_CUDA_CHECK(cudaStreamSynchronize(stream));
  for (int i = 0; i < n_rows_; ++i) {
    const SamplingRowResult& r = host_out_[i];
    if (r.token < -1 || r.token >= vocab_)
      throw CudaError(fmt::format("GPU sampler: row {}: kernel returned token {} outside [-1, {})", i, r.token, vocab_));
    out_tokens[static_cast<size_t>(i)] = r.token;  // -1: every id was -inf
    if (!out_logprobs.empty())
      out_logprobs[static_cast<size_t>(i)] = std::isfinite(r.logprob) ? r.logprob : kLogprobFloor;
  }
}

void GpuSampler::sample(float* logits, int n_logits, std::span<const DeviceSamplingRow> rows,
                        std::span<int32_t> out_tokens, std::span<float> out_logprobs, cudaStream_t stream) {
  prepare(rows, n_logits, stream);
  launch(logits, stream);
  finish(stream, out_tokens, out_logprobs);
}

}  // namespace quench::cuda
