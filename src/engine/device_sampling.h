// quench/engine/device_sampling.h: the engine side of sampling on the backend's device
// (ModelRunner::execute_sample): which requests can be sampled there, the sparse logit edits of a
// draw, and the host definition of a DeviceSamplingRow draw.
//
// A draw on the device follows the CPU Sampler's pipeline (engine/sampler.h) with the same
// counter-based uniform (sampling_random_bits, backend/backend.h), so a seeded request gives the
// same tokens whatever its batch and run to run. Against the CPU sampler the GPU kernels agree
// except where fp32 exp and fixed-point mass sums move a top_p / inverse-CDF boundary (ties within
// ~1e-7 relative): seeded outputs can differ between --device cpu and --device cuda.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "engine/sampler.h"

namespace quench {

/// True when a request's draws can run on the device: everything the CPU sampler does except
/// top-N logprobs (logprobs > 0 needs the whole row on the host). logprobs == 0 (the sampled
/// token's own logprob) is returned by the device.
bool can_sample_on_device(const SamplingParams& p);

/// The CPU Sampler's steps 1-3 for one draw as sparse edits (distinct ids, ascending): suppressed
/// ids and, under min_tokens, the stop ids masked; logit_bias; kSeen for prompt+output ids when
/// repetition_penalty != 1; output counts when frequency/presence penalties are set. Ids outside
/// [0, vocab_size) are skipped (as the CPU sampler skips them). `out` is overwritten.
void build_logit_adjustments(const SamplerSeqState& st, std::span<const int32_t> suppress_ids,
                             std::span<const int32_t> eos_ids, int vocab_size, std::vector<LogitAdjustment>& out);

/// The DeviceSamplingRow carrying `st`'s parameters, drawing from wanted-logits row `logits_row`
/// with `adjustments` (which must outlive the row).
DeviceSamplingRow make_device_sampling_row(const SamplerSeqState& st, int logits_row,
                                           std::span<const LogitAdjustment> adjustments);

/// Applies `adjustments` to `row` in place, with the formulas and order of LogitAdjustment.
void apply_logit_adjustments(std::span<float> row, std::span<const LogitAdjustment> adjustments,
                             const DeviceSamplingRow& params);

/// The draw a DeviceSamplingRow defines, computed on the host: adjustments, then the CPU Sampler
/// (`sampler` must have no suppressed ids) at the row's temperature / top_k / top_p / min_p with
/// seed, index and step. Returns the token (-1 when every id is -inf) and its logprob (-9999 for
/// -inf). Test doubles of ModelRunner::execute_sample use it; the GPU kernels are tested against it.
std::pair<int32_t, float> sample_device_row_on_host(std::span<const float> logits, const DeviceSamplingRow& row,
                                                    Sampler& sampler);

}  // namespace quench
