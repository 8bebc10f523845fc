// tests/tokenizer/tiny_tokenizer_json.h: builders of small hand-made tokenizer.json documents.
#pragma once

#include <initializer_list>
#include <utility>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"

namespace quench::testing {

/// A BPE tokenizer.json with the given vocab and merges, unk "<unk>", fuse_unk, no byte fallback,
/// and no normalizer, pre-tokenizer, post-processor or decoder.
inline nlohmann::json base_tokenizer(const nlohmann::json& vocab, const nlohmann::json& merges) {
  return {{"version", "1.0"},
          {"added_tokens", nlohmann::json::array()},
          {"normalizer", nullptr},
          {"pre_tokenizer", nullptr},
          {"post_processor", nullptr},
          {"decoder", nullptr},
          {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", "<unk>"}, {"fuse_unk", true},
                     {"byte_fallback", false}, {"vocab", vocab}, {"merges", merges}}}};
}

/// Loads a document; errors name "test.json".
inline Tokenizer from(const nlohmann::json& j) { return Tokenizer::from_json_text(j.dump(), "test.json"); }

/// Merges as [left, right] pairs (nlohmann's {"a", "b"} would be an object).
inline nlohmann::json pairs(std::initializer_list<std::pair<const char*, const char*>> ps) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [a, b] : ps) out.push_back(nlohmann::json::array({a, b}));
  return out;
}

/// <unk> 0, a 1, b 2, c 3, ab 4, bc 5, abc 6, aa 7.
inline const nlohmann::json kAbcVocab = {{"<unk>", 0}, {"a", 1}, {"b", 2}, {"c", 3}, {"ab", 4}, {"bc", 5}, {"abc", 6}, {"aa", 7}};

}  // namespace quench::testing
