// quench/tokenizer/normalizer.cpp: Replace / Prepend / Sequence normalizers.
#include "tokenizer/normalizer.h"

namespace quench {

std::string replace_all(std::string_view text, std::string_view pattern, std::string_view content) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  size_t pos = 0;
  while (true) {
    const size_t hit = text.find(pattern, pos);
    if (hit == std::string_view::npos) break;
    out.append(text.substr(pos, hit - pos));
    out.append(content);
    pos = hit + pattern.size();
  }
  out.append(text.substr(pos));
  return out;
}

void Normalizer::parse_into(const tok_json::Node& node, std::vector<Step>& out) {
  const std::string type = node.at("type").str();
  if (type == "Sequence") {
    const tok_json::Node list = node.at("normalizers");
    if (!list.value.is_array()) list.fail("expected an array");
    for (size_t i = 0; i < list.value.size(); ++i) parse_into(list.index(i), out);
  } else if (type == "Replace") {
    const tok_json::Node pat = node.at("pattern");
    if (!pat.find("String")) pat.fail("only {\"String\": ...} patterns are supported (Regex is not)");
    Step s{Step::Kind::kReplace, pat.child("String").str(), node.at("content").str()};
    if (s.pattern.empty()) pat.fail("empty String pattern");
    out.push_back(std::move(s));
  } else if (type == "Prepend") {
    out.push_back({Step::Kind::kPrepend, "", node.at("prepend").str()});
  } else {
    node.fail("unsupported normalizer type '" + type + "' (supported: Replace, Prepend, Sequence)");
  }
}

Normalizer Normalizer::from_json(const tok_json::Node& node) {
  Normalizer n;
  if (!node.value.is_null()) parse_into(node, n.steps_);
  return n;
}

void Normalizer::apply(std::string& text) const {
  for (const Step& s : steps_) {
    if (s.kind == Step::Kind::kReplace) {
      if (text.find(s.pattern) != std::string::npos) text = replace_all(text, s.pattern, s.content);
    } else if (!text.empty()) {
      text.insert(0, s.content);
    }
  }
}

}  // namespace quench
