// quench/io/model_config.cpp: Gemma 4 text-decoder config parsing and per-layer resolution.
//
// Defaults where a key is absent follow transformers' Gemma4UnifiedTextConfig (model_type
// gemma4_unified_text) and Gemma4TextConfig (gemma4_text) dataclass defaults and __post_init__
// (layer_types pattern 5 sliding : 1 full, last layer forced to full, default rope_parameters,
// global_head_dim 512, per_layer_config built from global_head_dim / num_global_key_value_heads
// when absent). See ../shared/reference/gemma4-architecture.md §1 and §10.
#include "io/model_config.h"

#include <cctype>
#include <cstdint>
#include <optional>

#include "core/error.h"
#include "core/log.h"
#include "io/text_file.h"

namespace quench {

namespace {

using json = nlohmann::json;

// Reads typed values from one JSON object, naming "<source>: <path>.<key>" in errors.
class Reader {
 public:
  Reader(const json& obj, std::string source, std::string path)
      : obj_(obj), source_(std::move(source)), path_(std::move(path)) {}

  std::string where(const std::string& key) const {
    return source_ + ": " + (path_.empty() ? key : path_ + "." + key);
  }
  bool has(const std::string& key) const { return obj_.contains(key) && !obj_[key].is_null(); }
  const json& at(const std::string& key) const { return obj_[key]; }

  int get_int(const std::string& key, int def) const {
    if (!has(key)) return def;
    const json& v = obj_[key];
    if (!v.is_number_integer()) throw FormatError(where(key) + ": expected an integer, found " + v.dump());
    const int64_t x = v.get<int64_t>();
    if (x < INT32_MIN || x > INT32_MAX) throw FormatError(where(key) + ": " + v.dump() + " does not fit in int32");
    return static_cast<int>(x);
  }
  double get_double(const std::string& key, double def) const {
    if (!has(key)) return def;
    const json& v = obj_[key];
    if (!v.is_number()) throw FormatError(where(key) + ": expected a number, found " + v.dump());
    return v.get<double>();
  }
  bool get_bool(const std::string& key, bool def) const {
    if (!has(key)) return def;
    const json& v = obj_[key];
    if (!v.is_boolean()) throw FormatError(where(key) + ": expected true or false, found " + v.dump());
    return v.get<bool>();
  }
  std::string get_string(const std::string& key, const std::string& def) const {
    if (!has(key)) return def;
    const json& v = obj_[key];
    if (!v.is_string()) throw FormatError(where(key) + ": expected a string, found " + v.dump());
    return v.get<std::string>();
  }
  std::vector<int> get_int_list(const std::string& key, std::vector<int> def) const {
    if (!has(key)) return def;
    const json& v = obj_[key];
    auto one = [&](const json& x) {
      if (!x.is_number_integer()) throw FormatError(where(key) + ": expected integers, found " + x.dump());
      const int64_t i = x.get<int64_t>();
      if (i < 0 || i > INT32_MAX || (x.is_number_unsigned() && x.get<uint64_t>() > INT32_MAX)) {
        throw FormatError(where(key) + ": token id " + x.dump() + " out of range");
      }
      return static_cast<int>(i);
    };
    if (v.is_number_integer()) return {one(v)};
    if (!v.is_array()) throw FormatError(where(key) + ": expected an integer or a list of integers, found " + v.dump());
    std::vector<int> out;
    for (const auto& x : v) out.push_back(one(x));
    return out;
  }

 private:
  const json& obj_;
  std::string source_;
  std::string path_;
};

// Per text model_type defaults (transformers dataclass fields).
struct Defaults {
  int hidden_size = 2304, intermediate_size = 9216, num_hidden_layers = 30, num_attention_heads = 8;
  int num_key_value_heads = 4, head_dim = 256, max_position_embeddings = 262144, sliding_window = 1024;
  int hidden_size_per_layer_input = 0;  // gemma4_unified_text has no PLE field
};

Defaults defaults_for(const std::string& text_model_type) {
  Defaults d;
  if (text_model_type == "gemma4_text") {
    d.max_position_embeddings = 131072;
    d.sliding_window = 512;
    d.hidden_size_per_layer_input = 256;  // Gemma4TextConfig default: PLE on
  }
  return d;
}

LayerType parse_layer_type(const std::string& s, const std::string& where) {
  if (s == "sliding_attention") return LayerType::kSliding;
  if (s == "full_attention") return LayerType::kFull;
  throw UnsupportedError(where + ": layer type '" + s + "' (supported: sliding_attention, full_attention)");
}

const char* layer_type_key(LayerType t) { return t == LayerType::kSliding ? "sliding_attention" : "full_attention"; }

RopeParams parse_rope(const json& p, const std::string& source, const std::string& path, double fallback_theta) {
  if (!p.is_object()) throw FormatError(source + ": " + path + ": expected an object, found " + p.dump());
  Reader r(p, source, path);
  RopeParams rp;
  const std::string type = r.get_string("rope_type", r.get_string("type", "default"));
  if (type == "default") {
    rp.type = RopeType::kDefault;
  } else if (type == "proportional") {
    rp.type = RopeType::kProportional;
  } else {
    throw UnsupportedError(r.where("rope_type") + ": '" + type + "' (supported: default, proportional)");
  }
  rp.theta = r.get_double("rope_theta", fallback_theta);
  if (!(rp.theta > 0)) throw FormatError(r.where("rope_theta") + ": must be > 0");
  rp.partial_rotary_factor = r.get_double("partial_rotary_factor", 1.0);
  if (!(rp.partial_rotary_factor > 0 && rp.partial_rotary_factor <= 1)) {
    throw FormatError(r.where("partial_rotary_factor") + ": must be in (0, 1]");
  }
  if (rp.type == RopeType::kDefault && rp.partial_rotary_factor != 1.0) {
    throw UnsupportedError(r.where("partial_rotary_factor") + ": partial rotation with rope_type 'default' (only "
                           "'proportional' rotates part of the head)");
  }
  if (r.has("factor") && r.get_double("factor", 1.0) != 1.0) {
    throw UnsupportedError(r.where("factor") + ": RoPE scaling factor " + r.at("factor").dump() + " (only 1.0)");
  }
  return rp;
}

// Parses a per_layer_config key ("5", "05") into a layer index.
int parse_layer_index(const std::string& key, int num_layers, const std::string& where) {
  if (key.empty() || key.size() > 9) throw FormatError(where + ": key '" + key + "' is not a layer index");
  int idx = 0;
  for (char c : key) {
    if (!std::isdigit(static_cast<unsigned char>(c))) throw FormatError(where + ": key '" + key + "' is not a layer index");
    idx = idx * 10 + (c - '0');
  }
  if (idx >= num_layers) {
    throw FormatError(where + ": layer " + key + " out of range (num_hidden_layers = " + std::to_string(num_layers) + ")");
  }
  return idx;
}

}  // namespace

ModelConfig ModelConfig::from_json(const json& j, const std::string& source_name) {
  const std::string& src = source_name;
  if (!j.is_object()) throw FormatError(src + ": expected a JSON object");
  ModelConfig c;
  c.raw = j;
  Reader top(j, src, "");
  c.model_type = top.get_string("model_type", "");

  // Where the text keys live, and which transformers class' defaults apply.
  const json* text = &j;
  std::string text_path;
  std::string text_type;
  if (c.model_type == "gemma4_unified" || c.model_type == "gemma4") {
    if (!j.contains("text_config") || !j["text_config"].is_object()) {
      throw FormatError(src + ": text_config: expected an object for model_type '" + c.model_type + "'");
    }
    text = &j["text_config"];
    text_path = "text_config";
    text_type = Reader(*text, src, text_path)
                    .get_string("model_type", c.model_type == "gemma4" ? "gemma4_text" : "gemma4_unified_text");
  } else if (c.model_type == "gemma4_text" || c.model_type == "gemma4_unified_text") {
    text_type = c.model_type;
  } else {
    throw UnsupportedError(src + ": model_type: '" + c.model_type +
                           "' (supported: gemma4_unified, gemma4, gemma4_unified_text, gemma4_text)");
  }
  if (text_type != "gemma4_text" && text_type != "gemma4_unified_text") {
    throw UnsupportedError(src + ": " + text_path + ".model_type: '" + text_type +
                           "' (supported: gemma4_unified_text, gemma4_text)");
  }
  const Defaults d = defaults_for(text_type);
  Reader t(*text, src, text_path);

  // ---- features this forward pass does not implement: rejected by name ----
  if (const int ple = t.get_int("hidden_size_per_layer_input", d.hidden_size_per_layer_input); ple > 0) {
    throw UnsupportedError(t.where("hidden_size_per_layer_input") + " = " + std::to_string(ple) +
                           ": per-layer embeddings (PLE) are not supported" +
                           (t.has("hidden_size_per_layer_input") ? "" : " (transformers' default for " + text_type + ")"));
  }
  if (const int shared = t.get_int("num_kv_shared_layers", 0); shared > 0) {
    throw UnsupportedError(t.where("num_kv_shared_layers") + " = " + std::to_string(shared) +
                           ": KV sharing across layers is not supported");
  }
  if (t.get_bool("enable_moe_block", false)) {
    throw UnsupportedError(t.where("enable_moe_block") + " = true: mixture-of-experts blocks are not supported");
  }
  if (t.has("num_experts")) {
    throw UnsupportedError(t.where("num_experts") + " = " + t.at("num_experts").dump() +
                           ": mixture-of-experts blocks are not supported");
  }
  if (t.get_bool("use_double_wide_mlp", false)) {
    throw UnsupportedError(t.where("use_double_wide_mlp") + " = true: double-wide MLP is not supported");
  }
  if (t.has("attn_logit_softcapping")) {
    throw UnsupportedError(t.where("attn_logit_softcapping") + " = " + t.at("attn_logit_softcapping").dump() +
                           ": attention logit softcapping is not supported");
  }
  // Gemma 4 configs have no `hidden_act` field (transformers keeps such a key as an unused extra).
  c.hidden_activation = t.get_string("hidden_activation", "gelu_pytorch_tanh");
  if (c.hidden_activation != "gelu_pytorch_tanh") {
    throw UnsupportedError(t.where("hidden_activation") + ": '" + c.hidden_activation +
                           "' (supported: gelu_pytorch_tanh)");
  }
  const std::string bidi = t.get_string("use_bidirectional_attention", "");
  if (bidi == "all") {
    throw UnsupportedError(t.where("use_bidirectional_attention") + ": 'all' (non-causal text attention) is not supported");
  }
  if (!bidi.empty() && bidi != "vision") {
    throw FormatError(t.where("use_bidirectional_attention") + ": '" + bidi + "' (expected \"vision\", \"all\" or null)");
  }

  // ---- scalar geometry ----
  c.hidden_size = t.get_int("hidden_size", d.hidden_size);
  c.intermediate_size = t.get_int("intermediate_size", d.intermediate_size);
  c.num_hidden_layers = t.get_int("num_hidden_layers", d.num_hidden_layers);
  c.vocab_size = t.get_int("vocab_size", 262144);
  c.max_position_embeddings = t.get_int("max_position_embeddings", d.max_position_embeddings);
  c.rms_norm_eps = t.get_double("rms_norm_eps", 1e-6);
  c.final_logit_softcapping = t.get_double("final_logit_softcapping", 0.0);
  c.sliding_window = t.get_int("sliding_window", d.sliding_window);
  c.pad_token_id = t.get_int("pad_token_id", 0);
  c.bos_token_id = t.get_int("bos_token_id", 2);
  // The composite config's eos list (e.g. [1, 106] on -it) takes precedence over text_config's.
  c.eos_token_ids = (text != &j && top.has("eos_token_id")) ? top.get_int_list("eos_token_id", {1})
                                                            : t.get_int_list("eos_token_id", {1});
  c.tie_word_embeddings = (text != &j && top.has("tie_word_embeddings")) ? top.get_bool("tie_word_embeddings", true)
                                                                         : t.get_bool("tie_word_embeddings", true);
  const int num_heads = t.get_int("num_attention_heads", d.num_attention_heads);
  const int num_kv_heads = t.get_int("num_key_value_heads", d.num_key_value_heads);
  const int head_dim = t.get_int("head_dim", d.head_dim);
  const bool k_eq_v = t.get_bool("attention_k_eq_v", false);

  auto positive = [&](const char* key, int v) {
    if (v <= 0) throw FormatError(t.where(key) + ": must be > 0, found " + std::to_string(v));
  };
  positive("hidden_size", c.hidden_size);
  positive("intermediate_size", c.intermediate_size);
  positive("num_hidden_layers", c.num_hidden_layers);
  positive("vocab_size", c.vocab_size);
  positive("num_attention_heads", num_heads);
  positive("num_key_value_heads", num_kv_heads);
  positive("head_dim", head_dim);
  positive("sliding_window", c.sliding_window);
  if (c.final_logit_softcapping < 0) throw FormatError(t.where("final_logit_softcapping") + ": must be >= 0");
  if (!(c.rms_norm_eps > 0)) throw FormatError(t.where("rms_norm_eps") + ": must be > 0");

  // ---- layer types ----
  std::vector<LayerType> types;
  if (t.has("layer_types")) {
    const json& lt = t.at("layer_types");
    if (!lt.is_array()) throw FormatError(t.where("layer_types") + ": expected a list of strings");
    for (std::size_t i = 0; i < lt.size(); ++i) {
      const std::string w = t.where("layer_types[" + std::to_string(i) + "]");
      if (!lt[i].is_string()) throw FormatError(w + ": expected a string, found " + lt[i].dump());
      types.push_back(parse_layer_type(lt[i].get<std::string>(), w));
    }
    if (static_cast<int>(types.size()) != c.num_hidden_layers) {
      throw FormatError(t.where("layer_types") + ": has " + std::to_string(types.size()) +
                        " entries, num_hidden_layers is " + std::to_string(c.num_hidden_layers));
    }
  } else {
    for (int i = 0; i < c.num_hidden_layers; ++i) types.push_back((i + 1) % 6 ? LayerType::kSliding : LayerType::kFull);
  }
  if (types.back() != LayerType::kFull) {
    // transformers forces the last layer to full attention (with a warning); do the same.
    log().warn("{}: last layer type is sliding_attention; forcing full_attention as transformers does",
               t.where("layer_types"));
    types.back() = LayerType::kFull;
  }

  // ---- RoPE per layer type ----
  RopeParams rope_by_type[2];
  const double top_theta = t.get_double("rope_theta", -1.0);
  for (LayerType lt : {LayerType::kSliding, LayerType::kFull}) {
    bool used = false;
    for (LayerType x : types) used |= (x == lt);
    const std::string key = layer_type_key(lt);
    const double def_theta = lt == LayerType::kSliding ? 10000.0 : 1000000.0;
    RopeParams& rp = rope_by_type[lt == LayerType::kFull];
    if (!t.has("rope_parameters")) {
      rp.type = lt == LayerType::kSliding ? RopeType::kDefault : RopeType::kProportional;
      rp.theta = top_theta > 0 ? top_theta : def_theta;
      rp.partial_rotary_factor = lt == LayerType::kSliding ? 1.0 : 0.25;
      continue;
    }
    const json& params = t.at("rope_parameters");
    const std::string ppath = (text_path.empty() ? "" : text_path + ".") + "rope_parameters";
    if (!params.is_object()) throw FormatError(src + ": " + ppath + ": expected an object");
    if (params.contains("rope_type") || params.contains("rope_theta")) {
      rp = parse_rope(params, src, ppath, top_theta > 0 ? top_theta : def_theta);  // one set for every layer
    } else if (params.contains(key)) {
      rp = parse_rope(params[key], src, ppath + "." + key, top_theta > 0 ? top_theta : def_theta);
    } else if (used) {
      throw FormatError(src + ": " + ppath + "." + key + ": missing (the model has " + key + " layers)");
    }
  }
  if (t.has("rope_parameters")) {
    for (const auto& [k, v] : t.at("rope_parameters").items()) {
      if (v.is_object() && k != "sliding_attention" && k != "full_attention") {
        throw UnsupportedError(t.where("rope_parameters." + k) + ": unknown layer type '" + k + "'");
      }
    }
  }

  // ---- per-layer geometry ----
  c.layers.resize(static_cast<std::size_t>(c.num_hidden_layers));
  for (int i = 0; i < c.num_hidden_layers; ++i) {
    LayerConfig& L = c.layers[static_cast<std::size_t>(i)];
    L.type = types[static_cast<std::size_t>(i)];
    L.head_dim = head_dim;
    L.num_heads = num_heads;
    L.num_kv_heads = num_kv_heads;
    L.k_eq_v = k_eq_v && L.type == LayerType::kFull;
    L.rope = rope_by_type[L.type == LayerType::kFull];
    L.sliding_window = L.type == LayerType::kSliding ? c.sliding_window : 0;
  }
  if (t.has("per_layer_config")) {
    const json& plc = t.at("per_layer_config");
    if (!plc.is_object()) throw FormatError(t.where("per_layer_config") + ": expected an object keyed by layer index");
    for (const auto& [key, ov] : plc.items()) {
      const int idx = parse_layer_index(key, c.num_hidden_layers, t.where("per_layer_config"));
      const std::string opath = (text_path.empty() ? "" : text_path + ".") + "per_layer_config." + key;
      if (!ov.is_object()) throw FormatError(src + ": " + opath + ": expected an object");
      Reader o(ov, src, opath);
      for (const auto& [ok, ovv] : ov.items()) {
        if (ok != "head_dim" && ok != "num_key_value_heads") {
          throw UnsupportedError(o.where(ok) + ": per-layer override of '" + ok +
                                 "' (supported: head_dim, num_key_value_heads)");
        }
      }
      LayerConfig& L = c.layers[static_cast<std::size_t>(idx)];
      L.head_dim = o.get_int("head_dim", L.head_dim);
      L.num_kv_heads = o.get_int("num_key_value_heads", L.num_kv_heads);
      if (L.head_dim <= 0) throw FormatError(o.where("head_dim") + ": must be > 0");
      if (L.num_kv_heads <= 0) throw FormatError(o.where("num_key_value_heads") + ": must be > 0");
    }
  } else {
    const int global_head_dim = t.get_int("global_head_dim", 512);
    positive("global_head_dim", global_head_dim);
    std::optional<int> global_kv;
    if (t.has("num_global_key_value_heads")) {
      global_kv = t.get_int("num_global_key_value_heads", 0);
      positive("num_global_key_value_heads", *global_kv);
    }
    for (auto& L : c.layers) {
      if (L.type != LayerType::kFull) continue;
      L.head_dim = global_head_dim;
      if (k_eq_v && global_kv) L.num_kv_heads = *global_kv;  // gated by attention_k_eq_v as in transformers
    }
  }
  for (int i = 0; i < c.num_hidden_layers; ++i) {
    const LayerConfig& L = c.layers[static_cast<std::size_t>(i)];
    if (L.num_heads % L.num_kv_heads != 0) {
      throw FormatError(src + ": layer " + std::to_string(i) + ": num_attention_heads " + std::to_string(L.num_heads) +
                        " is not a multiple of num_key_value_heads " + std::to_string(L.num_kv_heads));
    }
    if (L.head_dim % 2 != 0) {
      throw FormatError(src + ": layer " + std::to_string(i) + ": head_dim " + std::to_string(L.head_dim) +
                        " must be even for RoPE");
    }
  }
  return c;
}

ModelConfig ModelConfig::load(const std::filesystem::path& dir) {
  const auto path = dir / "config.json";
  return from_json(read_json_file(path), path.string());
}

int ModelConfig::num_layers_of(LayerType t) const {
  int n = 0;
  for (const auto& L : layers) n += (L.type == t);
  return n;
}

}  // namespace quench
