// quench/quant/multimodal_names.h: vision/audio tensors of Gemma 4 unified checkpoints, renamed to
// the layout vLLM's gemma4_unified loader expects and kept BF16.
//
// transformers >= 5.12 saves the nested runtime names (`model.embed_vision.patch_ln1.*`,
// `model.embed_vision.multimodal_embedder.embedding_projection.weight`, ...); Google's converter
// and vLLM's `gemma4_unified.py` mapper use `model.vision_embedder.*` and the flat
// `model.embed_vision.embedding_projection.weight` (../shared/reference/gemma4-architecture.md §3,
// §10). This is the rename the reference NVFP4 checkpoint's authors did by a separate script.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace quench {

/// True for tensors of the vision/audio front-ends in either naming.
bool is_multimodal_tensor(std::string_view name);

/// The vLLM/Google name of a multimodal tensor (identity for names already in that layout and for
/// text tensors):
///   model.embed_vision.{patch_ln1,patch_dense,patch_ln2,pos_embedding,pos_norm}* -> model.vision_embedder.*
///   model.embed_{vision,audio}.multimodal_embedder.embedding_projection.weight
///       -> model.embed_{vision,audio}.embedding_projection.weight
std::string vllm_multimodal_name(std::string_view name);

/// Module prefixes of the renamed multimodal tensors present in `renamed_names`, as ignore-list
/// entries in ModelOpt's "X" + "X.*" pair form (e.g. "model.vision_embedder", "model.vision_embedder.*").
std::vector<std::string> multimodal_ignore_entries(const std::vector<std::string>& renamed_names);

}  // namespace quench
