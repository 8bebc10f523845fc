// Tests for io/model_config: the 12B config of gemma4-architecture.md §1.1 (committed as
// tests/data/io/gemma4-12b-config.json), the transformers 5.17 per_layer_config spelling (§10),
// transformers' defaults for absent keys, and every rejected feature by name.
#include "io/model_config.h"

#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "io/test_util.h"

namespace quench {
namespace {

using json = nlohmann::json;

const char* kConfigPath = QUENCH_SOURCE_DIR "/tests/data/io/gemma4-12b-config.json";

json load_12b() {
  std::ifstream in(kConfigPath);
  return json::parse(in);
}

// A small gemma4_unified_text config written the way transformers 5.17's save_pretrained does
// (per_layer_config with string keys, no global_* keys); `extra` is merged in.
json tiny_text(json extra = json::object()) {
  json j = {
      {"model_type", "gemma4_unified_text"},
      {"hidden_size", 64},
      {"intermediate_size", 128},
      {"num_hidden_layers", 6},
      {"num_attention_heads", 4},
      {"num_key_value_heads", 2},
      {"head_dim", 32},
      {"attention_k_eq_v", true},
      {"layer_types", {"sliding_attention", "sliding_attention", "sliding_attention", "sliding_attention",
                       "sliding_attention", "full_attention"}},
      {"sliding_window", 16},
      {"vocab_size", 512},
      {"final_logit_softcapping", 30.0},
      {"per_layer_config", {{"05", {{"head_dim", 64}, {"num_key_value_heads", 1}}}}},
  };
  j.merge_patch(extra);
  return j;
}

template <typename E>
void expect_error_naming(const json& j, std::initializer_list<std::string> needles) {
  try {
    ModelConfig::from_json(j, "cfg.json");
    ADD_FAILURE() << "no error for " << j.dump();
  } catch (const E& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("cfg.json"), std::string::npos) << m;
    for (const auto& n : needles) EXPECT_NE(m.find(n), std::string::npos) << "missing '" << n << "' in: " << m;
  } catch (const Error& e) {
    ADD_FAILURE() << "wrong error type: " << e.what();
  }
}

TEST(ModelConfig, Gemma4_12B_FromArchitectureTable) {
  const ModelConfig c = ModelConfig::from_json(load_12b());
  EXPECT_EQ(c.model_type, "gemma4_unified");
  EXPECT_EQ(c.hidden_size, 3840);
  EXPECT_EQ(c.intermediate_size, 15360);
  EXPECT_EQ(c.num_hidden_layers, 48);
  EXPECT_EQ(c.vocab_size, 262144);
  EXPECT_EQ(c.max_position_embeddings, 262144);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.final_logit_softcapping, 30.0);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.sliding_window, 1024);
  EXPECT_EQ(c.pad_token_id, 0);
  EXPECT_EQ(c.bos_token_id, 2);
  EXPECT_EQ(c.eos_token_ids, std::vector<int>{1});
  ASSERT_EQ(c.layers.size(), 48u);
  EXPECT_EQ(c.num_layers_of(LayerType::kFull), 8);
  EXPECT_EQ(c.num_layers_of(LayerType::kSliding), 40);
  for (int i = 0; i < 48; ++i) {
    const LayerConfig& L = c.layers[static_cast<std::size_t>(i)];
    const bool global = i % 6 == 5;  // 5, 11, ..., 47
    EXPECT_EQ(L.type, global ? LayerType::kFull : LayerType::kSliding) << i;
    EXPECT_EQ(L.num_heads, 16) << i;
    EXPECT_EQ(L.head_dim, global ? 512 : 256) << i;
    EXPECT_EQ(L.num_kv_heads, global ? 1 : 8) << i;
    EXPECT_EQ(L.k_eq_v, global) << i;
    EXPECT_EQ(L.sliding_window, global ? 0 : 1024) << i;
    EXPECT_EQ(L.rope.type, global ? RopeType::kProportional : RopeType::kDefault) << i;
    EXPECT_DOUBLE_EQ(L.rope.theta, global ? 1e6 : 1e4) << i;
    EXPECT_DOUBLE_EQ(L.rope.partial_rotary_factor, global ? 0.25 : 1.0) << i;
  }
  EXPECT_EQ(c.raw["text_config"]["hidden_size"], 3840);
}

TEST(ModelConfig, LoadReadsConfigJsonFromDir) {
  testing::TempDir dir;
  testing::write_bytes(dir / "config.json", load_12b().dump());
  EXPECT_EQ(ModelConfig::load(dir.path()).num_hidden_layers, 48);
  testing::TempDir empty;
  EXPECT_THROW(ModelConfig::load(empty.path()), IoError);
  testing::write_bytes(empty / "config.json", "{\"model_type\": ");
  EXPECT_THROW(ModelConfig::load(empty.path()), FormatError);
}

TEST(ModelConfig, PerLayerConfigSpellingOfTransformers517) {
  const ModelConfig c = ModelConfig::from_json(tiny_text());
  EXPECT_EQ(c.model_type, "gemma4_unified_text");
  ASSERT_EQ(c.layers.size(), 6u);
  EXPECT_EQ(c.layers[0].head_dim, 32);
  EXPECT_EQ(c.layers[0].num_kv_heads, 2);
  EXPECT_FALSE(c.layers[0].k_eq_v);
  EXPECT_EQ(c.layers[5].head_dim, 64);
  EXPECT_EQ(c.layers[5].num_kv_heads, 1);
  EXPECT_TRUE(c.layers[5].k_eq_v);
  // Unpadded key, and per_layer_config wins over global_* keys (transformers ignores them then).
  json j = tiny_text({{"global_head_dim", 128}, {"num_global_key_value_heads", 2}});
  j["per_layer_config"] = {{"5", {{"head_dim", 48}}}};
  const ModelConfig c2 = ModelConfig::from_json(j);
  EXPECT_EQ(c2.layers[5].head_dim, 48);
  EXPECT_EQ(c2.layers[5].num_kv_heads, 2);  // not overridden: keeps num_key_value_heads
}

TEST(ModelConfig, GlobalKeysSpellingAndKEqVGate) {
  json j = tiny_text({{"global_head_dim", 64}, {"num_global_key_value_heads", 1}});
  j.erase("per_layer_config");
  ModelConfig c = ModelConfig::from_json(j);
  EXPECT_EQ(c.layers[5].head_dim, 64);
  EXPECT_EQ(c.layers[5].num_kv_heads, 1);
  // transformers applies num_global_key_value_heads only when attention_k_eq_v is true.
  j["attention_k_eq_v"] = false;
  c = ModelConfig::from_json(j);
  EXPECT_EQ(c.layers[5].head_dim, 64);
  EXPECT_EQ(c.layers[5].num_kv_heads, 2);
  EXPECT_FALSE(c.layers[5].k_eq_v);
  // No global_head_dim: transformers' default 512.
  j.erase("global_head_dim");
  c = ModelConfig::from_json(j);
  EXPECT_EQ(c.layers[5].head_dim, 512);
}

TEST(ModelConfig, DefaultsOfGemma4UnifiedText) {
  // Only model_type: Gemma4UnifiedTextConfig's dataclass defaults and __post_init__.
  const ModelConfig c = ModelConfig::from_json({{"model_type", "gemma4_unified_text"}});
  EXPECT_EQ(c.hidden_size, 2304);
  EXPECT_EQ(c.intermediate_size, 9216);
  EXPECT_EQ(c.num_hidden_layers, 30);
  EXPECT_EQ(c.vocab_size, 262144);
  EXPECT_EQ(c.max_position_embeddings, 262144);
  EXPECT_EQ(c.sliding_window, 1024);
  EXPECT_DOUBLE_EQ(c.final_logit_softcapping, 0.0);
  EXPECT_EQ(c.eos_token_ids, std::vector<int>{1});
  ASSERT_EQ(c.layers.size(), 30u);
  for (int i = 0; i < 30; ++i) {
    const auto& L = c.layers[static_cast<std::size_t>(i)];
    const bool full = (i + 1) % 6 == 0;
    EXPECT_EQ(L.type, full ? LayerType::kFull : LayerType::kSliding) << i;
    EXPECT_EQ(L.num_heads, 8);
    EXPECT_EQ(L.head_dim, full ? 512 : 256);
    EXPECT_EQ(L.num_kv_heads, 4);
    EXPECT_EQ(L.rope.type, full ? RopeType::kProportional : RopeType::kDefault);
    EXPECT_DOUBLE_EQ(L.rope.theta, full ? 1e6 : 1e4);
    EXPECT_DOUBLE_EQ(L.rope.partial_rotary_factor, full ? 0.25 : 1.0);
  }
}

TEST(ModelConfig, LastLayerForcedToFullAsTransformersDoes) {
  json j = tiny_text();
  j["layer_types"][5] = "sliding_attention";
  j.erase("per_layer_config");
  const ModelConfig c = ModelConfig::from_json(j);
  EXPECT_EQ(c.layers[5].type, LayerType::kFull);
}

TEST(ModelConfig, CompositeEosListAndTextModelType) {
  json j = {{"model_type", "gemma4_unified"}, {"eos_token_id", {1, 106}}, {"text_config", tiny_text()}};
  const ModelConfig c = ModelConfig::from_json(j);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int>{1, 106}));
  EXPECT_EQ(c.model_type, "gemma4_unified");
}

TEST(ModelConfig, RejectsUnsupportedFeaturesByName) {
  expect_error_naming<UnsupportedError>(tiny_text({{"hidden_size_per_layer_input", 256}}),
                                        {"hidden_size_per_layer_input", "per-layer embeddings"});
  expect_error_naming<UnsupportedError>(tiny_text({{"num_kv_shared_layers", 2}}), {"num_kv_shared_layers"});
  expect_error_naming<UnsupportedError>(tiny_text({{"enable_moe_block", true}}), {"enable_moe_block"});
  expect_error_naming<UnsupportedError>(tiny_text({{"num_experts", 8}}), {"num_experts"});
  expect_error_naming<UnsupportedError>(tiny_text({{"use_double_wide_mlp", true}}), {"use_double_wide_mlp"});
  expect_error_naming<UnsupportedError>(tiny_text({{"attn_logit_softcapping", 50.0}}), {"attn_logit_softcapping"});
  expect_error_naming<UnsupportedError>(tiny_text({{"hidden_activation", "gelu"}}), {"hidden_activation", "'gelu'"});
  expect_error_naming<UnsupportedError>(
      tiny_text({{"rope_parameters", {{"sliding_attention", {{"rope_type", "yarn"}, {"rope_theta", 1e4}}},
                                      {"full_attention", {{"rope_type", "default"}, {"rope_theta", 1e6}}}}}}),
      {"rope_parameters.sliding_attention.rope_type", "'yarn'"});
  json bad_type = tiny_text();
  bad_type["layer_types"][2] = "chunked_attention";
  expect_error_naming<UnsupportedError>(bad_type, {"layer_types[2]", "chunked_attention"});
  expect_error_naming<UnsupportedError>(tiny_text({{"use_bidirectional_attention", "all"}}),
                                        {"use_bidirectional_attention"});
  expect_error_naming<UnsupportedError>(json{{"model_type", "llama"}}, {"model_type", "'llama'"});
  // Composite config: the key path includes text_config.
  json comp = {{"model_type", "gemma4_unified"}, {"text_config", tiny_text({{"num_kv_shared_layers", 1}})}};
  expect_error_naming<UnsupportedError>(comp, {"text_config.num_kv_shared_layers"});
  // gemma4_text defaults to PLE on (hidden_size_per_layer_input = 256) when the key is absent.
  json t = tiny_text({{"model_type", "gemma4_text"}});
  expect_error_naming<UnsupportedError>(t, {"hidden_size_per_layer_input", "default"});
  t["hidden_size_per_layer_input"] = 0;
  EXPECT_NO_THROW(ModelConfig::from_json(t));
  // Null means absent (the 12B file has "num_experts": null and "attn_logit_softcapping" absent).
  EXPECT_NO_THROW(ModelConfig::from_json(tiny_text({{"attn_logit_softcapping", nullptr}})));
}

TEST(ModelConfig, MalformedValuesAreFormatErrorsNamingTheKey) {
  expect_error_naming<FormatError>(tiny_text({{"hidden_size", "64"}}), {"hidden_size", "integer"});
  expect_error_naming<FormatError>(tiny_text({{"hidden_size", 0}}), {"hidden_size", "> 0"});
  expect_error_naming<FormatError>(tiny_text({{"rms_norm_eps", "x"}}), {"rms_norm_eps"});
  expect_error_naming<FormatError>(tiny_text({{"eos_token_id", {1, -5}}}), {"eos_token_id", "out of range"});
  expect_error_naming<FormatError>(tiny_text({{"eos_token_id", "1"}}), {"eos_token_id"});
  expect_error_naming<FormatError>(tiny_text({{"attention_k_eq_v", 1}}), {"attention_k_eq_v"});
  expect_error_naming<FormatError>(tiny_text({{"layer_types", {"sliding_attention"}}}), {"layer_types", "1 entries"});
  expect_error_naming<FormatError>(tiny_text({{"num_key_value_heads", 3}}), {"not a multiple"});
  expect_error_naming<FormatError>(tiny_text({{"per_layer_config", {{"x5", {{"head_dim", 8}}}}}}),
                                   {"per_layer_config", "x5"});
  expect_error_naming<FormatError>(tiny_text({{"per_layer_config", {{"6", {{"head_dim", 8}}}}}}),
                                   {"per_layer_config", "out of range"});
  expect_error_naming<UnsupportedError>(tiny_text({{"per_layer_config", {{"5", {{"sliding_window", 8}}}}}}),
                                        {"per_layer_config.5.sliding_window"});
  expect_error_naming<FormatError>(tiny_text({{"rope_parameters", {{"sliding_attention", {{"rope_theta", 1e4}}}}}}),
                                   {"rope_parameters.full_attention", "missing"});
  expect_error_naming<FormatError>(json{{"model_type", "gemma4_unified"}}, {"text_config"});
  expect_error_naming<FormatError>(json::array(), {"object"});
}

TEST(ModelConfig, RopeParametersVariants) {
  // Proportional with partial_rotary_factor; theta from each entry.
  json j = tiny_text({{"rope_parameters",
                       {{"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 5000.0}}},
                        {"full_attention", {{"rope_type", "proportional"}, {"partial_rotary_factor", 0.5},
                                            {"rope_theta", 2e6}}}}}});
  ModelConfig c = ModelConfig::from_json(j);
  EXPECT_DOUBLE_EQ(c.layers[0].rope.theta, 5000.0);
  EXPECT_EQ(c.layers[5].rope.type, RopeType::kProportional);
  EXPECT_DOUBLE_EQ(c.layers[5].rope.partial_rotary_factor, 0.5);
  EXPECT_DOUBLE_EQ(c.layers[5].rope.theta, 2e6);
  // Proportional without partial_rotary_factor rotates everything (transformers' default 1.0).
  j["rope_parameters"]["full_attention"].erase("partial_rotary_factor");
  c = ModelConfig::from_json(j);
  EXPECT_DOUBLE_EQ(c.layers[5].rope.partial_rotary_factor, 1.0);
  // Partial rotation is only defined for proportional.
  j["rope_parameters"]["sliding_attention"]["partial_rotary_factor"] = 0.5;
  EXPECT_THROW(ModelConfig::from_json(j), UnsupportedError);
}

}  // namespace
}  // namespace quench
