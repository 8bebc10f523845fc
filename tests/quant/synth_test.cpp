// Tests of src/quant/synth.cpp: the 12B inventory reproduces the parameter count Hugging Face
// reports for google/gemma-4-12B (11,959,730,224; ../shared/reference/gemma4-architecture.md §3),
// values are deterministic and neither zero nor constant, and a synthetic checkpoint loads.
#include "quant/synth.h"

#include <cmath>
#include <set>

#include <gtest/gtest.h>

#include "io/safetensors.h"
#include "io/text_file.h"
#include "model/model.h"
#include "quant/tiny_checkpoint.h"

namespace quench {
namespace {

TEST(Synth, TwelveBInventoryMatchesPublishedParameterCount) {
  const auto config = read_json_file(QUENCH_SOURCE_DIR "/tests/data/io/gemma4-12b-config.json");
  const auto inv = synth_inventory(config, /*multimodal=*/true);
  uint64_t params = 0, text = 0;
  std::set<std::string> names;
  for (const auto& t : inv) {
    uint64_t n = 1;
    for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
    params += n;
    if (t.name.starts_with("model.language_model.")) text += n;
    names.insert(t.name);
  }
  EXPECT_EQ(params, 11959730224ull);
  EXPECT_EQ(text, 11907350320ull);
  EXPECT_EQ(inv.size(), 677u);  // 666 text + 11 multimodal
  EXPECT_EQ(names.size(), inv.size());
  EXPECT_TRUE(names.count("model.language_model.layers.4.self_attn.v_proj.weight"));
  EXPECT_FALSE(names.count("model.language_model.layers.5.self_attn.v_proj.weight"));  // k_eq_v global layer
}

TEST(Synth, ValuesAreDeterministicVariedAndScaled) {
  SynthTensor w{"model.language_model.layers.0.mlp.up_proj.weight", {4096}, SynthTensor::Init::kNormal};
  SynthTensor n{"model.language_model.norm.weight", {4096}, SynthTensor::Init::kNearOne};
  SynthTensor s{"model.language_model.layers.0.layer_scalar", {1}, SynthTensor::Init::kLayerScalar};
  double sum = 0, sq = 0;
  std::set<float> distinct;
  const int N = 100000;
  for (int i = 0; i < N; ++i) {
    const float v = synth_value(w, 3, 0.02f, i);
    EXPECT_EQ(v, synth_value(w, 3, 0.02f, i));
    sum += v;
    sq += double(v) * v;
    distinct.insert(v);
  }
  EXPECT_NEAR(sum / N, 0.0, 0.001);
  EXPECT_NEAR(std::sqrt(sq / N), 0.02, 0.001);
  EXPECT_GT(distinct.size(), 10000u);
  EXPECT_NE(synth_value(w, 3, 0.02f, 0), synth_value(w, 4, 0.02f, 0));  // seed matters
  for (int i = 0; i < 100; ++i) EXPECT_NEAR(synth_value(n, 0, 0.02f, i), 1.0f, 0.2f);
  const float ls = synth_value(s, 0, 0.02f, 0);
  EXPECT_GE(ls, 0.75f);
  EXPECT_LE(ls, 1.0f);
}

TEST(Synth, TinyCheckpointLoadsWithShardsAndIndex) {
  test::ScratchDir dir("synth");
  SynthOptions o;
  o.max_shard_bytes = 30000;
  const SynthReport r = synth_checkpoint(test::tiny_config(), dir.path, o);
  EXPECT_GT(r.num_shards, 1u);
  EXPECT_TRUE(std::filesystem::exists(dir.path / "model.safetensors.index.json"));
  auto m = Model::load(dir.path);
  EXPECT_EQ(m->weights().layers.size(), 2u);
  EXPECT_FALSE(m->weights().layers[1].v_proj.has_value());
  EXPECT_EQ(m->weights().skipped.size(), 11u);  // vision + audio tensors
}

}  // namespace
}  // namespace quench
