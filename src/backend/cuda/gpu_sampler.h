// quench/backend/cuda/gpu_sampler.h: sampling on the GPU (ModelRunner::execute_sample).
//
// Same pipeline and formulas as the CPU Sampler (engine/sampler.h), applied to logits that stay on
// the device: sparse adjustments (suppression / min_tokens masks, logit_bias, repetition,
// frequency and presence penalties) in place, then per row greedy argmax, or temperature, min_p,
// top_k, top_p and an inverse-CDF draw over the kept ids in ascending id order with the
// counter-based uniform sampling_random_bits(seed, index, step) (backend/backend.h). Only token ids
// and the chosen token's logprob cross to the host.
//
// How a row is filtered without sorting 262144 logits (sampling_kernels.cu): one block per row;
// pass 1 finds the max (and argmax); a histogram of (max - v) in 1/64 bins (counts, and masses
// exp(v - max) in 2^-40 fixed point so every sum is exact and run-to-run deterministic) locates
// the bin holding the k-th id / the top_p mass boundary; that bin's ids are gathered in shared
// memory and sorted (bitonic), or, when it holds more than 8192 ids, refined by further
// histograms over its key range. The kept set is "key >= threshold" over 64-bit keys
// (value, then lower id first), and the draw walks the kept weights in id order (warp sums, then
// 32-way chunk refinement). Tokens therefore equal the CPU sampler's except where fp32 exp or the
// 2^-40 rounding moves a boundary (ties within ~1e-12 of the mass).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/cuda_utils.h"

namespace quench::cuda {

/// Device copy of one DeviceSamplingRow (plain data, uploaded per step).
struct SamplingRowParams {
  int32_t logits_row = 0;
  int32_t top_k = 0;             ///< <= 0: off
  float temperature = 1.0f;      ///< already max(T, 0.01); unused when greedy
  float top_p = 1.0f;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  int32_t adj_offset = 0;        ///< first LogitAdjustment of this row in the uploaded array
  int32_t adj_count = 0;
  int32_t apply_adjustments = 0; ///< 1 on the first row using logits_row (adjusts it in place)
  int32_t greedy = 0;            ///< temperature < 1e-5
  int32_t want_logprob = 1;      ///< 0: the logprob may be left 0 (saves greedy rows a pass of exp)
  uint64_t random_bits = 0;      ///< sampling_random_bits(seed, index, step): u = bits * 2^-53
};

/// What a row's draw produced: token (-1 when every id was -inf) and its logprob (natural log).
struct SamplingRowResult {
  int32_t token = -1;
  float logprob = 0.0f;
};

// ---- launchers (sampling_kernels.cu); they enqueue on `stream` and never synchronise ----

/// For each row r with apply_adjustments: logits[rows[r].logits_row, id] edited per
/// LogitAdjustment (backend.h) for its adj_count entries of `adj`. logits fp32 [*, V].
void apply_logit_adjustments(float* logits, int V, const SamplingRowParams* rows, int n_rows,
                             const LogitAdjustment* adj, cudaStream_t stream);

/// One draw per row from logits fp32 [*, V] (rows[r].logits_row), results into out[n_rows].
/// `kept_mask` (may be null): uint8 [n_rows, V], 1 where the id is in the set the token was drawn
/// from (written for sampled rows only; greedy rows leave it untouched).
void sample_rows(const float* logits, int V, const SamplingRowParams* rows, int n_rows, SamplingRowResult* out,
                 uint8_t* kept_mask, cudaStream_t stream);

/// Host side: packs the rows, uploads them, launches both kernels and reads back the results.
class GpuSampler {
 public:
  explicit GpuSampler(int vocab_size);
  ~GpuSampler();
  GpuSampler(const GpuSampler&) = delete;
  GpuSampler& operator=(const GpuSampler&) = delete;

  /// Validates `rows` against n_logits and uploads them (async on `stream`). Throws
  /// InvalidArgument on a logits_row out of [0, n_logits), an adjustment id out of the vocabulary,
  /// or rows sharing a logits row with different adjustments / penalties.
  /// `logprobs` false: the results' logprobs are not needed (finish() gets an empty span).
  void prepare(std::span<const DeviceSamplingRow> rows, int n_logits, cudaStream_t stream, bool logprobs = true);
  /// Enqueues adjustments + draws of the prepared rows on `logits` (device fp32 [n_logits, V],
  /// edited in place by the adjustments). `kept_mask` as in sample_rows().
  void launch(float* logits, cudaStream_t stream, uint8_t* kept_mask = nullptr);
  /// Copies the results back, synchronises `stream` and fills the outputs (out_logprobs may be
  /// empty); out_tokens[i] = -1 when every id of row i was -inf. Throws InvalidArgument on sizes.
  void finish(cudaStream_t stream, std::span<int32_t> out_tokens, std::span<float> out_logprobs);

  /// prepare + launch + finish.
  void sample(float* logits, int n_logits, std::span<const DeviceSamplingRow> rows, std::span<int32_t> out_tokens,
              std::span<float> out_logprobs, cudaStream_t stream);

  int vocab_size() const { return vocab_; }
  int num_prepared_rows() const { return n_rows_; }

 private:
  void ensure(size_t rows, size_t adjustments);
  int vocab_;
  int n_rows_ = 0;
  size_t n_adj_ = 0;
  size_t cap_rows_ = 0, cap_adj_ = 0;
  void* host_ = nullptr;               // pinned: params | adjustments
  SamplingRowResult* host_out_ = nullptr;  // pinned
  DeviceBuffer dev_;                   // params | adjustments
  DeviceBuffer dev_out_;
};

}  // namespace quench::cuda
