// quench/backend/cpu/decoder.h: the Gemma 4 text decoder on the CPU, shared by CpuForward (one
// sequence, contiguous cache) and CpuModelRunner (a batch of sequences, paged cache).
//
// The tokens of every slice of a batch are stacked into one activation matrix so each Linear
// decodes its weights once per step; attention runs per slice against that slice's SequenceKv.
// The order of operations is gemma4-architecture.md §2.1-2.8, one op per line in decoder.cpp.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "backend/cpu/forward_hooks.h"
#include "backend/cpu/sequence_kv.h"
#include "io/model_config.h"
#include "model/weights.h"

namespace quench {

/// One sequence's part of a decoder call: tokens at positions start_pos .. start_pos+n-1.
struct DecoderSlice {
  std::span<const int32_t> tokens;
  int start_pos = 0;
  SequenceKv* kv = nullptr;
};

/// Weights prepared once for CPU execution (fp32 norm weights, RoPE inverse frequencies, embed
/// scale) plus the Linear views of the bound ModelWeights. Keeps pointers to `config`/`weights`:
/// both must outlive the decoder.
class CpuDecoder {
 public:
  /// `embed_scale_dtype`: the dtype transformers' `embed_scale` buffer is cast to
  /// (`embed_scale.to(embed_tokens.weight.dtype)`), i.e. the dtype the emulated transformers run
  /// holds its weights in at runtime. This backend computes in fp32 like transformers loaded with
  /// `dtype=torch.float32` (the golden references: tests/data/golden/README.md, also for bf16 files),
  /// so the default is kF32: fl32(sqrt(hidden)) = 61.96773 for 3840. kBF16 reproduces a bf16
  /// transformers run (62.0 for 3840, gemma4-architecture.md §2.1); kF16 likewise.
  CpuDecoder(const ModelConfig& config, const ModelWeights& weights, DType embed_scale_dtype = DType::kF32);

  const ModelConfig& config() const { return config_; }
  /// sqrt(hidden_size) rounded to `embed_scale_dtype` (see the constructor).
  float embed_scale() const { return embed_scale_; }

  /// Runs every token of every slice through all layers. `logit_rows` are indices into the
  /// stacked tokens (slice 0's tokens first) whose final soft-capped logits are written to
  /// logits [logit_rows.size(), vocab_size] fp32 (logits may be null when logit_rows is empty).
  /// Throws InvalidArgument for token ids outside [0, vocab) and positions past
  /// max_position_embeddings; SequenceKv errors propagate.
  void run(std::span<const DecoderSlice> slices, std::span<const int> logit_rows, float* logits,
           const ForwardHooks* hooks);

 private:
  struct LayerPrep {
    std::vector<float> input_layernorm, post_attention_layernorm, pre_feedforward_layernorm,
        post_feedforward_layernorm, q_norm, k_norm;
    std::vector<float> inv_freq;
  };
  void embed(int32_t token, float* out) const;
  void attention_block(int layer, std::span<const DecoderSlice> slices, const std::vector<int>& positions,
                       const ForwardHooks* hooks);
  void mlp_block(int layer, const ForwardHooks* hooks);

  const ModelConfig& config_;
  const ModelWeights& weights_;
  LinearWeight embedding_;  ///< embed_tokens viewed as [vocab, hidden] rows
  float embed_scale_ = 1.0f;
  float eps_ = 1e-6f;
  std::vector<float> final_norm_;
  std::vector<LayerPrep> prep_;

  // Activations of the current call, [n_tokens, width] fp32 (resized per call, reused).
  int n_ = 0;
  std::vector<float> x_, h_, q_, k_, v_, attn_, gate_, up_, kbuf_, vbuf_;
};

/// fp32 copy of a float tensor (BF16/F16/F32) with `expected` elements; throws FormatError
/// naming the tensor otherwise.
std::vector<float> to_f32_checked(const TensorView& t, int64_t expected);

}  // namespace quench
