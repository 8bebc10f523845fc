// quench/quant/synth.cpp: see synth.h.
#include "quant/synth.h"

#include <cmath>

#include <fmt/format.h>

#include "core/numeric.h"        // f32_to_bf16
#include "io/model_config.h"     // ModelConfig
#include "io/safetensors.h"      // write_file_atomic
#include "quant/shard_writer.h"  // ShardedSafetensorsWriter

namespace quench {

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t hash_name(const std::string& s) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

/// Uniform (0, 1) from 64 random bits.
double unit(uint64_t bits) { return (static_cast<double>(bits >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

/// Approximately standard normal from counter `i` of stream `key`: Irwin-Hall sum of four
/// 16-bit uniforms of one hash (mean 2, variance 1/3), centred and scaled to unit variance;
/// bounded by +-3.46. One hash per value keeps synthesis of a 12B checkpoint I/O-bound.
float normal(uint64_t key, uint64_t i) {
  const uint64_t h = splitmix64(key + i * 0x9E3779B97F4A7C15ull);
  const float s = static_cast<float>((h & 0xFFFF) + ((h >> 16) & 0xFFFF) + ((h >> 32) & 0xFFFF) + (h >> 48)) +
                  2.0f;  // + 4 * 0.5: centres of the 65536 bins
  return (s * (1.0f / 65536.0f) - 2.0f) * 1.7320508f;
}

}  // namespace

std::vector<SynthTensor> synth_inventory(const nlohmann::json& config, bool multimodal) {
  const ModelConfig c = ModelConfig::from_json(config, "config.json");
  const bool unified = config.contains("text_config");
  const std::string p = unified ? "model.language_model." : "model.";
  using I = SynthTensor::Init;
  const int64_t h = c.hidden_size, inter = c.intermediate_size;
  std::vector<SynthTensor> v;
  v.push_back({p + "embed_tokens.weight", {c.vocab_size, h}, I::kNormal});
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const LayerConfig& L = c.layers[l];
    const std::string lp = fmt::format("{}layers.{}.", p, l);
    const int64_t q = static_cast<int64_t>(L.num_heads) * L.head_dim;
    const int64_t kv = static_cast<int64_t>(L.num_kv_heads) * L.head_dim;
    for (const char* n : {"input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                          "post_feedforward_layernorm"})
      v.push_back({lp + n + ".weight", {h}, I::kNearOne});
    v.push_back({lp + "self_attn.q_proj.weight", {q, h}, I::kNormal});
    v.push_back({lp + "self_attn.k_proj.weight", {kv, h}, I::kNormal});
    if (!L.k_eq_v) v.push_back({lp + "self_attn.v_proj.weight", {kv, h}, I::kNormal});
    v.push_back({lp + "self_attn.o_proj.weight", {h, q}, I::kNormal});
    v.push_back({lp + "self_attn.q_norm.weight", {L.head_dim}, I::kNearOne});
    v.push_back({lp + "self_attn.k_norm.weight", {L.head_dim}, I::kNearOne});
    v.push_back({lp + "mlp.gate_proj.weight", {inter, h}, I::kNormal});
    v.push_back({lp + "mlp.up_proj.weight", {inter, h}, I::kNormal});
    v.push_back({lp + "mlp.down_proj.weight", {h, inter}, I::kNormal});
    v.push_back({lp + "layer_scalar", {1}, I::kLayerScalar});
  }
  v.push_back({p + "norm.weight", {h}, I::kNearOne});
  if (!c.tie_word_embeddings) v.push_back({"lm_head.weight", {c.vocab_size, h}, I::kNormal});
  if (multimodal && config.contains("vision_config") && config["vision_config"].is_object()) {
    const auto& vc = config["vision_config"];
    const int64_t mp = vc.value("model_patch_size", 48);
    const int64_t patch = mp * mp * 3;
    const int64_t d = vc.value("mm_embed_dim", h);
    const int64_t pos = vc.value("mm_posemb_size", 1120);
    const std::string e = "model.embed_vision.";
    v.push_back({e + "patch_ln1.weight", {patch}, I::kNearOne});
    v.push_back({e + "patch_ln1.bias", {patch}, I::kNormal});
    v.push_back({e + "patch_dense.weight", {d, patch}, I::kNormal});
    v.push_back({e + "patch_dense.bias", {d}, I::kNormal});
    v.push_back({e + "patch_ln2.weight", {d}, I::kNearOne});
    v.push_back({e + "patch_ln2.bias", {d}, I::kNormal});
    v.push_back({e + "pos_embedding", {pos, 2, d}, I::kNormal});
    v.push_back({e + "pos_norm.weight", {d}, I::kNearOne});
    v.push_back({e + "pos_norm.bias", {d}, I::kNormal});
    v.push_back({e + "multimodal_embedder.embedding_projection.weight", {h, d}, I::kNormal});
  }
  if (multimodal && config.contains("audio_config") && config["audio_config"].is_object()) {
    const int64_t a = config["audio_config"].value("audio_embed_dim", 640);
    v.push_back({"model.embed_audio.multimodal_embedder.embedding_projection.weight", {h, a}, I::kNormal});
  }
  return v;
}

namespace {

float value_keyed(SynthTensor::Init init, uint64_t key, float weight_std, uint64_t i) {
  switch (init) {
    case SynthTensor::Init::kNormal: return weight_std * normal(key, i);
    case SynthTensor::Init::kNearOne: return 1.0f + 0.05f * normal(key, i);
    case SynthTensor::Init::kLayerScalar: return static_cast<float>(0.75 + 0.25 * unit(splitmix64(key ^ i)));
  }
  return 0.0f;
}

uint64_t tensor_key(const SynthTensor& t, uint64_t seed) { return splitmix64(seed ^ hash_name(t.name)); }

}  // namespace

float synth_value(const SynthTensor& t, uint64_t seed, float weight_std, uint64_t i) {
  return value_keyed(t.init, tensor_key(t, seed), weight_std, i);
}

SynthReport synth_checkpoint(const nlohmann::ordered_json& config, const std::filesystem::path& out_dir,
                             const SynthOptions& o) {
  const auto inv = synth_inventory(nlohmann::json::parse(config.dump()), o.multimodal);
  std::vector<PlannedTensor> plan;
  SynthReport rep;
  for (const auto& t : inv) {
    plan.push_back({t.name, DType::kBF16, t.shape});
    rep.num_params += plan.back().nbytes() / 2;
  }
  ShardedSafetensorsWriter wr(out_dir, plan, o.max_shard_bytes);
  constexpr int64_t kChunk = 1 << 24;  // elements per chunk (32 MB of bf16)
  std::vector<uint16_t> buf;
  for (std::size_t ti = 0; ti < inv.size(); ++ti) {
    const auto& t = inv[ti];
    const int64_t n = static_cast<int64_t>(plan[ti].nbytes() / 2);
    const uint64_t key = tensor_key(t, o.seed);
    for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
      const int64_t m = std::min(kChunk, n - c0);
      buf.resize(m);
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < m; ++i) buf[i] = f32_to_bf16(value_keyed(t.init, key, o.weight_std, c0 + i));
      wr.append(t.name, buf.data(), m * 2);
    }
  }
  wr.finish();
  write_file_atomic(out_dir / "config.json", config.dump(2) + "\n");
  rep.num_tensors = inv.size();
  rep.tensor_bytes = wr.total_bytes();
  rep.num_shards = wr.num_shards();
  return rep;
}

}  // namespace quench
