// tests/model/weights_test.cpp: ModelWeights::bind on random tiny checkpoints: both key layouts,
// skipped vision/audio tensors, tied LM head, k_eq_v layers, and typed errors naming the tensor.
#include <gtest/gtest.h>
#include <gmock/gmock.h>

#include "core/error.h"
#include "model/model.h"
#include "model/tiny_checkpoint.h"

namespace quench {
namespace {

using test::TinyOptions;
using ::testing::HasSubstr;

std::string load_error(const TinyOptions& opt, const std::string& tag) {
  test::TempDir tmp(tag);
  const auto dir = test::write_tiny_checkpoint(tmp, opt);
  try {
    Model::load(dir);
  } catch (const FormatError& e) {
    return e.what();
  }
  return "<no FormatError>";
}

TEST(ModelWeights, BindsUnifiedLayout) {
  test::TempDir tmp("unified");
  const auto dir = test::write_tiny_checkpoint(tmp);
  auto model = Model::load(dir);
  const ModelWeights& w = model->weights();
  EXPECT_EQ(w.prefix, "model.language_model.");
  ASSERT_EQ(w.layers.size(), size_t(test::kTinyLayers));
  for (int l = 0; l < 3; ++l) {
    ASSERT_TRUE(w.layers[l].v_proj.has_value()) << l;
    EXPECT_EQ(w.layers[l].q_proj.out_features, 4 * 16);
    EXPECT_EQ(w.layers[l].k_proj.out_features, 2 * 16);
  }
  EXPECT_FALSE(w.layers[3].v_proj.has_value());  // global layer, k_eq_v
  EXPECT_EQ(w.layers[3].q_proj.out_features, 4 * 32);
  EXPECT_EQ(w.layers[3].k_proj.out_features, 32);
  EXPECT_EQ(w.layers[3].o_proj.in_features, 4 * 32);
  EXPECT_EQ(w.layers[3].q_norm.shape, (std::vector<int64_t>{32}));
  EXPECT_EQ(w.layers[2].down_proj.name, "model.language_model.layers.2.mlp.down_proj");
  EXPECT_TRUE(w.tied_lm_head);
  EXPECT_EQ(w.lm_head.weight.data, w.embed_tokens.data);
  EXPECT_EQ(w.skipped.size(), 4u);
  // layer_scalar is read from the file (random around 0.7), not defaulted to 1.
  for (const auto& lw : w.layers) EXPECT_NE(lw.layer_scalar, 1.0f);
  EXPECT_EQ(w.layers[0].layer_scalar, model->checkpoint().get("model.language_model.layers.0.layer_scalar").get_f32(0));
  EXPECT_FALSE(w.layers[0].k_scale.has_value());
}

TEST(ModelWeights, BindsTextLayoutAndSkipsVisionUnderModelPrefix) {
  TinyOptions opt;
  opt.layout = "text";
  test::TempDir tmp("text");
  const auto dir = test::write_tiny_checkpoint(tmp, opt);
  auto model = Model::load(dir);
  EXPECT_EQ(model->weights().prefix, "model.");
  EXPECT_EQ(model->weights().skipped.size(), 4u);
  EXPECT_EQ(model->weights().layers[1].gate_proj.name, "model.layers.1.mlp.gate_proj");
}

TEST(ModelWeights, ShapeMismatchNamesTensorAndBothShapes) {
  TinyOptions opt;
  opt.edit_config = [](nlohmann::json& t) { t["intermediate_size"] = 48; };
  const std::string msg = load_error(opt, "shape");
  EXPECT_THAT(msg, HasSubstr("model.language_model.layers.0.mlp.gate_proj.weight"));
  EXPECT_THAT(msg, HasSubstr("[48, 32]"));
  EXPECT_THAT(msg, HasSubstr("[64, 32]"));
}

TEST(ModelWeights, MissingLayerScalarIsAnError) {
  TinyOptions opt;
  opt.keep = [](const std::string& n) { return n != "model.language_model.layers.2.layer_scalar"; };
  EXPECT_THAT(load_error(opt, "scalar"), HasSubstr("model.language_model.layers.2.layer_scalar"));
}

TEST(ModelWeights, VProjOnKEqVLayerIsAnError) {
  TinyOptions opt;
  opt.extra = {{"model.language_model.layers.3.self_attn.v_proj.weight", {32, 32}}};
  const std::string msg = load_error(opt, "keqv");
  EXPECT_THAT(msg, HasSubstr("layers.3.self_attn.v_proj.weight"));
  EXPECT_THAT(msg, HasSubstr("k_eq_v"));
}

TEST(ModelWeights, GlobalLayerWithoutKEqVNeedsVProj) {
  TinyOptions opt;
  opt.edit_config = [](nlohmann::json& t) { t["attention_k_eq_v"] = false; t["num_global_key_value_heads"] = 1; };
  // Without k_eq_v the global layer keeps num_key_value_heads (2) and needs its own v_proj.
  const std::string msg = load_error(opt, "nokeqv");
  EXPECT_THAT(msg, HasSubstr("model.language_model.layers.3.self_attn.k_proj.weight"));
}

TEST(ModelWeights, UnknownTextTensorIsAnError) {
  TinyOptions opt;
  opt.extra = {{"model.language_model.layers.0.self_attn.q_proj.bias", {64}}};
  EXPECT_THAT(load_error(opt, "unknown"), HasSubstr("layers.0.self_attn.q_proj.bias"));
}

TEST(ModelWeights, KvScalesAreRead) {
  TinyOptions opt;
  opt.extra = {{"model.language_model.layers.1.self_attn.k_proj.k_scale", {}},
               {"model.language_model.layers.1.self_attn.v_proj.v_scale", {}}};
  test::TempDir tmp("kvscale");
  const auto dir = test::write_tiny_checkpoint(tmp, opt);
  auto model = Model::load(dir);
  EXPECT_TRUE(model->weights().layers[1].k_scale.has_value());
  EXPECT_TRUE(model->weights().layers[1].v_scale.has_value());
  EXPECT_FALSE(model->weights().layers[0].k_scale.has_value());
}

}  // namespace
}  // namespace quench
