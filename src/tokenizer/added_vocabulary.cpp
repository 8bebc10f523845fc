// quench/tokenizer/added_vocabulary.cpp: added-token matching as added_vocabulary.rs `find_matches`.
#include "tokenizer/added_vocabulary.h"

#include <algorithm>
#include <cctype>

#include "tokenizer/utf8.h"  // decode_at

namespace quench {
namespace {

// Rust char::is_whitespace (Unicode White_Space), used by lstrip/rstrip.
bool is_unicode_whitespace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Regex `\w` as added_vocabulary.rs uses it for single_word (Unicode word characters). Exact on
// ASCII; beyond ASCII an approximation without Unicode tables: everything except whitespace, the
// punctuation / symbol blocks (U+2000-U+2BFF, U+3000-U+303F, U+FE30-U+FE4F, U+FF01-U+FF0F,
// U+FF1A-U+FF20) and emoji (U+1F000-U+1FAFF). Gemma has no single_word tokens.
bool is_word_char(char32_t c) {
  if (c < 0x80) return std::isalnum(static_cast<int>(c)) || c == '_';
  if (is_unicode_whitespace(c)) return false;
  if ((c >= 0x2000 && c <= 0x2BFF) || (c >= 0x3000 && c <= 0x303F) || (c >= 0xFE30 && c <= 0xFE4F) ||
      (c >= 0xFF01 && c <= 0xFF0F) || (c >= 0xFF1A && c <= 0xFF20) || (c >= 0x1F000 && c <= 0x1FAFF)) {
    return false;
  }
  return !(c >= 0xA1 && c <= 0xBF);  // Latin-1 punctuation and symbols
}

// Last character of s (valid UTF-8 assumed where it matters), or 0.
char32_t last_char(std::string_view s) {
  if (s.empty()) return 0;
  size_t i = s.size() - 1;
  while (i > 0 && (static_cast<uint8_t>(s[i]) & 0xC0) == 0x80 && s.size() - i < 4) --i;
  const utf8::Char c = utf8::decode_at(s, i);
  return c.invalid ? 0 : c.code_point;
}

}  // namespace

void AddedVocabulary::Trie::insert(std::string_view s, int32_t token_index) {
  int32_t node = 0;
  for (char ch : s) {
    const auto b = static_cast<uint8_t>(ch);
    auto& kids = nodes[node].children;
    auto it = std::lower_bound(kids.begin(), kids.end(), std::make_pair(b, int32_t{-1}));
    if (it != kids.end() && it->first == b) {
      node = it->second;
    } else {
      const auto next = static_cast<int32_t>(nodes.size());
      kids.insert(it, {b, next});
      nodes.emplace_back();
      node = next;
    }
  }
  first_byte[static_cast<uint8_t>(s[0])] = true;
  if (nodes[node].token < 0) nodes[node].token = token_index;  // first entry wins on duplicates
}

std::pair<int32_t, size_t> AddedVocabulary::Trie::longest(std::string_view text, size_t pos) const {
  std::pair<int32_t, size_t> best{-1, 0};
  if (!first_byte[static_cast<uint8_t>(text[pos])]) return best;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto b = static_cast<uint8_t>(text[i]);
    const auto& kids = nodes[node].children;
    auto it = std::lower_bound(kids.begin(), kids.end(), std::make_pair(b, int32_t{-1}));
    if (it == kids.end() || it->first != b) break;
    node = it->second;
    if (nodes[node].token >= 0) best = {nodes[node].token, i + 1 - pos};
  }
  return best;
}

AddedVocabulary AddedVocabulary::from_json(const tok_json::Node& node) {
  AddedVocabulary v;
  if (node.value.is_null()) return v;
  if (!node.value.is_array()) node.fail("expected an array");
  for (size_t i = 0; i < node.value.size(); ++i) {
    const tok_json::Node e = node.index(i);
    AddedToken t;
    const int64_t id = e.at("id").integer();
    if (id < 0 || id > INT32_MAX) e.child("id").fail("id out of range");
    t.id = static_cast<int32_t>(id);
    t.content = e.at("content").str();
    if (t.content.empty()) e.child("content").fail("empty added token");
    t.special = tok_json::bool_or(e, "special", false);
    t.lstrip = tok_json::bool_or(e, "lstrip", false);
    t.rstrip = tok_json::bool_or(e, "rstrip", false);
    t.single_word = tok_json::bool_or(e, "single_word", false);
    t.normalized = tok_json::bool_or(e, "normalized", !t.special);
    const auto index = static_cast<int32_t>(v.tokens_.size());
    (t.normalized ? v.normalized_trie_ : v.raw_trie_).insert(t.content, index);
    v.tokens_.push_back(std::move(t));
  }
  return v;
}

std::vector<Split> AddedVocabulary::split(std::string_view text, bool normalized, bool skip_special) const {
  const Trie& trie = normalized ? normalized_trie_ : raw_trie_;
  std::vector<Split> out;
  size_t start_offset = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const auto [index, len] = trie.longest(text, pos);
    if (index < 0) {
      ++pos;
      continue;
    }
    size_t start = pos, stop = pos + len;
    pos = stop;
    const AddedToken& t = tokens_[index];
    if (skip_special && t.special) continue;
    if (t.single_word) {
      const bool start_space = start == 0 || !is_word_char(last_char(text.substr(0, start)));
      const bool stop_space = stop == text.size() || !is_word_char(utf8::decode_at(text, stop).code_point);
      if (!start_space || !stop_space) continue;
    }
    if (t.lstrip) {
      size_t s = start;
      while (s > start_offset) {
        size_t b = s - 1;
        while (b > 0 && (static_cast<uint8_t>(text[b]) & 0xC0) == 0x80) --b;
        const utf8::Char c = utf8::decode_at(text, b);
        if (c.invalid || !is_unicode_whitespace(c.code_point)) break;
        s = b;
      }
      start = s;
    }
    if (t.rstrip) {
      while (stop < text.size()) {
        const utf8::Char c = utf8::decode_at(text, stop);
        if (c.invalid || !is_unicode_whitespace(c.code_point)) break;
        stop += c.len;
      }
      pos = stop;
    }
    if (start_offset < start) out.push_back({text.substr(start_offset, start - start_offset), -1});
    out.push_back({text.substr(start, stop - start), t.id});
    start_offset = stop;
  }
  if (start_offset < text.size()) out.push_back({text.substr(start_offset), -1});
  return out;
}

}  // namespace quench
