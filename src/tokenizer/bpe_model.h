// quench/tokenizer/bpe_model.h: the BPE model of a tokenizer.json (huggingface/tokenizers
// models/bpe/{model,word}.rs): vocabulary, ranked merges, byte fallback, unk fusing, a word cache.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/json_path.h"  // Node

namespace quench {

/// Hash for heterogeneous string lookup (std::string keys, std::string_view queries).
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using TokenIdMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

/// model.vocab and model.merges as read by a streaming parse (the two large parts of a
/// tokenizer.json, kept out of the JSON DOM for load speed).
struct BpeTables {
  std::vector<std::pair<std::string, int32_t>> vocab;          ///< in file order
  std::vector<std::pair<std::string, std::string>> merges;     ///< in rank order
};

class BpeModel {
 public:
  /// Builds the model from the `model` object (type "BPE"; its vocab and merges already moved
  /// into `tables`). Throws FormatError naming the path for another type, a merge whose parts or
  /// concatenation are not in the vocabulary, dropout, or a continuing_subword_prefix /
  /// end_of_word_suffix (not used by Gemma, not implemented).
  static BpeModel from_json(const tok_json::Node& node, BpeTables tables);

  BpeModel(BpeModel&& other) noexcept;
  ~BpeModel();
  BpeModel& operator=(BpeModel&&) = delete;
  BpeModel(const BpeModel&) = delete;

  /// Appends the ids of one pre-tokenized word. Each UTF-8 character becomes its vocabulary id,
  /// else (byte_fallback) its bytes' `<0xXX>` ids, else unk (consecutive unks fused when fuse_unk);
  /// an invalid UTF-8 byte becomes its `<0xXX>` id (or unk). Then merges apply lowest rank first,
  /// leftmost on ties (word.rs `merge_all`). Thread-safe.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  const TokenIdMap& vocab() const { return vocab_; }
  std::optional<int32_t> unk_id() const { return unk_id_; }
  /// Largest id in the vocabulary.
  int32_t max_id() const { return max_id_; }

 private:
  BpeModel() = default;
  struct MergeTable;  // open-addressing map (left id, right id) -> (rank, merged id)
  void merge_symbols(std::vector<int32_t>& ids) const;
  std::optional<int32_t> char_id(std::string_view ch, char32_t cp) const;
  bool add_fallback(std::string_view bytes, std::vector<int32_t>& ids) const;

  TokenIdMap vocab_;
  std::vector<int32_t> bmp_ids_;  ///< id of each single BMP character (index = code point), -1 if none
  std::vector<int32_t> byte_ids_;  ///< id of `<0xXX>` for each byte, -1 if absent
  std::unique_ptr<MergeTable> merges_;
  std::optional<int32_t> unk_id_;
  int32_t max_id_ = -1;
  bool byte_fallback_ = false;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;

  static constexpr size_t kCacheCapacity = 10000;  ///< words cached (HF's DEFAULT_CACHE_CAPACITY)
  static constexpr size_t kMaxCachedWordBytes = 256;
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace quench
