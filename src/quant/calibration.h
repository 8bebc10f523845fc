// quench/quant/calibration.h: activation amax collection for static input / KV scales, ModelOpt's
// `max` calibration algorithm (../shared/reference/nvfp4-modelopt-format.md §9: a running max of
// max|x| over every calibration batch, per Linear input and per K/V cache).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace quench {

class Model;
class Tokenizer;

/// `--calib-samples` / `--calib-seq-len`.
struct CalibrationOptions {
  int max_samples = 16;  ///< texts used (0 = all)
  int seq_len = 256;     ///< tokens per sample incl. <bos>; longer texts are truncated (ModelOpt truncates too)
};

/// Result of calibration.
struct ActivationAmax {
  std::map<std::string, float> linear_input;  ///< module name -> max |input| over all tokens
  std::vector<float> k_amax, v_amax;          ///< per decoder layer: max |K| (post k_norm + RoPE), max |V| (post v_norm)
  int samples = 0;
  int64_t tokens = 0;
};

/// Token ids of each sample: <bos> (id `bos_id`) + tokenizer.encode(text), truncated to seq_len.
std::vector<std::vector<int32_t>> tokenize_samples(const Tokenizer& tok, const std::vector<std::string>& texts,
                                                   int32_t bos_id, int seq_len, int max_samples);

/// Runs `model` (CPU forward) over the samples and records amax per Linear input and per layer
/// K/V. Weights of each layer are released from RSS after that layer ran (memory.h), so the pass
/// streams a large mmap'd model. Throws InvalidArgument if there is no sample.
ActivationAmax calibrate(const Model& model, const std::vector<std::vector<int32_t>>& samples);

}  // namespace quench
