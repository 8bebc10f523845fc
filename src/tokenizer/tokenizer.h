// quench/tokenizer/tokenizer.h: a Hugging Face `tokenizer.json` tokenizer (BPE with byte fallback, Gemma
// style): added and special tokens, normalizer, pre-tokenizer, BPE model, post-processor, decoder.
//
// Encoding follows the pipeline of huggingface/tokenizers (tokenizers/src/tokenizer/mod.rs,
// `encode_single_sequence`): (1) the added vocabulary splits the raw text on its normalized=false
// tokens, leftmost-longest (added_vocabulary.rs); (2) each remaining piece is normalized and split
// on the normalized=true tokens; (3) what remains is pre-tokenized and run through the BPE model
// (models/bpe/word.rs `merge_all`: lowest merge rank first, leftmost on ties); (4) optionally the
// post-processor adds the template's special tokens (<bos> for Gemma). Decoding maps ids to token
// strings, drops special tokens on request and runs the decoder chain (Gemma: Replace "▁"→" ",
// ByteFallback, Fuse). Gemma 4 and small-model ids and texts are golden-tested against tokenizers.js
// and cross-checked with the Rust tokenizers crate (tests/data/tokenizer/README.md).
//
// Supported component kinds (anything else is a FormatError naming the kind and the JSON path):
//   normalizer: null, Replace (String pattern), Prepend, Sequence of those
//   pre_tokenizer: null, Split (String pattern; any behavior), Sequence of those
//   model: BPE (byte_fallback, unk_token, fuse_unk, ignore_merges; merges as "a b" or [a, b])
//   post_processor: null, TemplateProcessing (the "single" template)
//   decoder: null (tokens joined with " "), Replace (String pattern), ByteFallback, Fuse, Strip,
//            Sequence of those
//
// Input text that is not valid UTF-8 is accepted: each invalid byte becomes its byte-fallback token
// `<0xXX>` (so no input byte is lost; decode() turns such a token run back into U+FFFD per byte, as
// the ByteFallback decoder does for any invalid byte run).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace quench {

/// Options of Tokenizer::encode (names as in transformers' `__call__`/`encode`).
struct EncodeOptions {
  /// Run the post-processor: add the template's special tokens (Gemma: <bos> first).
  /// Note: Gemma 4 -it prompts come from the chat template, which already writes "<bos>".
  bool add_special_tokens = false;
  /// When true, special added tokens written in the text are NOT matched and are tokenized as
  /// plain text (transformers' `split_special_tokens`); non-special added tokens still match.
  bool split_special_tokens = false;
};

/// Immutable after load(); every const method is thread-safe (the BPE word cache is internally
/// locked).
class Tokenizer {
 public:
  /// Reads and validates a tokenizer.json. Throws IoError (cannot read), FormatError (bad JSON,
  /// missing field, unsupported component kind, merge naming an unknown token; each message names
  /// the file and JSON path).
  static Tokenizer load(const std::filesystem::path& tokenizer_json);
  /// Same from the JSON text; `source_name` names it in error messages.
  static Tokenizer from_json_text(std::string_view json_text, const std::string& source_name);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  /// Text (UTF-8; invalid bytes allowed, see file comment) to token ids. Added and special
  /// tokens written in the text are matched as Hugging Face does by default.
  std::vector<int32_t> encode(std::string_view text) const;
  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& options) const;

  /// Ids to text. skip_special_tokens drops tokens whose added_tokens entry is `special`.
  /// Invalid byte-fallback runs decode to U+FFFD per byte. Throws InvalidArgument for an id
  /// outside [0, vocab_size()).
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const;

  /// Number of ids: max(model vocab id, added token id) + 1 (262144 for Gemma 4).
  int vocab_size() const;
  /// Id of a token string (added tokens first, then the model vocabulary), as written in the
  /// vocabulary (Gemma spells a space "▁"): token_to_id("<bos>") == 2.
  std::optional<int32_t> token_to_id(std::string_view token) const;
  /// Token string of an id as stored in the vocabulary; empty view for an unused id.
  /// Throws InvalidArgument for an id outside [0, vocab_size()).
  std::string_view id_to_token(int32_t id) const;
  /// True for added tokens marked `"special": true` (Gemma: <pad>, <eos>, <bos>, <|turn>, ...).
  bool is_special(int32_t id) const;
  /// For a byte-fallback token `<0xXX>`: the byte; otherwise nullopt.
  std::optional<uint8_t> byte_of(int32_t id) const;

  /// Well-known ids, or -1 when the vocabulary has none: bos = first special token of the
  /// post-processor template, else "<bos>" / "<s>"; eos = "<eos>" / "</s>"; pad = "<pad>";
  /// unk = the BPE model's unk_token.
  int32_t bos_id() const;
  int32_t eos_id() const;
  int32_t pad_id() const;
  int32_t unk_id() const;
  /// True when the post-processor's "single" template adds tokens (encode with
  /// add_special_tokens then prepends/appends them).
  bool post_processor_adds_tokens() const;

  struct Impl;  ///< defined in tokenizer_impl.h (the pipeline parts)

 private:
  friend class IncrementalDetokenizer;  // reads the decoder's per-token steps
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace quench
