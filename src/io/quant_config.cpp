// quench/io/quant_config.cpp: ModelOpt quantization metadata (config.json quantization_config or
// hf_quant_config.json) and per-module format lookup.
//
// Layouts: ../shared/reference/nvfp4-modelopt-format.md §6.1 (hf_quant_config.json), §6.2
// (config.json quantization_config), §6.3 (exclusion rules as vLLM applies them), §6.4
// (MIXED_PRECISION quantized_layers).
#include "io/quant_config.h"

#include "core/error.h"
#include "io/text_file.h"

namespace quench {

namespace {

using json = nlohmann::json;

// quant_algo values whose weights quench can read, and the weight format they imply.
bool algo_format(const std::string& algo, WeightFormat* f) {
  if (algo == "NVFP4" || algo == "W4A16_NVFP4") {
    *f = WeightFormat::kNVFP4;
    return true;
  }
  if (algo == "FP8") {
    *f = WeightFormat::kFP8;
    return true;
  }
  return false;
}

std::string str_or_empty(const json& obj, const char* key, const std::string& where) {
  if (!obj.contains(key) || obj[key].is_null()) return "";
  if (!obj[key].is_string()) throw FormatError(where + "." + key + ": expected a string or null, found " + obj[key].dump());
  return obj[key].get<std::string>();
}

std::vector<std::string> str_list(const json& obj, const char* key, const std::string& where) {
  std::vector<std::string> out;
  if (!obj.contains(key) || obj[key].is_null()) return out;
  if (!obj[key].is_array()) throw FormatError(where + "." + key + ": expected a list of strings");
  for (const auto& v : obj[key]) {
    if (!v.is_string()) throw FormatError(where + "." + key + ": expected strings, found " + v.dump());
    out.push_back(v.get<std::string>());
  }
  return out;
}

int group_size_of(const json& obj, const std::string& where, int def) {
  if (!obj.contains("group_size") || obj["group_size"].is_null()) return def;
  if (!obj["group_size"].is_number_integer()) {
    throw FormatError(where + ".group_size: expected an integer, found " + obj["group_size"].dump());
  }
  const int64_t g = obj["group_size"].get<int64_t>();
  if (g <= 0 || g > 1 << 20) throw FormatError(where + ".group_size: " + obj["group_size"].dump() + " out of range");
  return static_cast<int>(g);
}

void check_algo(QuantConfig& q, const std::string& where) {
  WeightFormat f;
  if (q.quant_algo != "MIXED_PRECISION" && !algo_format(q.quant_algo, &f)) {
    throw UnsupportedError(where + ".quant_algo: '" + q.quant_algo +
                           "' (supported: NVFP4, W4A16_NVFP4, FP8, MIXED_PRECISION)");
  }
  if (q.quant_algo != "FP8" && q.group_size != 16) {
    throw UnsupportedError(where + ".group_size: " + std::to_string(q.group_size) + " (NVFP4 uses 16)");
  }
  if (!q.kv_cache_quant_algo.empty() && q.kv_cache_quant_algo != "FP8") {
    throw UnsupportedError(where + ".kv_cache_quant_algo: '" + q.kv_cache_quant_algo + "' (supported: FP8 or null)");
  }
}

void read_quantized_layers(QuantConfig& q, const json& obj, const std::string& where) {
  if (!obj.contains("quantized_layers") || obj["quantized_layers"].is_null()) {
    throw FormatError(where + ".quantized_layers: required when quant_algo is MIXED_PRECISION");
  }
  const json& ql = obj["quantized_layers"];
  if (!ql.is_object()) throw FormatError(where + ".quantized_layers: expected an object of module -> {quant_algo}");
  for (const auto& [name, entry] : ql.items()) {
    const std::string w = where + ".quantized_layers." + name;
    if (!entry.is_object()) throw FormatError(w + ": expected an object with \"quant_algo\"");
    const std::string algo = str_or_empty(entry, "quant_algo", w);
    WeightFormat f;
    if (!algo_format(algo, &f)) {
      throw UnsupportedError(w + ".quant_algo: '" + algo + "' (supported: NVFP4, W4A16_NVFP4, FP8)");
    }
    if (f == WeightFormat::kNVFP4 && group_size_of(entry, w, 16) != 16) {
      throw UnsupportedError(w + ".group_size: " + entry["group_size"].dump() + " (NVFP4 uses 16)");
    }
    q.quantized_layers[name] = f;
  }
}

// Name variants under which ModelOpt may have written a module of the text model.
std::vector<std::string> name_variants(const std::string& m) {
  static const std::string kLm = "model.language_model.";
  static const std::string kModel = "model.";
  static const std::string kLmShort = "language_model.";
  std::vector<std::string> v{m};
  std::string bare = m;
  if (m.rfind(kLm, 0) == 0) bare = m.substr(kLm.size());
  else if (m.rfind(kModel, 0) == 0) bare = m.substr(kModel.size());
  else if (m.rfind(kLmShort, 0) == 0) bare = m.substr(kLmShort.size());
  for (const std::string& s : {bare, kModel + bare, kLm + bare, kLmShort + bare}) {
    bool dup = false;
    for (const auto& x : v) dup |= (x == s);
    if (!dup) v.push_back(s);
  }
  return v;
}

bool has_glob_chars(std::string_view p) { return p.find_first_of("*?[") != std::string_view::npos; }

}  // namespace

std::string_view weight_format_name(WeightFormat f) {
  switch (f) {
    case WeightFormat::kBF16: return "BF16";
    case WeightFormat::kFP8: return "FP8";
    case WeightFormat::kNVFP4: return "NVFP4";
  }
  return "?";
}

bool glob_match(std::string_view pattern, std::string_view text) {
  // Iterative wildcard match with backtracking to the last '*' (fnmatch semantics without
  // FNM_PATHNAME: '*' also crosses dots). '[...]' / '[!...]' classes with ranges.
  std::size_t p = 0, t = 0, star_p = std::string_view::npos, star_t = 0;
  auto match_class = [&](std::size_t& pi, char c, bool* ok) -> bool {
    // pattern[pi] == '['; returns false if the class is unterminated (then '[' is literal).
    std::size_t i = pi + 1;
    bool negate = false;
    if (i < pattern.size() && pattern[i] == '!') {  // '^' is literal, as in Python's fnmatch
      negate = true;
      ++i;
    }
    bool matched = false;
    bool first = true;
    while (i < pattern.size() && (first || pattern[i] != ']')) {
      first = false;
      char lo = pattern[i];
      if (i + 2 < pattern.size() && pattern[i + 1] == '-' && pattern[i + 2] != ']') {
        char hi = pattern[i + 2];
        if (lo <= c && c <= hi) matched = true;
        i += 3;
      } else {
        if (lo == c) matched = true;
        ++i;
      }
    }
    if (i >= pattern.size()) return false;
    pi = i + 1;
    *ok = matched != negate;
    return true;
  };
  while (t < text.size()) {
    if (p < pattern.size()) {
      const char pc = pattern[p];
      if (pc == '*') {
        star_p = p++;
        star_t = t;
        continue;
      }
      if (pc == '?') {
        ++p;
        ++t;
        continue;
      }
      if (pc == '[') {
        std::size_t np = p;
        bool ok = false;
        if (match_class(np, text[t], &ok)) {
          if (ok) {
            p = np;
            ++t;
            continue;
          }
        } else if (text[t] == '[') {
          ++p;
          ++t;
          continue;
        }
      } else if (pc == text[t]) {
        ++p;
        ++t;
        continue;
      }
    }
    if (star_p == std::string_view::npos) return false;
    p = star_p + 1;
    t = ++star_t;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

QuantConfig QuantConfig::load(const std::filesystem::path& dir, const json& config_json) {
  QuantConfig q;
  if (config_json.is_object() && config_json.contains("quantization_config") &&
      !config_json["quantization_config"].is_null()) {
    const std::string where = (dir / "config.json").string() + ": quantization_config";
    const json& qc = config_json["quantization_config"];
    if (!qc.is_object()) throw FormatError(where + ": expected an object");
    q.quant_method = str_or_empty(qc, "quant_method", where);
    if (q.quant_method != "modelopt") {
      throw UnsupportedError(where + ".quant_method: '" + q.quant_method + "' (supported: modelopt)");
    }
    q.quant_algo = str_or_empty(qc, "quant_algo", where);
    q.group_size = group_size_of(qc, where, 16);
    q.exclude_modules = str_list(qc, "ignore", where);
    for (auto& s : str_list(qc, "exclude_modules", where)) q.exclude_modules.push_back(s);
    q.kv_cache_quant_algo = str_or_empty(qc, "kv_cache_quant_algo", where);
    if (qc.contains("kv_cache_scheme") && !qc["kv_cache_scheme"].is_null()) {
      const json& kv = qc["kv_cache_scheme"];
      if (!kv.is_object()) throw FormatError(where + ".kv_cache_scheme: expected an object or null");
      const bool is_float = kv.contains("type") && kv["type"].is_string() && kv["type"].get<std::string>() == "float";
      const int bits = kv.contains("num_bits") && kv["num_bits"].is_number_integer() ? kv["num_bits"].get<int>() : 0;
      if (!is_float || bits != 8) {
        throw UnsupportedError(where + ".kv_cache_scheme: " + kv.dump() + " (supported: type float, num_bits 8)");
      }
      q.kv_cache_quant_algo = "FP8";
    }
    if (qc.contains("nvfp4_embed") && qc["nvfp4_embed"].is_boolean() && qc["nvfp4_embed"].get<bool>()) {
      throw UnsupportedError(where + ".nvfp4_embed: true (NVFP4 embedding tables are not supported)");
    }
    if (q.quant_algo == "MIXED_PRECISION") read_quantized_layers(q, qc, where);
    check_algo(q, where);
    return q;
  }
  const auto hf = dir / "hf_quant_config.json";
  std::error_code ec;
  if (!std::filesystem::exists(hf, ec)) return q;  // unquantized
  const json j = read_json_file(hf);
  const std::string src = hf.string();
  if (!j.is_object() || !j.contains("quantization") || !j["quantization"].is_object()) {
    throw FormatError(src + ": quantization: expected an object");
  }
  const json& qz = j["quantization"];
  const std::string where = src + ": quantization";
  q.quant_method = "modelopt";
  q.quant_algo = str_or_empty(qz, "quant_algo", where);
  if (q.quant_algo.empty()) throw FormatError(where + ".quant_algo: missing");
  q.kv_cache_quant_algo = str_or_empty(qz, "kv_cache_quant_algo", where);
  q.group_size = group_size_of(qz, where, 16);
  q.exclude_modules = str_list(qz, "exclude_modules", where);
  if (q.quant_algo == "MIXED_PRECISION") {
    // §6.4 shows quantized_layers beside quant_algo; accept it at the file's top level too.
    if (qz.contains("quantized_layers")) read_quantized_layers(q, qz, where);
    else read_quantized_layers(q, j, src);
  }
  check_algo(q, where);
  return q;
}

WeightFormat QuantConfig::format_of(const std::string& module) const {
  if (quant_algo.empty()) return WeightFormat::kBF16;
  const auto variants = name_variants(module);
  if (quant_algo == "MIXED_PRECISION") {
    for (const auto& v : variants) {
      auto it = quantized_layers.find(v);
      if (it != quantized_layers.end()) return it->second;
    }
    return WeightFormat::kBF16;  // unlisted layers are unquantized (§6.4)
  }
  for (const auto& pat : exclude_modules) {
    for (const auto& v : variants) {
      if (pat == v || glob_match(pat, v)) return WeightFormat::kBF16;
      // vLLM's legacy rule: a plain entry contained in the module path excludes it (§6.3 rule 2).
      if (!has_glob_chars(pat) && v.find(pat) != std::string::npos) return WeightFormat::kBF16;
    }
  }
  WeightFormat f = WeightFormat::kBF16;
  algo_format(quant_algo, &f);
  return f;
}

}  // namespace quench
