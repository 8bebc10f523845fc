// quench/eval/ifeval_task.cpp: IFEval loading, strict/loose judging and metrics (see ifeval_task.h).
#include "eval/ifeval_task.h"

#include "core/error.h"
#include "eval/data_file.h"
#include "eval/unicode_text.h"

namespace quench::eval {

std::vector<IfevalItem> load_ifeval(const std::filesystem::path& path) {
  std::vector<IfevalItem> out;
  for_each_jsonl(path, [&](const nlohmann::json& rec, const std::string& where) {
    IfevalItem it;
    auto key = rec.find("key");
    if (key == rec.end()) throw FormatError(where + ": field 'key' is missing");
    it.key = key->is_string() ? key->get<std::string>() : key->dump();
    it.prompt = json_string_field(rec, "prompt", where);
    auto ids = rec.find("instruction_id_list");
    auto kws = rec.find("kwargs");
    if (ids == rec.end() || !ids->is_array()) throw FormatError(where + ": field 'instruction_id_list' must be a list");
    if (kws == rec.end() || !kws->is_array()) throw FormatError(where + ": field 'kwargs' must be a list");
    if (ids->size() != kws->size())
      throw FormatError(where + ": 'instruction_id_list' has " + std::to_string(ids->size()) + " entries but 'kwargs' has " +
                        std::to_string(kws->size()));
    if (ids->empty()) throw FormatError(where + ": 'instruction_id_list' is empty");
    for (std::size_t i = 0; i < ids->size(); ++i) {
      const std::string at = where + ": instruction_id_list[" + std::to_string(i) + "]";
      if (!(*ids)[i].is_string()) throw FormatError(at + ": expected a string");
      const std::string id = (*ids)[i].get<std::string>();
      nlohmann::json kw = nlohmann::json::object();
      if (!(*kws)[i].is_object()) throw FormatError(where + ": kwargs[" + std::to_string(i) + "]: expected an object");
      for (const auto& [k, v] : (*kws)[i].items())
        if (!v.is_null()) kw[k] = v;
      it.checkers.push_back(ifeval::make_checker(id, kw, where + ": kwargs[" + std::to_string(i) + "] (" + id + ")"));
      it.instruction_ids.push_back(id);
      it.kwargs.push_back(std::move(kw));
    }
    out.push_back(std::move(it));
  });
  if (out.empty()) throw FormatError(path.string() + ": no IFEval prompts");
  return out;
}

namespace {

std::u32string remove_stars(std::u32string_view s) {
  std::u32string out;
  for (char32_t c : s)
    if (c != '*') out.push_back(c);
  return out;
}

std::u32string join_lines(const std::vector<std::u32string_view>& lines, std::size_t from, std::size_t to) {
  std::u32string out;
  for (std::size_t i = from; i < to; ++i) {
    if (i > from) out.push_back('\n');
    out += lines[i];
  }
  return std::u32string(py_strip(out));
}

}  // namespace

std::vector<std::u32string> loose_variants(std::u32string_view r) {
  const auto lines = py_split(r, U"\n");
  const std::size_t n = lines.size();
  const std::u32string first = n > 1 ? join_lines(lines, 1, n) : std::u32string();
  const std::u32string last = n > 1 ? join_lines(lines, 0, n - 1) : std::u32string();
  const std::u32string both = n > 2 ? join_lines(lines, 1, n - 1) : std::u32string();
  return {std::u32string(r), remove_stars(r), first, last, both, remove_stars(first), remove_stars(last),
          remove_stars(both)};
}

std::vector<InstructionVerdict> judge_ifeval(const IfevalItem& item, std::string_view response) {
  const std::u32string r = utf8_decode(response);
  const auto variants = loose_variants(r);
  std::vector<InstructionVerdict> out;
  for (std::size_t i = 0; i < item.checkers.size(); ++i) {
    InstructionVerdict v;
    v.id = item.instruction_ids[i];
    if (!py_is_blank(r)) {
      const auto s = item.checkers[i](r);
      v.strict = s.followed;
      v.approximate = s.approximate;
    }
    for (const auto& c : variants) {
      if (py_is_blank(c)) continue;
      const auto l = item.checkers[i](c);
      if (l.followed) {
        v.loose = true;
        v.approximate = v.approximate || l.approximate;
        break;
      }
      v.approximate = v.approximate || l.approximate;
    }
    out.push_back(v);
  }
  return out;
}

void IfevalScores::add(const std::vector<InstructionVerdict>& verdicts) {
  ++prompts;
  bool all_s = true, all_l = true, approx = false;
  for (const auto& v : verdicts) {
    ++instructions;
    inst_strict += v.strict;
    inst_loose += v.loose;
    approximate_instructions += v.approximate;
    all_s = all_s && v.strict;
    all_l = all_l && v.loose;
    approx = approx || v.approximate;
  }
  prompt_strict += all_s;
  prompt_loose += all_l;
  approximate_prompts += approx;
}

nlohmann::json IfevalScores::to_json() const {
  auto frac = [](std::size_t a, std::size_t b) { return b ? static_cast<double>(a) / static_cast<double>(b) : 0.0; };
  return {{"prompt_level_strict_acc", frac(prompt_strict, prompts)},
          {"inst_level_strict_acc", frac(inst_strict, instructions)},
          {"prompt_level_loose_acc", frac(prompt_loose, prompts)},
          {"inst_level_loose_acc", frac(inst_loose, instructions)},
          {"prompts", prompts},
          {"instructions", instructions},
          {"approximate_prompts", approximate_prompts},
          {"approximate_instructions", approximate_instructions}};
}

}  // namespace quench::eval
