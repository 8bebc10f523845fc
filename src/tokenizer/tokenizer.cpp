// quench/tokenizer/tokenizer.cpp: loads tokenizer.json and runs the encode / decode pipelines
// (huggingface/tokenizers tokenizer/mod.rs encode_single_sequence, decode).
#include "tokenizer/tokenizer.h"

#include <fstream>
#include <sstream>

#include "core/error.h"                // FormatError, IoError, InvalidArgument
#include "tokenizer/tokenizer_impl.h"  // Tokenizer::Impl

namespace quench {
namespace {

constexpr int32_t kMaxVocabSize = 1 << 26;  ///< bounds the per-id tables a hostile file could make us allocate

// The "single" template of a TemplateProcessing post-processor: special token ids before and
// after the sequence $A.
void parse_post_processor(const tok_json::Node& node, std::vector<int32_t>& prefix, std::vector<int32_t>& suffix) {
  if (node.value.is_null()) return;
  const std::string type = node.at("type").str();
  if (type != "TemplateProcessing") node.fail("unsupported post_processor type '" + type + "' (supported: TemplateProcessing)");
  const tok_json::Node single = node.at("single");
  const tok_json::Node specials = node.at("special_tokens");
  if (!single.value.is_array()) single.fail("expected an array");
  bool seen_sequence = false;
  for (size_t i = 0; i < single.value.size(); ++i) {
    const tok_json::Node item = single.index(i);
    if (item.find("Sequence")) {
      seen_sequence = true;
      continue;
    }
    const std::string name = item.at("SpecialToken").at("id").str();
    const tok_json::Node ids = specials.at(name).at("ids");
    if (!ids.value.is_array()) ids.fail("expected an array of ids");
    for (size_t k = 0; k < ids.value.size(); ++k) {
      const int64_t id = ids.index(k).integer();
      if (id < 0 || id > INT32_MAX) ids.index(k).fail("id out of range");
      (seen_sequence ? suffix : prefix).push_back(static_cast<int32_t>(id));
    }
  }
}

// Parses the whole file but streams /model/vocab entries and /model/merges items into `tables`
// instead of the DOM (they are ~260k and ~515k entries for Gemma; a DOM of them costs seconds).
// Events and depths as nlohmann's parser_callback_t: root keys at depth 1, model keys at 2.
nlohmann::json parse_streaming_bpe_tables(std::string_view text, const std::string& source, BpeTables& tables) {
  using Ev = nlohmann::json::parse_event_t;
  std::vector<std::string> keys(8);
  auto in_model = [&](const char* key) { return keys[1] == "model" && keys[2] == key; };
  auto cb = [&](int depth, Ev ev, nlohmann::json& parsed) -> bool {
    if (ev == Ev::key) {
      if (depth < static_cast<int>(keys.size())) keys[depth] = parsed.get<std::string>();
      return !(depth == 3 && in_model("vocab"));  // vocab keys never enter the DOM (no map insert)
    }
    if (depth == 3 && ev == Ev::value && in_model("vocab")) {
      if (!parsed.is_number_integer() || parsed.get<int64_t>() < 0 || parsed.get<int64_t>() > INT32_MAX) {
        throw FormatError(source + ": /model/vocab/" + keys[3] + ": expected a non-negative 32-bit integer id");
      }
      tables.vocab.emplace_back(keys[3], static_cast<int32_t>(parsed.get<int64_t>()));
      return false;
    }
    if (depth == 3 && in_model("merges") && (ev == Ev::value || ev == Ev::array_end)) {
      const std::string where = source + ": /model/merges/" + std::to_string(tables.merges.size());
      if (parsed.is_array()) {
        if (parsed.size() != 2 || !parsed[0].is_string() || !parsed[1].is_string()) {
          throw FormatError(where + ": expected a pair [a, b] of strings");
        }
        tables.merges.emplace_back(parsed[0].get<std::string>(), parsed[1].get<std::string>());
      } else if (parsed.is_string()) {
        const std::string& s = parsed.get_ref<const std::string&>();
        const size_t sp = s.find(' ');
        if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) {
          throw FormatError(where + ": expected \"a b\" (one space)");
        }
        tables.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
      } else {
        throw FormatError(where + ": expected a string \"a b\" or a pair [a, b]");
      }
      return false;
    }
    return true;
  };
  return nlohmann::json::parse(text.begin(), text.end(), cb);
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::load(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path.string() + ": cannot open tokenizer file");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (!in.good() && !in.eof()) throw IoError(path.string() + ": read failed");
  return from_json_text(ss.str(), path.string());
}

Tokenizer Tokenizer::from_json_text(std::string_view text, const std::string& source_name) {
  nlohmann::json j;
  BpeTables tables;
  try {
    j = parse_streaming_bpe_tables(text, source_name, tables);
  } catch (const nlohmann::json::parse_error& e) {
    throw FormatError(source_name + ": invalid JSON: " + e.what());
  }
  const tok_json::Node root{j, source_name, ""};
  if (!j.is_object()) root.fail("expected a JSON object");
  // Components that may be absent from a file count as null (tokenizers writes them as null).
  static const nlohmann::json kNull;
  auto optional = [&](const char* key) -> tok_json::Node {
    return root.find(key) ? root.child(key) : tok_json::Node{kNull, source_name, std::string("/") + key};
  };
  auto impl = std::make_unique<Impl>(Impl{source_name,
                                          AddedVocabulary::from_json(optional("added_tokens")),
                                          Normalizer::from_json(optional("normalizer")),
                                          PreTokenizer::from_json(optional("pre_tokenizer")),
                                          BpeModel::from_json(root.at("model"), std::move(tables)),
                                          Decoder::from_json(optional("decoder")),
                                          {}, {}, {}, {}, {}, {}});
  if (const auto* pp = root.find("post_processor"); pp) {
    parse_post_processor(root.child("post_processor"), impl->prefix_ids, impl->suffix_ids);
  }

  Impl& m = *impl;
  int32_t max_id = m.model.max_id();
  for (const AddedToken& t : m.added.tokens()) max_id = std::max(max_id, t.id);
  if (max_id >= kMaxVocabSize) {
    root.fail("token id " + std::to_string(max_id) + " is too large (ids must be below " + std::to_string(kMaxVocabSize) + ")");
  }
  const size_t n = static_cast<size_t>(max_id) + 1;
  m.token_by_id.assign(n, std::string());
  m.special.assign(n, 0);
  m.byte_value.assign(n, -1);
  for (const auto& [tok, id] : m.model.vocab()) m.token_by_id[id] = tok;
  for (const AddedToken& t : m.added.tokens()) {
    m.token_by_id[t.id] = t.content;
    m.special[t.id] = t.special ? 1 : 0;
    m.added_ids.emplace(t.content, t.id);
  }
  for (size_t id = 0; id < n; ++id) m.byte_value[id] = static_cast<int16_t>(byte_token_value(m.token_by_id[id]));
  for (int32_t id : m.prefix_ids)
    if (static_cast<size_t>(id) >= n) root.child("post_processor").fail("special token id " + std::to_string(id) + " outside the vocabulary");
  for (int32_t id : m.suffix_ids)
    if (static_cast<size_t>(id) >= n) root.child("post_processor").fail("special token id " + std::to_string(id) + " outside the vocabulary");

  Tokenizer tok(std::move(impl));
  auto first_of = [&](std::initializer_list<const char*> names) -> int32_t {
    for (const char* s : names)
      if (auto id = tok.token_to_id(s)) return *id;
    return -1;
  };
  m.bos = !m.prefix_ids.empty() ? m.prefix_ids.front() : first_of({"<bos>", "<s>"});
  m.eos = first_of({"<eos>", "</s>"});
  m.pad = first_of({"<pad>"});
  m.unk = m.model.unk_id().value_or(-1);
  return tok;
}

void Tokenizer::Impl::encode_piece(std::string_view piece, bool normalized_already, std::vector<int32_t>& out) const {
  if (normalized_already) {
    for (std::string_view word : pre_tokenizer.split(piece)) model.encode_word(word, out);
    return;
  }
  std::string text(piece);
  normalizer.apply(text);
  for (std::string_view word : pre_tokenizer.split(text)) model.encode_word(word, out);
}

void Tokenizer::Impl::check_id(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= token_by_id.size()) {
    throw InvalidArgument("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                          std::to_string(token_by_id.size()) + ") of " + source);
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const { return encode(text, EncodeOptions{}); }

std::vector<int32_t> Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  const Impl& m = *impl_;
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (options.add_special_tokens) ids.insert(ids.end(), m.prefix_ids.begin(), m.prefix_ids.end());
  // 1. added tokens with normalized=false, on the raw text.
  for (const Split& raw : m.added.split(text, /*normalized=*/false, options.split_special_tokens)) {
    if (raw.id >= 0) {
      ids.push_back(raw.id);
      continue;
    }
    // 2. normalize the piece, then added tokens with normalized=true, then the model.
    std::string normalized(raw.text);
    m.normalizer.apply(normalized);
    for (const Split& s : m.added.split(normalized, /*normalized=*/true, options.split_special_tokens)) {
      if (s.id >= 0) ids.push_back(s.id);
      else m.encode_piece(s.text, /*normalized_already=*/true, ids);
    }
  }
  if (options.add_special_tokens) ids.insert(ids.end(), m.suffix_ids.begin(), m.suffix_ids.end());
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  const Impl& m = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    m.check_id(id);
    if (skip_special_tokens && m.special[id]) continue;
    tokens.push_back(m.token_by_id[id]);
  }
  return m.decoder.decode(std::move(tokens));
}

int Tokenizer::vocab_size() const { return static_cast<int>(impl_->token_by_id.size()); }

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (auto it = impl_->added_ids.find(token); it != impl_->added_ids.end()) return it->second;
  if (auto it = impl_->model.vocab().find(token); it != impl_->model.vocab().end()) return it->second;
  return std::nullopt;
}

std::string_view Tokenizer::id_to_token(int32_t id) const {
  impl_->check_id(id);
  return impl_->token_by_id[id];
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < impl_->special.size() && impl_->special[id];
}

std::optional<uint8_t> Tokenizer::byte_of(int32_t id) const {
  impl_->check_id(id);
  const int16_t b = impl_->byte_value[id];
  return b < 0 ? std::nullopt : std::optional<uint8_t>(static_cast<uint8_t>(b));
}

int32_t Tokenizer::bos_id() const { return impl_->bos; }
int32_t Tokenizer::eos_id() const { return impl_->eos; }
int32_t Tokenizer::pad_id() const { return impl_->pad; }
int32_t Tokenizer::unk_id() const { return impl_->unk; }
bool Tokenizer::post_processor_adds_tokens() const { return !impl_->prefix_ids.empty() || !impl_->suffix_ids.empty(); }

}  // namespace quench
