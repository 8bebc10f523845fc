// quench/tokenizer/generation_config.cpp: generation_config.json (transformers GenerationConfig
// keys) with a config.json fallback for the special ids.
#include "tokenizer/generation_config.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"  // FormatError, IoError

namespace quench {
namespace {

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw IoError(p.string() + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

nlohmann::json parse(const std::string& text, const std::string& source) {
  try {
    nlohmann::json j = nlohmann::json::parse(text);
    if (!j.is_object()) throw FormatError(source + ": expected a JSON object");
    return j;
  } catch (const nlohmann::json::parse_error& e) {
    throw FormatError(source + ": invalid JSON: " + e.what());
  }
}

int32_t to_id(const nlohmann::json& v, const std::string& source, const std::string& key) {
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX) {
    throw FormatError(source + ": '" + key + "': expected a token id (integer >= 0), got " + v.dump());
  }
  return static_cast<int32_t>(v.get<int64_t>());
}

// An id or a list of ids (eos_token_id may be either); null/absent -> empty.
std::vector<int32_t> ids_of(const nlohmann::json& obj, const std::string& key, const std::string& source) {
  std::vector<int32_t> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (it->is_array()) {
    for (size_t i = 0; i < it->size(); ++i) out.push_back(to_id((*it)[i], source, key + "[" + std::to_string(i) + "]"));
  } else {
    out.push_back(to_id(*it, source, key));
  }
  return out;
}

int32_t id_or(const nlohmann::json& obj, const std::string& key, const std::string& source) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return -1;
  if (it->is_array()) {  // some configs write a one-element list
    auto v = ids_of(obj, key, source);
    return v.empty() ? -1 : v.front();
  }
  return to_id(*it, source, key);
}

// Fills the special ids from obj; keys already set are kept.
void read_special_ids(const nlohmann::json& obj, const std::string& source, GenerationConfig& g) {
  if (g.eos_token_ids.empty()) g.eos_token_ids = ids_of(obj, "eos_token_id", source);
  if (g.bos_token_id < 0) g.bos_token_id = id_or(obj, "bos_token_id", source);
  if (g.pad_token_id < 0) g.pad_token_id = id_or(obj, "pad_token_id", source);
}

}  // namespace

GenerationConfig GenerationConfig::from_json_text(const std::string& json_text, const std::string& source) {
  const nlohmann::json j = parse(json_text, source);
  GenerationConfig g;
  g.source = source;
  read_special_ids(j, source, g);
  g.suppress_tokens = ids_of(j, "suppress_tokens", source);
  auto opt = [&](const char* key) -> const nlohmann::json* {
    auto it = j.find(key);
    return it == j.end() || it->is_null() ? nullptr : &*it;
  };
  if (const auto* v = opt("do_sample")) {
    if (!v->is_boolean()) throw FormatError(source + ": 'do_sample': expected a boolean, got " + v->dump());
    g.do_sample = v->get<bool>();
  }
  if (const auto* v = opt("temperature")) {
    if (!v->is_number()) throw FormatError(source + ": 'temperature': expected a number, got " + v->dump());
    g.temperature = v->get<double>();
  }
  if (const auto* v = opt("top_p")) {
    if (!v->is_number()) throw FormatError(source + ": 'top_p': expected a number, got " + v->dump());
    g.top_p = v->get<double>();
  }
  if (const auto* v = opt("top_k")) {
    if (!v->is_number_integer()) throw FormatError(source + ": 'top_k': expected an integer, got " + v->dump());
    g.top_k = static_cast<int>(v->get<int64_t>());
  }
  return g;
}

GenerationConfig GenerationConfig::load(const std::filesystem::path& dir) {
  const auto gen_path = dir / "generation_config.json";
  if (std::filesystem::exists(gen_path)) return from_json_text(read_file(gen_path), gen_path.string());
  const auto cfg_path = dir / "config.json";
  if (!std::filesystem::exists(cfg_path)) {
    throw IoError(dir.string() + ": neither generation_config.json nor config.json exists");
  }
  const std::string source = cfg_path.string();
  const nlohmann::json j = parse(read_file(cfg_path), source);
  GenerationConfig g;
  g.source = source;
  read_special_ids(j, source, g);
  if (auto it = j.find("text_config"); it != j.end() && it->is_object()) read_special_ids(*it, source + ": text_config", g);
  return g;
}

bool GenerationConfig::is_eos(int32_t id) const {
  return std::find(eos_token_ids.begin(), eos_token_ids.end(), id) != eos_token_ids.end();
}

}  // namespace quench
