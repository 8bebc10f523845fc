// quench/io/inspect.cpp: checkpoint summary for `quench inspect`.
#include "io/inspect.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/error.h"
#include "io/safetensors.h"
#include "io/text_file.h"

namespace quench {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Linear projections of a Gemma 4 decoder layer (HF module names).
constexpr const char* kLinearSuffixes[] = {".self_attn.q_proj", ".self_attn.k_proj", ".self_attn.v_proj",
                                           ".self_attn.o_proj", ".mlp.gate_proj",    ".mlp.up_proj",
                                           ".mlp.down_proj"};

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// "<module>" when `name` is "<module>.weight" of a decoder-layer Linear, else "".
std::string linear_module(const std::string& name) {
  if (!ends_with(name, ".weight") || name.find(".layers.") == std::string::npos) return "";
  const std::string module = name.substr(0, name.size() - 7);
  for (const char* s : kLinearSuffixes) {
    if (ends_with(module, s)) return module;
  }
  return "";
}

std::string stored_format(const Checkpoint& ck, const std::string& module, const TensorView& w) {
  switch (w.dtype) {
    case DType::kU8: {
      const TensorView* s = ck.find(module + ".weight_scale");
      return s && s->dtype == DType::kF8E4M3 ? "NVFP4" : "U8 (no F8_E4M3 weight_scale)";
    }
    case DType::kF8E4M3: return "FP8";
    case DType::kBF16:
    case DType::kF16:
    case DType::kF32: return "BF16";
    default: return std::string(dtype_name(w.dtype));
  }
}

std::string layer_type_name(LayerType t) { return t == LayerType::kFull ? "full_attention" : "sliding_attention"; }

std::string rope_str(const RopeParams& r) {
  std::string s = fmt::format("rope {} theta={:g}", r.type == RopeType::kProportional ? "proportional" : "default", r.theta);
  if (r.type == RopeType::kProportional) s += fmt::format(" partial_rotary_factor={:g}", r.partial_rotary_factor);
  return s;
}

// "5, 11, 17" or "0-4, 6-10" style list of layer indices.
std::string ranges_str(const std::vector<int>& idx) {
  std::string out;
  for (std::size_t i = 0; i < idx.size();) {
    std::size_t j = i;
    while (j + 1 < idx.size() && idx[j + 1] == idx[j] + 1) ++j;
    if (!out.empty()) out += ", ";
    out += j == i ? std::to_string(idx[i]) : fmt::format("{}-{}", idx[i], idx[j]);
    i = j + 1;
  }
  return out;
}

std::string human_bytes(std::size_t n) {
  if (n >= 1000000000ull) return fmt::format("{:.2f} GB", n / 1e9);
  if (n >= 1000000ull) return fmt::format("{:.2f} MB", n / 1e6);
  if (n >= 1000ull) return fmt::format("{:.2f} kB", n / 1e3);
  return fmt::format("{} B", n);
}

}  // namespace

bool is_multimodal_tensor(const std::string& name) {
  for (const char* k : {"vision_embedder.", "embed_vision.", "embed_audio.", "vision_tower.", "audio_tower.",
                        "multi_modal_projector."}) {
    if (name.find(k) != std::string::npos) return true;
  }
  return false;
}

InspectReport inspect_checkpoint(const fs::path& dir) {
  InspectReport r;
  r.dir = dir;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw IoError(dir.string() + ": not a directory");
  const json cfg = read_json_file(dir / "config.json");
  if (!cfg.is_object()) throw FormatError((dir / "config.json").string() + ": expected a JSON object");
  r.model_type = cfg.value("model_type", std::string());
  try {
    r.config = ModelConfig::from_json(cfg, (dir / "config.json").string());
  } catch (const UnsupportedError& e) {
    r.config_error = e.what();
  }
  r.quant = QuantConfig::load(dir, cfg);
  const Checkpoint ck = Checkpoint::open(dir);
  for (const std::string& name : ck.names()) {
    const TensorView& t = ck.get(name);
    ++r.tensor_count;
    r.total_bytes += t.nbytes;
    const std::string dt(dtype_name(t.dtype));
    ++r.dtype_counts[dt];
    r.dtype_bytes[dt] += t.nbytes;
    if (is_multimodal_tensor(name)) {
      ++r.multimodal_tensor_count;
      r.multimodal_bytes += t.nbytes;
      continue;
    }
    const std::string module = linear_module(name);
    if (module.empty()) continue;
    const std::string stored = stored_format(ck, module, t);
    ++r.linear_formats[stored];
    const std::string declared(weight_format_name(r.quant.format_of(module)));
    if (declared != stored) r.format_mismatches.push_back(module + ": declared " + declared + ", stored " + stored);
  }
  return r;
}

std::string format_inspect_text(const InspectReport& r) {
  std::string s = fmt::format("checkpoint: {}\nmodel_type: {}\n", r.dir.string(), r.model_type);
  if (r.config) {
    const ModelConfig& c = *r.config;
    s += fmt::format("text decoder: hidden_size {}, intermediate_size {}, vocab_size {}, max_position_embeddings {}\n",
                     c.hidden_size, c.intermediate_size, c.vocab_size, c.max_position_embeddings);
    s += fmt::format("final_logit_softcapping: {}\n",
                     c.final_logit_softcapping > 0 ? fmt::format("{:g}", c.final_logit_softcapping) : "none");
    s += fmt::format("layers: {} ({} sliding_attention, {} full_attention), sliding_window {}\n", c.num_hidden_layers,
                     c.num_layers_of(LayerType::kSliding), c.num_layers_of(LayerType::kFull), c.sliding_window);
    // Group layers with identical geometry, in order of first appearance.
    std::vector<std::pair<std::string, std::vector<int>>> groups;
    for (int i = 0; i < c.num_hidden_layers; ++i) {
      const LayerConfig& L = c.layers[static_cast<std::size_t>(i)];
      std::string key = fmt::format("{}: heads {}, kv_heads {}, head_dim {}{}{}, {}", layer_type_name(L.type), L.num_heads,
                                    L.num_kv_heads, L.head_dim, L.k_eq_v ? ", k_eq_v (no v_proj)" : "",
                                    L.sliding_window ? fmt::format(", window {}", L.sliding_window) : "", rope_str(L.rope));
      auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == key; });
      if (it == groups.end()) groups.push_back({key, {i}});
      else it->second.push_back(i);
    }
    for (const auto& [key, idx] : groups) s += fmt::format("  {} [layers {}]\n", key, ranges_str(idx));
    std::string eos;
    for (int e : c.eos_token_ids) eos += (eos.empty() ? "" : ", ") + std::to_string(e);
    s += fmt::format("tokens: bos {}, pad {}, eos [{}]; tie_word_embeddings {}\n", c.bos_token_id, c.pad_token_id, eos,
                     c.tie_word_embeddings ? "true" : "false");
  } else {
    s += fmt::format("config: not loadable by quench: {}\n", r.config_error);
  }
  if (r.quant.quant_algo.empty()) {
    s += "quantization: none\n";
  } else {
    s += fmt::format("quantization: {} {}", r.quant.quant_method, r.quant.quant_algo);
    if (r.quant.quant_algo != "FP8") s += fmt::format(" (group_size {})", r.quant.group_size);
    s += fmt::format(", kv_cache {}", r.quant.kv_cache_quant_algo.empty() ? "auto" : r.quant.kv_cache_quant_algo);
    if (!r.quant.exclude_modules.empty()) s += fmt::format(", {} exclude patterns", r.quant.exclude_modules.size());
    if (!r.quant.quantized_layers.empty()) s += fmt::format(", {} quantized_layers", r.quant.quantized_layers.size());
    s += "\n";
  }
  std::string lin;
  std::size_t nlin = 0;
  for (const auto& [f, n] : r.linear_formats) {
    lin += fmt::format("{}{} {}", lin.empty() ? "" : ", ", n, f);
    nlin += n;
  }
  s += fmt::format("linear weights: {}{}\n", nlin, nlin ? " (" + lin + ")" : "");
  for (const auto& m : r.format_mismatches) s += fmt::format("  warning: {}\n", m);
  s += fmt::format("tensors: {}, {} ({} bytes)\n", r.tensor_count, human_bytes(r.total_bytes), r.total_bytes);
  for (const auto& [dt, n] : r.dtype_counts) {
    s += fmt::format("  {:<8} {:>6} tensors  {}\n", dt, n, human_bytes(r.dtype_bytes.at(dt)));
  }
  s += fmt::format("vision/audio tensors skipped: {} ({})\n", r.multimodal_tensor_count, human_bytes(r.multimodal_bytes));
  return s;
}

json inspect_to_json(const InspectReport& r) {
  json j;
  j["dir"] = r.dir.string();
  j["model_type"] = r.model_type;
  if (r.config) {
    const ModelConfig& c = *r.config;
    json layers = json::array();
    for (const auto& L : c.layers) {
      layers.push_back({{"type", layer_type_name(L.type)},
                        {"num_heads", L.num_heads},
                        {"num_kv_heads", L.num_kv_heads},
                        {"head_dim", L.head_dim},
                        {"k_eq_v", L.k_eq_v},
                        {"sliding_window", L.sliding_window},
                        {"rope_type", L.rope.type == RopeType::kProportional ? "proportional" : "default"},
                        {"rope_theta", L.rope.theta},
                        {"partial_rotary_factor", L.rope.partial_rotary_factor}});
    }
    j["config"] = {{"hidden_size", c.hidden_size},
                   {"intermediate_size", c.intermediate_size},
                   {"num_hidden_layers", c.num_hidden_layers},
                   {"vocab_size", c.vocab_size},
                   {"max_position_embeddings", c.max_position_embeddings},
                   {"final_logit_softcapping", c.final_logit_softcapping},
                   {"sliding_window", c.sliding_window},
                   {"rms_norm_eps", c.rms_norm_eps},
                   {"tie_word_embeddings", c.tie_word_embeddings},
                   {"bos_token_id", c.bos_token_id},
                   {"pad_token_id", c.pad_token_id},
                   {"eos_token_id", c.eos_token_ids},
                   {"num_sliding_layers", c.num_layers_of(LayerType::kSliding)},
                   {"num_full_layers", c.num_layers_of(LayerType::kFull)},
                   {"layers", layers}};
  } else {
    j["config"] = nullptr;
    j["config_error"] = r.config_error;
  }
  json q = {{"quant_method", r.quant.quant_method.empty() ? json(nullptr) : json(r.quant.quant_method)},
            {"quant_algo", r.quant.quant_algo.empty() ? json(nullptr) : json(r.quant.quant_algo)},
            {"kv_cache_quant_algo", r.quant.kv_cache_quant_algo.empty() ? json(nullptr) : json(r.quant.kv_cache_quant_algo)},
            {"group_size", r.quant.group_size},
            {"exclude_modules", r.quant.exclude_modules},
            {"linear_formats", r.linear_formats},
            {"format_mismatches", r.format_mismatches}};
  j["quantization"] = q;
  json dts = json::object();
  for (const auto& [dt, n] : r.dtype_counts) dts[dt] = {{"tensors", n}, {"bytes", r.dtype_bytes.at(dt)}};
  j["tensors"] = {{"count", r.tensor_count}, {"total_bytes", r.total_bytes}, {"dtypes", dts}};
  j["multimodal_skipped"] = {{"tensors", r.multimodal_tensor_count}, {"bytes", r.multimodal_bytes}};
  return j;
}

}  // namespace quench
