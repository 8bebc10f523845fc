// quench/tokenizer/pre_tokenizer.cpp: Split (String pattern) with HF's five delimiter behaviors.
#include "tokenizer/pre_tokenizer.h"

#include <algorithm>

namespace quench {

void PreTokenizer::parse_into(const tok_json::Node& node, std::vector<Step>& out) {
  const std::string type = node.at("type").str();
  if (type == "Sequence") {
    const tok_json::Node list = node.at("pretokenizers");
    if (!list.value.is_array()) list.fail("expected an array");
    for (size_t i = 0; i < list.value.size(); ++i) parse_into(list.index(i), out);
    return;
  }
  if (type != "Split") node.fail("unsupported pre_tokenizer type '" + type + "' (supported: Split, Sequence)");
  const tok_json::Node pat = node.at("pattern");
  if (!pat.find("String")) pat.fail("only {\"String\": ...} patterns are supported (Regex is not)");
  Step s{pat.child("String").str(), Behavior::kRemoved};
  if (s.pattern.empty()) pat.fail("empty String pattern");
  if (tok_json::bool_or(node, "invert", false)) node.child("invert").fail("invert=true is not supported");
  const tok_json::Node beh = node.at("behavior");
  const std::string b = beh.str();
  if (b == "Removed") s.behavior = Behavior::kRemoved;
  else if (b == "Isolated") s.behavior = Behavior::kIsolated;
  else if (b == "MergedWithPrevious") s.behavior = Behavior::kMergedWithPrevious;
  else if (b == "MergedWithNext") s.behavior = Behavior::kMergedWithNext;
  else if (b == "Contiguous") s.behavior = Behavior::kContiguous;
  else beh.fail("unknown split behavior '" + b + "'");
  out.push_back(std::move(s));
}

PreTokenizer PreTokenizer::from_json(const tok_json::Node& node) {
  PreTokenizer p;
  if (!node.value.is_null()) parse_into(node, p.steps_);
  return p;
}

void PreTokenizer::split_one(std::string_view text, const Step& step, std::vector<std::string_view>& out) {
  // Segments covering `text`: (begin, end, is_match), none empty.
  struct Seg {
    size_t b, e;
    bool match;
  };
  std::vector<Seg> segs;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t hit = text.find(step.pattern, pos);
    if (hit == std::string_view::npos) break;
    if (hit > pos) segs.push_back({pos, hit, false});
    segs.push_back({hit, hit + step.pattern.size(), true});
    pos = hit + step.pattern.size();
  }
  if (pos < text.size()) segs.push_back({pos, text.size(), false});

  std::vector<Seg> acc;
  bool previous_match = false;
  switch (step.behavior) {
    case Behavior::kRemoved:
      for (const Seg& s : segs)
        if (!s.match) acc.push_back(s);
      break;
    case Behavior::kIsolated:
      acc = segs;
      break;
    case Behavior::kMergedWithPrevious:
      for (const Seg& s : segs) {
        if (s.match && !previous_match && !acc.empty()) acc.back().e = s.e;
        else acc.push_back(s);
        previous_match = s.match;
      }
      break;
    case Behavior::kMergedWithNext:
      for (auto it = segs.rbegin(); it != segs.rend(); ++it) {
        if (it->match && !previous_match && !acc.empty()) acc.back().b = it->b;
        else acc.push_back(*it);
        previous_match = it->match;
      }
      std::reverse(acc.begin(), acc.end());
      break;
    case Behavior::kContiguous:
      for (const Seg& s : segs) {
        if (s.match == previous_match && !acc.empty()) acc.back().e = s.e;
        else acc.push_back(s);
        previous_match = s.match;
      }
      break;
  }
  for (const Seg& s : acc) out.push_back(text.substr(s.b, s.e - s.b));
}

std::vector<std::string_view> PreTokenizer::split(std::string_view text) const {
  std::vector<std::string_view> words;
  if (!text.empty()) words.push_back(text);
  for (const Step& step : steps_) {
    std::vector<std::string_view> next;
    for (std::string_view w : words) split_one(w, step, next);
    words.swap(next);
  }
  return words;
}

}  // namespace quench
