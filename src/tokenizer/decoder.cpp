// quench/tokenizer/decoder.cpp: Replace / ByteFallback / Fuse / Strip decoders.
#include "tokenizer/decoder.h"

#include "tokenizer/normalizer.h"  // replace_all
#include "tokenizer/utf8.h"        // decode_at, kReplacement

namespace quench {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const utf8::Char c = utf8::decode_at(s, i);
    if (c.invalid) return false;
    i += c.len;
  }
  return true;
}

// Splits a string into its UTF-8 characters (invalid bytes as single units).
std::vector<std::string_view> chars_of(std::string_view s) {
  std::vector<std::string_view> out;
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8::decode_at(s, i).len;
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

}  // namespace

int byte_token_value(std::string_view t) {
  if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return -1;
  const int hi = hex_digit(t[3]), lo = hex_digit(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

void Decoder::parse_into(const tok_json::Node& node, std::vector<Step>& out) {
  const std::string type = node.at("type").str();
  if (type == "Sequence") {
    const tok_json::Node list = node.at("decoders");
    if (!list.value.is_array()) list.fail("expected an array");
    for (size_t i = 0; i < list.value.size(); ++i) parse_into(list.index(i), out);
  } else if (type == "Replace") {
    const tok_json::Node pat = node.at("pattern");
    if (!pat.find("String")) pat.fail("only {\"String\": ...} patterns are supported (Regex is not)");
    Step s{Step::Kind::kReplace, pat.child("String").str(), node.at("content").str()};
    if (s.pattern.empty()) pat.fail("empty String pattern");
    out.push_back(std::move(s));
  } else if (type == "ByteFallback") {
    out.push_back({Step::Kind::kByteFallback, "", ""});
  } else if (type == "Fuse") {
    out.push_back({Step::Kind::kFuse, "", ""});
  } else if (type == "Strip") {
    Step s{Step::Kind::kStrip, "", node.at("content").str()};
    const int64_t start = node.at("start").integer(), stop = node.at("stop").integer();
    if (start < 0 || stop < 0) node.fail("Strip start/stop must be >= 0");
    if (chars_of(s.content).size() != 1) node.child("content").fail("Strip content must be one character");
    s.start = static_cast<size_t>(start);
    s.stop = static_cast<size_t>(stop);
    out.push_back(std::move(s));
  } else {
    node.fail("unsupported decoder type '" + type + "' (supported: Replace, ByteFallback, Fuse, Strip, Sequence)");
  }
}

Decoder Decoder::from_json(const tok_json::Node& node) {
  Decoder d;
  d.is_null_ = node.value.is_null();
  if (!d.is_null_) parse_into(node, d.steps_);
  bool fused = false;
  for (const Step& s : d.steps_) {
    if (s.kind == Step::Kind::kByteFallback) d.has_byte_fallback_ = true;
    if (s.kind == Step::Kind::kFuse) fused = true;
    if (s.kind == Step::Kind::kStrip && fused) {
      if (s.stop > 0) node.fail("a Strip decoder with stop > 0 after Fuse is not supported");
      d.strip_start_after_fuse_ += s.start;
      d.strip_after_fuse_content_ = s.content;
    }
  }
  return d;
}

void Decoder::apply(const Step& step, std::vector<std::string>& tokens) {
  switch (step.kind) {
    case Step::Kind::kReplace:
      for (std::string& t : tokens)
        if (t.find(step.pattern) != std::string::npos) t = replace_all(t, step.pattern, step.content);
      break;
    case Step::Kind::kByteFallback: {
      std::vector<std::string> out;
      out.reserve(tokens.size());
      std::string run;
      size_t run_tokens = 0;
      auto flush = [&] {
        if (run_tokens == 0) return;
        if (is_valid_utf8(run)) {
          out.push_back(run);
        } else {
          for (size_t i = 0; i < run_tokens; ++i) out.emplace_back(utf8::kReplacement);
        }
        run.clear();
        run_tokens = 0;
      };
      for (std::string& t : tokens) {
        const int b = byte_token_value(t);
        if (b >= 0) {
          run += static_cast<char>(b);
          ++run_tokens;
        } else {
          flush();
          out.push_back(std::move(t));
        }
      }
      flush();
      tokens.swap(out);
      break;
    }
    case Step::Kind::kFuse: {
      std::string all;
      for (const std::string& t : tokens) all += t;
      tokens.assign(1, std::move(all));
      break;
    }
    case Step::Kind::kStrip:
      for (std::string& t : tokens) {
        const std::vector<std::string_view> cs = chars_of(t);
        size_t b = 0, e = cs.size();
        while (b < step.start && b < e && cs[b] == step.content) ++b;
        for (size_t i = 0; i < step.stop && e > b && cs[e - 1] == step.content; ++i) --e;
        std::string s;
        for (size_t i = b; i < e; ++i) s += cs[i];
        t = std::move(s);
      }
      break;
  }
}

std::string Decoder::decode(std::vector<std::string> tokens) const {
  for (const Step& s : steps_) apply(s, tokens);
  std::string out;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (is_null_ && i > 0) out += ' ';
    out += tokens[i];
  }
  return out;
}

std::string Decoder::decode_piece(std::string token) const {
  std::vector<std::string> one{std::move(token)};
  bool fused = false;
  for (const Step& s : steps_) {
    if (s.kind == Step::Kind::kFuse) fused = true;
    // After Fuse a Strip acts on the whole text (the detokenizer strips the stream's start) and a
    // Replace is applied per token (exact unless its pattern spans two tokens).
    if (s.kind == Step::Kind::kReplace || (s.kind == Step::Kind::kStrip && !fused)) apply(s, one);
  }
  return one[0];
}

}  // namespace quench
