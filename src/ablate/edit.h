// quench/ablate/edit.h: the weight edit of `quench ablate` (../shared/reference/directional-ablation.md
// §2, §3 (a), §4 step 3, §7): for each edited layer, the subspace is removed from the residual-side
// axis of `o_proj` and `mlp.down_proj` (optionally from the embedding rows), in fp32 from the
// stored weights, with one rounding back to the stored dtype. Gemma's post-sublayer norms are
// accounted for: the basis removed from a writer is orthonormalize(g ⊙ q_i) with g that writer's
// post norm gain (post_attention_layernorm for o_proj, post_feedforward_layernorm for down_proj).
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "ablate/linalg.h"
#include "model/weights.h"

namespace quench::ablate {

/// Which writers are edited (`--targets o_proj,down_proj[,embed]`).
struct EditTargets {
  bool o_proj = true;
  bool down_proj = true;
  bool embed = false;
};

/// Parameters of the edit.
struct EditOptions {
  EditTargets targets;
  double scale = 1.0;              ///< alpha: 1 = full removal (`--scale`)
  bool norm_preserving = true;     ///< `--norm-preserving column` (true) or `none`
  bool post_norm_correction = true;///< use normalize(g ⊙ r) (always on in the CLI; off only for tests/parity)
};

/// One edited tensor: the new bytes in the stored dtype and the weight-level check of spec §6.1.
struct EditedTensor {
  std::string name;                ///< checkpoint tensor name, e.g. "...layers.3.self_attn.o_proj.weight"
  DType dtype = DType::kBF16;
  std::vector<int64_t> shape;
  std::vector<std::byte> bytes;
  int layer = -1;                  ///< -1 for the embedding
  int rank = 0;                    ///< dimension of the removed basis
  /// max_j ||Q^T post(w_j)|| after / before, where post(x) = g ⊙ x (identity for the embedding):
  /// what the writer can still put into the removed subspace through its norm gain, measured on
  /// the rounded output weights.
  double leftover_ratio = 0.0;
  double max_col_norm_change = 0.0;  ///< max_j | ||w_j'|| / ||w_j|| - 1 | after rounding
};

/// The edited copy of a model: owned bytes for the edited tensors and a ModelWeights whose views
/// point at them (every other view still points into the source Checkpoint).
struct EditedModel {
  std::vector<EditedTensor> tensors;
  ModelWeights weights;
};

/// Applies the edit. `subspace[l]` is the orthonormal residual-stream basis removed at layer l
/// (ignored for layers not in `edit_layers`); `embed_subspace` the basis removed from the
/// embedding rows when targets.embed. Throws UnsupportedError for a quantized (non-BF16) Linear
/// ("ablate the BF16 checkpoint and quantize after"), InvalidArgument for a layer out of range or
/// a writer whose output size is not hidden_size.
EditedModel apply_edit(const ModelWeights& weights, const ModelConfig& config, const std::vector<int>& edit_layers,
                       const std::vector<Vectors>& subspace, const Vectors& embed_subspace, const EditOptions& opts);

/// Storage tensor of a float TensorView converted to fp32 (BF16/F16/F32); throws UnsupportedError
/// naming the tensor for any other dtype.
std::vector<float> tensor_to_f32(const TensorView& t);

}  // namespace quench::ablate
