// Tests for io/quant_config: both metadata layouts of nvfp4-modelopt-format.md §6.1/§6.2,
// MIXED_PRECISION (§6.4), exclusion rules (§6.3) and glob_match against Python's fnmatch.
#include "io/quant_config.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "io/test_util.h"

namespace quench {
namespace {

using json = nlohmann::json;
using testing::TempDir;
using testing::write_bytes;

TEST(GlobMatch, AgreesWithPythonFnmatch) {
  struct Case {
    const char* pattern;
    const char* text;
    bool match;
  };
  // Expected values from Python 3.11 fnmatch.fnmatchcase(text, pattern).
  const Case cases[] = {
      {"lm_head", "lm_head", true},
      {"model.layers.0.self_attn*", "model.layers.0.self_attn.q_proj", true},
      {"model.layers.0.self_attn*", "model.layers.0.self_attn", true},
      {"model.layers.0.self_attn*", "model.layers.10.self_attn.q_proj", false},
      {"*mlp*", "model.language_model.layers.3.mlp.down_proj", true},
      {"*mlp*", "model.language_model.layers.3.self_attn.o_proj", false},
      {"*.experts.*", "model.layers.1.mlp.experts.7.gate_proj", true},
      {"model.layers.?.mlp", "model.layers.3.mlp", true},
      {"model.layers.?.mlp", "model.layers.13.mlp", false},
      {"model.layers.[0-2].mlp*", "model.layers.2.mlp.up_proj", true},
      {"model.layers.[0-2].mlp*", "model.layers.3.mlp.up_proj", false},
      {"model.layers.[!0-2].mlp*", "model.layers.3.mlp.up_proj", true},
      {"model.layers.[!0-2].mlp*", "model.layers.1.mlp.up_proj", false},
      {"*", "anything.at.all", true},
      {"*", "", true},
      {"a*b*c", "axxbyyc", true},
      {"a*b*c", "axxbyy", false},
      {"*self_attn*", "model.layers.0.self_attn.k_proj", true},
      {"Lm_head", "lm_head", false},
      {"model.layers.1[", "model.layers.1[", true},
      {"**.q_proj", "x.q_proj", true},
      {"*.q_proj", "q_proj", false},
      {"[]]x", "]x", true},
      {"[a-]x", "-x", true},
      {"[^a]x", "^x", true},
      {"[^a]x", "bx", false},
      {"[^a]x", "ax", true},
  };
  for (const auto& c : cases) EXPECT_EQ(glob_match(c.pattern, c.text), c.match) << c.pattern << " vs " << c.text;
}

TEST(QuantConfig, UnquantizedWhenNoMetadata) {
  TempDir dir;
  const QuantConfig q = QuantConfig::load(dir.path(), json{{"model_type", "gemma4_unified"}});
  EXPECT_EQ(q.quant_algo, "");
  EXPECT_EQ(q.quant_method, "");
  EXPECT_EQ(q.format_of("model.language_model.layers.0.mlp.down_proj"), WeightFormat::kBF16);
}

// config.json quantization_config as ModelOpt's convert_hf_quant_config_format writes it (§6.2).
json nvfp4_config_json() {
  return json::parse(R"({
    "model_type": "gemma4_unified",
    "quantization_config": {
      "config_groups": {"group_0": {
         "input_activations": {"dynamic": false, "num_bits": 4, "type": "float", "group_size": 16},
         "weights": {"dynamic": false, "num_bits": 4, "type": "float", "group_size": 16},
         "targets": ["Linear"]}},
      "ignore": ["lm_head", "model.language_model.layers.0.self_attn*", "model.language_model.layers.1.self_attn.q_proj",
                 "model.vision_embedder*"],
      "quant_algo": "NVFP4",
      "kv_cache_scheme": {"dynamic": false, "num_bits": 8, "type": "float"},
      "producer": {"name": "modelopt", "version": "0.45.0"},
      "quant_method": "modelopt"}})");
}

TEST(QuantConfig, ConfigJsonNvfp4WithIgnoreAndKvScheme) {
  TempDir dir;
  const QuantConfig q = QuantConfig::load(dir.path(), nvfp4_config_json());
  EXPECT_EQ(q.quant_method, "modelopt");
  EXPECT_EQ(q.quant_algo, "NVFP4");
  EXPECT_EQ(q.kv_cache_quant_algo, "FP8");
  EXPECT_EQ(q.group_size, 16);
  EXPECT_EQ(q.exclude_modules.size(), 4u);
  EXPECT_EQ(q.format_of("model.language_model.layers.0.mlp.down_proj"), WeightFormat::kNVFP4);
  EXPECT_EQ(q.format_of("model.language_model.layers.0.self_attn.q_proj"), WeightFormat::kBF16);
  EXPECT_EQ(q.format_of("model.language_model.layers.1.self_attn.q_proj"), WeightFormat::kBF16);
  EXPECT_EQ(q.format_of("model.language_model.layers.1.self_attn.k_proj"), WeightFormat::kNVFP4);
  EXPECT_EQ(q.format_of("model.language_model.layers.10.self_attn.q_proj"), WeightFormat::kNVFP4);
  EXPECT_EQ(q.format_of("lm_head"), WeightFormat::kBF16);
  EXPECT_EQ(q.format_of("model.vision_embedder.patch_dense"), WeightFormat::kBF16);
  // The same module named without the "model.language_model." prefix.
  EXPECT_EQ(q.format_of("layers.0.self_attn.o_proj"), WeightFormat::kBF16);
}

TEST(QuantConfig, ExcludeNamesWithoutLanguageModelPrefix) {
  // Old exporters wrote "model.layers.N..." names; they must still match the HF module names.
  TempDir dir;
  json c = nvfp4_config_json();
  c["quantization_config"]["ignore"] = {"model.layers.2.mlp*"};
  const QuantConfig q = QuantConfig::load(dir.path(), c);
  EXPECT_EQ(q.format_of("model.language_model.layers.2.mlp.up_proj"), WeightFormat::kBF16);
  EXPECT_EQ(q.format_of("model.language_model.layers.3.mlp.up_proj"), WeightFormat::kNVFP4);
}

TEST(QuantConfig, HfQuantConfigJson) {
  TempDir dir;
  write_bytes(dir / "hf_quant_config.json", R"({
    "producer": {"name": "modelopt", "version": "0.45.0"},
    "quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": null,
                     "exclude_modules": ["lm_head", "model.language_model.layers.*.self_attn*"]}})");
  const QuantConfig q = QuantConfig::load(dir.path(), json{{"model_type", "gemma4_unified"}});
  EXPECT_EQ(q.quant_method, "modelopt");
  EXPECT_EQ(q.quant_algo, "FP8");
  EXPECT_EQ(q.kv_cache_quant_algo, "");
  EXPECT_EQ(q.format_of("model.language_model.layers.7.self_attn.v_proj"), WeightFormat::kBF16);
  EXPECT_EQ(q.format_of("model.language_model.layers.7.mlp.gate_proj"), WeightFormat::kFP8);
}

TEST(QuantConfig, ConfigJsonTakesPrecedenceOverHfQuantConfig) {
  TempDir dir;
  write_bytes(dir / "hf_quant_config.json", R"({"quantization": {"quant_algo": "FP8"}})");
  EXPECT_EQ(QuantConfig::load(dir.path(), nvfp4_config_json()).quant_algo, "NVFP4");
}

TEST(QuantConfig, MixedPrecisionQuantizedLayers) {
  TempDir dir;
  write_bytes(dir / "hf_quant_config.json", R"({
    "producer": {"name": "modelopt", "version": "0.45.0"},
    "quantization": {"quant_algo": "MIXED_PRECISION", "kv_cache_quant_algo": "FP8",
      "quantized_layers": {
        "model.language_model.layers.0.self_attn.q_proj": {"quant_algo": "FP8"},
        "model.language_model.layers.0.mlp.down_proj": {"quant_algo": "NVFP4", "group_size": 16},
        "model.layers.1.mlp.up_proj": {"quant_algo": "W4A16_NVFP4", "group_size": 16}}}})");
  const QuantConfig q = QuantConfig::load(dir.path(), json::object());
  EXPECT_EQ(q.quant_algo, "MIXED_PRECISION");
  EXPECT_EQ(q.kv_cache_quant_algo, "FP8");
  EXPECT_EQ(q.quantized_layers.size(), 3u);
  EXPECT_EQ(q.format_of("model.language_model.layers.0.self_attn.q_proj"), WeightFormat::kFP8);
  EXPECT_EQ(q.format_of("model.language_model.layers.0.mlp.down_proj"), WeightFormat::kNVFP4);
  EXPECT_EQ(q.format_of("model.language_model.layers.1.mlp.up_proj"), WeightFormat::kNVFP4);
  EXPECT_EQ(q.format_of("model.language_model.layers.0.mlp.up_proj"), WeightFormat::kBF16);  // unlisted

  // The config.json form carries a copy of quantized_layers and "ignore": [].
  json c = {{"quantization_config",
             {{"quant_method", "modelopt"}, {"quant_algo", "MIXED_PRECISION"}, {"ignore", json::array()},
              {"quantized_layers", {{"model.language_model.layers.3.mlp.gate_proj", {{"quant_algo", "FP8"}}}}}}}};
  const QuantConfig q2 = QuantConfig::load(dir.path(), c);
  EXPECT_EQ(q2.format_of("model.language_model.layers.3.mlp.gate_proj"), WeightFormat::kFP8);
}

void expect_error(const std::filesystem::path& dir, const json& cfg, bool unsupported,
                  std::initializer_list<std::string> needles) {
  try {
    QuantConfig::load(dir, cfg);
    ADD_FAILURE() << "no error for " << cfg.dump();
  } catch (const UnsupportedError& e) {
    EXPECT_TRUE(unsupported) << e.what();
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  } catch (const FormatError& e) {
    EXPECT_FALSE(unsupported) << e.what();
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}

TEST(QuantConfig, RejectionsNameFileAndKey) {
  TempDir dir;
  auto with = [](json patch) {
    json c = nvfp4_config_json();
    c["quantization_config"].merge_patch(patch);
    return c;
  };
  expect_error(dir.path(), with({{"quant_method", "gptq"}}), true, {"config.json", "quant_method", "'gptq'"});
  expect_error(dir.path(), with({{"quant_algo", "W4A8_AWQ"}}), true, {"quant_algo", "'W4A8_AWQ'"});
  expect_error(dir.path(), with({{"group_size", 32}}), true, {"group_size", "32"});
  expect_error(dir.path(), with({{"kv_cache_scheme", {{"type", "int"}, {"num_bits", 8}}}}), true, {"kv_cache_scheme"});
  expect_error(dir.path(), with({{"ignore", "lm_head"}}), false, {"ignore"});
  expect_error(dir.path(), with({{"nvfp4_embed", true}}), true, {"nvfp4_embed"});
  EXPECT_NO_THROW(QuantConfig::load(dir.path(), with({{"nvfp4_embed", false}})));
  expect_error(dir.path(), with({{"quant_algo", "MIXED_PRECISION"}}), false, {"quantized_layers"});
  expect_error(dir.path(),
               with({{"quant_algo", "MIXED_PRECISION"}, {"quantized_layers", {{"m.q_proj", {{"quant_algo", "INT8"}}}}}}),
               true, {"quantized_layers.m.q_proj", "'INT8'"});
  write_bytes(dir / "hf_quant_config.json", R"({"quantization": [1]})");
  expect_error(dir.path(), json::object(), false, {"hf_quant_config.json", "quantization"});
  write_bytes(dir / "hf_quant_config.json", R"({"quantization": {"quant_algo": "NVFP4", "kv_cache_quant_algo": "NVFP4"}})");
  expect_error(dir.path(), json::object(), true, {"hf_quant_config.json", "kv_cache_quant_algo"});
  write_bytes(dir / "hf_quant_config.json", "{not json");
  expect_error(dir.path(), json::object(), false, {"hf_quant_config.json"});
}

TEST(QuantConfig, WeightFormatNames) {
  EXPECT_EQ(weight_format_name(WeightFormat::kBF16), "BF16");
  EXPECT_EQ(weight_format_name(WeightFormat::kFP8), "FP8");
  EXPECT_EQ(weight_format_name(WeightFormat::kNVFP4), "NVFP4");
}

}  // namespace
}  // namespace quench
