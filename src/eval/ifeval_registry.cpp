// quench/eval/ifeval_registry.cpp: kwargs validation and binding for the 25 IFEval checkers.
#include "eval/ifeval_registry.h"

#include <map>

#include "core/error.h"
#include "eval/unicode_text.h"

namespace quench::eval::ifeval {

namespace {

using nlohmann::json;

class Kwargs {
 public:
  Kwargs(const json& j, const std::string& where) : where_(where) {
    if (!j.is_object()) throw FormatError(where + ": kwargs must be a JSON object, got " + j.dump());
    for (const auto& [k, v] : j.items())
      if (!v.is_null()) obj_[k] = v;
  }
  const json& get(const char* key) const {
    auto it = obj_.find(key);
    if (it == obj_.end()) throw FormatError(where_ + ": kwargs." + key + " is missing (required by this instruction)");
    return it->second;
  }
  long long integer(const char* key) const {
    const json& v = get(key);
    if (!v.is_number_integer()) throw FormatError(where_ + ": kwargs." + std::string(key) + ": expected an integer, got " + v.dump());
    return v.get<long long>();
  }
  std::u32string str(const char* key) const {
    const json& v = get(key);
    if (!v.is_string()) throw FormatError(where_ + ": kwargs." + std::string(key) + ": expected a string, got " + v.dump());
    return utf8_decode(v.get<std::string>());
  }
  std::vector<std::u32string> str_list(const char* key) const {
    const json& v = get(key);
    if (!v.is_array()) throw FormatError(where_ + ": kwargs." + std::string(key) + ": expected a list of strings, got " + v.dump());
    std::vector<std::u32string> out;
    for (const auto& e : v) {
      if (!e.is_string()) throw FormatError(where_ + ": kwargs." + std::string(key) + ": expected a list of strings, got " + v.dump());
      out.push_back(utf8_decode(e.get<std::string>()));
    }
    return out;
  }
  Relation relation(const char* key) const {
    const json& v = get(key);
    if (v == "less than") return Relation::kLessThan;
    if (v == "at least") return Relation::kAtLeast;
    throw FormatError(where_ + ": kwargs." + std::string(key) + ": expected \"less than\" or \"at least\", got " + v.dump());
  }

 private:
  std::string where_;
  std::map<std::string, json> obj_;
};

using Factory = std::function<Checker(const Kwargs&)>;

const std::vector<std::pair<std::string, Factory>>& registry() {
  static const std::vector<std::pair<std::string, Factory>> r = {
      {"keywords:existence", [](const Kwargs& k) {
         auto kw = k.str_list("keywords");
         return Checker([kw](Text t) { return keywords_existence(t, kw); });
       }},
      {"keywords:frequency", [](const Kwargs& k) {
         auto kw = k.str("keyword");
         auto f = k.integer("frequency");
         auto rel = k.relation("relation");
         return Checker([=](Text t) { return keywords_frequency(t, kw, f, rel); });
       }},
      {"keywords:forbidden_words", [](const Kwargs& k) {
         auto w = k.str_list("forbidden_words");
         return Checker([w](Text t) { return keywords_forbidden_words(t, w); });
       }},
      {"keywords:letter_frequency", [](const Kwargs& k) {
         auto l = k.str("letter");
         auto f = k.integer("let_frequency");
         auto rel = k.relation("let_relation");
         return Checker([=](Text t) { return keywords_letter_frequency(t, l, f, rel); });
       }},
      {"language:response_language", [](const Kwargs& k) {
         auto lang = utf8_encode(k.str("language"));
         return Checker([lang](Text t) { return language_response_language(t, lang); });
       }},
      {"length_constraints:number_sentences", [](const Kwargs& k) {
         auto n = k.integer("num_sentences");
         auto rel = k.relation("relation");
         return Checker([=](Text t) { return length_number_sentences(t, n, rel); });
       }},
      {"length_constraints:number_paragraphs", [](const Kwargs& k) {
         auto n = k.integer("num_paragraphs");
         return Checker([=](Text t) { return length_number_paragraphs(t, n); });
       }},
      {"length_constraints:number_words", [](const Kwargs& k) {
         auto n = k.integer("num_words");
         auto rel = k.relation("relation");
         return Checker([=](Text t) { return length_number_words(t, n, rel); });
       }},
      {"length_constraints:nth_paragraph_first_word", [](const Kwargs& k) {
         auto n = k.integer("num_paragraphs");
         auto nth = k.integer("nth_paragraph");
         auto w = k.str("first_word");
         return Checker([=](Text t) { return length_nth_paragraph_first_word(t, n, nth, w); });
       }},
      {"detectable_content:number_placeholders", [](const Kwargs& k) {
         auto n = k.integer("num_placeholders");
         return Checker([=](Text t) { return content_number_placeholders(t, n); });
       }},
      {"detectable_content:postscript", [](const Kwargs& k) {
         auto m = k.str("postscript_marker");
         return Checker([=](Text t) { return content_postscript(t, m); });
       }},
      {"detectable_format:number_bullet_lists", [](const Kwargs& k) {
         auto n = k.integer("num_bullets");
         return Checker([=](Text t) { return format_number_bullet_lists(t, n); });
       }},
      {"detectable_format:constrained_response",
       [](const Kwargs&) { return Checker([](Text t) { return format_constrained_response(t); }); }},
      {"detectable_format:number_highlighted_sections", [](const Kwargs& k) {
         auto n = k.integer("num_highlights");
         return Checker([=](Text t) { return format_number_highlighted_sections(t, n); });
       }},
      {"detectable_format:multiple_sections", [](const Kwargs& k) {
         auto sp = k.str("section_spliter");
         auto n = k.integer("num_sections");
         return Checker([=](Text t) { return format_multiple_sections(t, sp, n); });
       }},
      {"detectable_format:json_format",
       [](const Kwargs&) { return Checker([](Text t) { return format_json_format(t); }); }},
      {"detectable_format:title", [](const Kwargs&) { return Checker([](Text t) { return format_title(t); }); }},
      {"combination:two_responses",
       [](const Kwargs&) { return Checker([](Text t) { return combination_two_responses(t); }); }},
      {"combination:repeat_prompt", [](const Kwargs& k) {
         auto p = k.str("prompt_to_repeat");
         return Checker([=](Text t) { return combination_repeat_prompt(t, p); });
       }},
      {"startend:end_checker", [](const Kwargs& k) {
         auto e = k.str("end_phrase");
         return Checker([=](Text t) { return startend_end_checker(t, e); });
       }},
      {"startend:quotation", [](const Kwargs&) { return Checker([](Text t) { return startend_quotation(t); }); }},
      {"change_case:capital_word_frequency", [](const Kwargs& k) {
         auto n = k.integer("capital_frequency");
         auto rel = k.relation("capital_relation");
         return Checker([=](Text t) { return case_capital_word_frequency(t, n, rel); });
       }},
      {"change_case:english_capital",
       [](const Kwargs&) { return Checker([](Text t) { return case_english_capital(t); }); }},
      {"change_case:english_lowercase",
       [](const Kwargs&) { return Checker([](Text t) { return case_english_lowercase(t); }); }},
      {"punctuation:no_comma", [](const Kwargs&) { return Checker([](Text t) { return punctuation_no_comma(t); }); }},
  };
  return r;
}

}  // namespace

Checker make_checker(const std::string& id, const nlohmann::json& kwargs, const std::string& where) {
  const Kwargs k(kwargs, where);
  for (const auto& [name, factory] : registry())
    if (name == id) return factory(k);
  std::string all;
  for (const auto& [name, f] : registry()) all += (all.empty() ? "" : ", ") + name;
  throw FormatError(where + ": unknown instruction id '" + id + "' (expected one of " + all + ")");
}

const std::vector<std::string>& checker_ids() {
  static const std::vector<std::string> ids = [] {
    std::vector<std::string> v;
    for (const auto& [name, f] : registry()) v.push_back(name);
    return v;
  }();
  return ids;
}

}  // namespace quench::eval::ifeval
