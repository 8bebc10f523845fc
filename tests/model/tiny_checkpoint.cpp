// tests/model/tiny_checkpoint.cpp: the random tiny checkpoint writer (tiny_checkpoint.h).
#include "model/tiny_checkpoint.h"

#include <atomic>
#include <random>
#include <vector>

#include <unistd.h>

#include "core/numeric.h"
#include "io/safetensors.h"

namespace quench::test {

TempDir::TempDir(const std::string& tag) {
  static std::atomic<int> counter{0};
  path_ = std::filesystem::temp_directory_path() /
          ("quench_model_test_" + tag + "_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

namespace {

class TensorMaker {
 public:
  TensorMaker(const TinyOptions& opt, SafetensorsWriter& w) : opt_(opt), w_(w), rng_(opt.seed) {}

  /// Gaussian(mean, std) values of `shape` in the option dtype.
  void add(const std::string& name, std::vector<int64_t> shape, float mean, float std) {
    if (opt_.keep && !opt_.keep(name)) return;
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::normal_distribution<float> dist(mean, std);
    if (opt_.dtype == DType::kBF16) {
      std::vector<uint16_t> v(n);
      for (auto& x : v) x = f32_to_bf16(dist(rng_));
      w_.add(name, DType::kBF16, shape, v.data(), v.size() * 2);
    } else {
      std::vector<float> v(n);
      for (auto& x : v) x = dist(rng_);
      w_.add(name, DType::kF32, shape, v.data(), v.size() * 4);
    }
  }

 private:
  const TinyOptions& opt_;
  SafetensorsWriter& w_;
  std::mt19937 rng_;
};

}  // namespace

std::filesystem::path write_tiny_checkpoint(const std::filesystem::path& dir, const TinyOptions& opt) {
  std::filesystem::create_directories(dir);
  int hidden = kTinyHidden, inter = 64, heads = 4, kv = 2, hd = 16, ghd = 32, vocab = kTinyVocab;
  nlohmann::json text = {
      {"model_type", opt.layout == "unified" ? "gemma4_unified_text" : "gemma4_text"},
      {"hidden_size", hidden},
      {"intermediate_size", inter},
      {"num_hidden_layers", kTinyLayers},
      {"num_attention_heads", heads},
      {"num_key_value_heads", kv},
      {"head_dim", hd},
      {"global_head_dim", ghd},
      {"num_global_key_value_heads", 1},
      {"attention_k_eq_v", true},
      {"layer_types", {"sliding_attention", "sliding_attention", "sliding_attention", "full_attention"}},
      {"sliding_window", kTinyWindow},
      {"rope_parameters",
       {{"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 10000.0}}},
        {"full_attention", {{"rope_type", "proportional"}, {"partial_rotary_factor", 0.25}, {"rope_theta", 1e6}}}}},
      {"rms_norm_eps", 1e-6},
      {"hidden_activation", "gelu_pytorch_tanh"},
      {"vocab_size", vocab},
      {"max_position_embeddings", 4096},
      {"final_logit_softcapping", 30.0},
      {"tie_word_embeddings", true},
      {"hidden_size_per_layer_input", 0},
      {"num_kv_shared_layers", 0},
      {"pad_token_id", 0},
      {"eos_token_id", 1},
      {"bos_token_id", 2},
  };
  if (opt.edit_config) opt.edit_config(text);
  // Tensor shapes follow the (possibly edited) geometry, except where a test edits the config to
  // contradict the tensors on purpose (shapes_follow_config = false).
  if (opt.shapes_follow_config) {
    hidden = text["hidden_size"];
    inter = text["intermediate_size"];
    heads = text["num_attention_heads"];
    kv = text["num_key_value_heads"];
    hd = text["head_dim"];
    ghd = text["global_head_dim"];
    vocab = text["vocab_size"];
  }
  nlohmann::json config;
  if (opt.layout == "unified") {
    config = {{"architectures", {"Gemma4UnifiedForConditionalGeneration"}},
              {"model_type", "gemma4_unified"},
              {"text_config", text},
              {"tie_word_embeddings", true}};
  } else {
    config = text;
    config["architectures"] = {"Gemma4ForCausalLM"};
  }
  write_file_atomic(dir / "config.json", config.dump(2));

  SafetensorsWriter w;
  TensorMaker m(opt, w);
  const std::string p = opt.layout == "unified" ? "model.language_model." : "model.";
  m.add(p + "embed_tokens.weight", {vocab, hidden}, 0.0f, 1.0f);
  m.add(p + "norm.weight", {hidden}, 1.0f, 0.3f);
  const int n_layers = text["num_hidden_layers"].get<int>();
  for (int l = 0; l < n_layers; ++l) {
    const bool global = text["layer_types"][l] == "full_attention";
    const int D = global ? ghd : hd, H = global ? 1 : kv;
    const std::string lp = p + "layers." + std::to_string(l) + ".";
    for (const char* n : {"input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                          "post_feedforward_layernorm"})
      m.add(lp + n + ".weight", {hidden}, 1.0f, 0.3f);
    m.add(lp + "self_attn.q_proj.weight", {heads * D, hidden}, 0.0f, 0.2f);
    m.add(lp + "self_attn.k_proj.weight", {H * D, hidden}, 0.0f, 0.2f);
    if (!global) m.add(lp + "self_attn.v_proj.weight", {H * D, hidden}, 0.0f, 0.2f);
    m.add(lp + "self_attn.o_proj.weight", {hidden, heads * D}, 0.0f, 0.2f);
    m.add(lp + "self_attn.q_norm.weight", {D}, 1.0f, 0.3f);
    m.add(lp + "self_attn.k_norm.weight", {D}, 1.0f, 0.3f);
    m.add(lp + "mlp.gate_proj.weight", {inter, hidden}, 0.0f, 0.2f);
    m.add(lp + "mlp.up_proj.weight", {inter, hidden}, 0.0f, 0.2f);
    m.add(lp + "mlp.down_proj.weight", {hidden, inter}, 0.0f, 0.2f);
    m.add(lp + "layer_scalar", {1}, 0.7f, 0.1f);
  }
  if (opt.add_vision) {
    m.add("model.embed_vision.patch_dense.weight", {hidden, 48}, 0.0f, 0.1f);
    m.add("model.embed_vision.multimodal_embedder.embedding_projection.weight", {hidden, hidden}, 0.0f, 0.1f);
    m.add("model.vision_embedder.pos_embedding", {4, 2, hidden}, 0.0f, 0.1f);
    m.add("model.embed_audio.embedding_projection.weight", {hidden, 8}, 0.0f, 0.1f);
  }
  for (const auto& [name, shape] : opt.extra) m.add(name, shape, 0.0f, 0.1f);
  w.write(dir / "model.safetensors");
  return dir;
}

}  // namespace quench::test
