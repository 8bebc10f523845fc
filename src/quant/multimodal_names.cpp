// quench/quant/multimodal_names.cpp: see multimodal_names.h.
#include "quant/multimodal_names.h"

#include <set>

namespace quench {

namespace {
constexpr std::string_view kTowers[] = {"model.vision_embedder.", "model.embed_vision.",
                                        "model.embed_audio.", "vision_embedder.", "embed_vision.",
                                        "embed_audio.", "model.vision_tower.", "model.audio_tower.",
                                        "model.multi_modal_projector."};
constexpr std::string_view kPatchParts[] = {"patch_ln1.", "patch_dense.", "patch_ln2.",
                                            "pos_embedding", "pos_norm."};
}  // namespace

bool is_multimodal_tensor(std::string_view name) {
  for (auto t : kTowers)
    if (name.starts_with(t)) return true;
  return false;
}

std::string vllm_multimodal_name(std::string_view name) {
  const std::string_view ev = "model.embed_vision.";
  if (name.starts_with(ev)) {
    const std::string_view rest = name.substr(ev.size());
    for (auto p : kPatchParts)
      if (rest.starts_with(p)) return "model.vision_embedder." + std::string(rest);
  }
  for (std::string_view tower : {"model.embed_vision.", "model.embed_audio."}) {
    const std::string nested = std::string(tower) + "multimodal_embedder.";
    if (name.starts_with(nested)) return std::string(tower) + std::string(name.substr(nested.size()));
  }
  return std::string(name);
}

std::vector<std::string> multimodal_ignore_entries(const std::vector<std::string>& renamed_names) {
  std::set<std::string> prefixes;
  for (const auto& n : renamed_names) {
    if (!is_multimodal_tensor(n)) continue;
    // The module prefix is the first two components ("model.vision_embedder") or one when the
    // checkpoint has no "model." wrapper.
    const auto first = n.find('.');
    auto second = n.find('.', first + 1);
    std::string prefix = n.starts_with("model.") ? n.substr(0, second) : n.substr(0, first);
    prefixes.insert(prefix);
  }
  std::vector<std::string> out;
  for (const auto& p : prefixes) {
    out.push_back(p);
    out.push_back(p + ".*");
  }
  return out;
}

}  // namespace quench
