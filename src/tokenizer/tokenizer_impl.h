// quench/tokenizer/tokenizer_impl.h: the parts a Tokenizer is made of (private to src/tokenizer).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tokenizer/added_vocabulary.h"  // AddedVocabulary
#include "tokenizer/bpe_model.h"         // BpeModel
#include "tokenizer/decoder.h"           // Decoder
#include "tokenizer/normalizer.h"        // Normalizer
#include "tokenizer/pre_tokenizer.h"     // PreTokenizer
#include "tokenizer/tokenizer.h"         // Tokenizer

namespace quench {

struct Tokenizer::Impl {
  std::string source;  ///< file name for messages
  AddedVocabulary added;
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  BpeModel model;
  Decoder decoder;
  std::vector<int32_t> prefix_ids, suffix_ids;  ///< post-processor "single" template around $A

  std::vector<std::string> token_by_id;  ///< [vocab_size]; "" for unused ids
  std::vector<uint8_t> special;          ///< [vocab_size]; 1 = special added token
  std::vector<int16_t> byte_value;       ///< [vocab_size]; byte of a `<0xXX>` token, else -1
  TokenIdMap added_ids;                  ///< added token content -> id
  int32_t bos = -1, eos = -1, pad = -1, unk = -1;

  /// Encodes one non-added piece: normalize (unless already), pre-tokenize, BPE.
  void encode_piece(std::string_view piece, bool normalized_already, std::vector<int32_t>& out) const;
  void check_id(int32_t id) const;
};

}  // namespace quench
