// io against checkpoints written by an independent implementation: the tiny gemma4_unified
// checkpoints that transformers 5.17 save_pretrained wrote (tests/data/golden/, see its README):
// safetensors written by the `safetensors` library, config.json in both per-layer spellings.
#include <gtest/gtest.h>

#include "io/inspect.h"
#include "io/model_config.h"
#include "io/safetensors.h"

namespace quench {
namespace {

namespace fs = std::filesystem;
const fs::path kGolden = fs::path(QUENCH_SOURCE_DIR) / "tests/data/golden";

TEST(GoldenCheckpoint, ReadsTransformersSafetensors) {
  const Checkpoint ck = Checkpoint::open(kGolden / "tiny-fp32");
  // 12 layers x (7 linears - v_proj on the 2 full layers) = 82 linears, plus norms, scalars,
  // embeddings and 10 vision tensors: 178 tensors (counted from the header with Python's json).
  EXPECT_EQ(ck.names().size(), 178u);
  const auto& emb = ck.get("model.language_model.embed_tokens.weight");
  EXPECT_EQ(emb.dtype, DType::kF32);
  EXPECT_EQ(emb.shape, (std::vector<int64_t>{512, 48}));
  EXPECT_EQ(ck.get("model.language_model.layers.5.self_attn.q_proj.weight").shape, (std::vector<int64_t>{256, 48}));
  EXPECT_EQ(ck.get("model.language_model.layers.5.self_attn.k_proj.weight").shape, (std::vector<int64_t>{64, 48}));
  EXPECT_FALSE(ck.has("model.language_model.layers.5.self_attn.v_proj.weight"));
  EXPECT_TRUE(ck.has("model.language_model.layers.4.self_attn.v_proj.weight"));
  EXPECT_EQ(ck.get("model.language_model.layers.0.layer_scalar").shape, (std::vector<int64_t>{1}));
  const Checkpoint bf = Checkpoint::open(kGolden / "tiny-bf16");
  EXPECT_EQ(bf.total_bytes() * 2, ck.total_bytes());
  EXPECT_EQ(bf.get("model.language_model.norm.weight").dtype, DType::kBF16);

  const auto ref = SafetensorsFile::open(kGolden / "tiny-fp32/reference.safetensors");
  const auto& plen = ref->tensors().at("decode_prefix_len");
  EXPECT_EQ(plen.dtype, DType::kI64);
  EXPECT_TRUE(plen.shape.empty());
  EXPECT_EQ(plen.get_f32(0), 30.0f);
  const auto& ids = ref->tensors().at("input_ids");
  EXPECT_EQ(ids.shape, (std::vector<int64_t>{40}));
  EXPECT_EQ(ids.get_f32(0), 2.0f);  // <bos>
  EXPECT_EQ(ref->tensors().at("logits").shape, (std::vector<int64_t>{40, 512}));
}

void expect_tiny_geometry(const ModelConfig& c) {
  EXPECT_EQ(c.model_type, "gemma4_unified");
  EXPECT_EQ(c.hidden_size, 48);
  EXPECT_EQ(c.intermediate_size, 96);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_DOUBLE_EQ(c.final_logit_softcapping, 30.0);
  EXPECT_TRUE(c.tie_word_embeddings);
  ASSERT_EQ(c.layers.size(), 12u);
  for (int i = 0; i < 12; ++i) {
    const LayerConfig& L = c.layers[static_cast<std::size_t>(i)];
    const bool full = i % 6 == 5;
    EXPECT_EQ(L.type, full ? LayerType::kFull : LayerType::kSliding) << i;
    EXPECT_EQ(L.num_heads, 4);
    EXPECT_EQ(L.head_dim, full ? 64 : 32) << i;
    EXPECT_EQ(L.num_kv_heads, full ? 1 : 2) << i;
    EXPECT_EQ(L.k_eq_v, full) << i;
    EXPECT_EQ(L.sliding_window, full ? 0 : 8) << i;
    EXPECT_EQ(L.rope.type, full ? RopeType::kProportional : RopeType::kDefault);
    EXPECT_DOUBLE_EQ(L.rope.theta, full ? 1e6 : 1e4);
    EXPECT_DOUBLE_EQ(L.rope.partial_rotary_factor, full ? 0.25 : 1.0);
  }
}

TEST(GoldenCheckpoint, BothConfigSpellingsResolveToTheSameGeometry) {
  expect_tiny_geometry(ModelConfig::load(kGolden / "tiny-fp32"));        // per_layer_config "05", "11"
  expect_tiny_geometry(ModelConfig::load(kGolden / "tiny-globalkeys"));  // global_head_dim / num_global_kv
}

TEST(GoldenCheckpoint, InspectReport) {
  const InspectReport r = inspect_checkpoint(kGolden / "tiny-bf16");
  EXPECT_EQ(r.tensor_count, 178u);
  EXPECT_EQ(r.dtype_counts.at("BF16"), 178u);
  EXPECT_EQ(r.multimodal_tensor_count, 10u);
  EXPECT_EQ(r.linear_formats.at("BF16"), 82u);
  EXPECT_EQ(r.linear_formats.size(), 1u);
  EXPECT_TRUE(r.quant.quant_algo.empty());
  EXPECT_TRUE(r.format_mismatches.empty());
}

TEST(GoldenCheckpoint, ModelOptLayoutNvfp4MlpOnly) {
  // Exported by the numpy re-implementation of ModelOpt's HF export (tools/fixtures/
  // modelopt_reference.py): W4A16_NVFP4 on the 36 MLP Linears, attention excluded by
  // "model.language_model.layers.N.self_attn*" wildcards. Every Linear's declared format (from
  // exclude_modules) must agree with the tensors stored.
  const InspectReport r = inspect_checkpoint(fs::path(QUENCH_SOURCE_DIR) / "tests/data/quant/modelopt-tiny-nvfp4-mlp");
  EXPECT_EQ(r.quant.quant_algo, "W4A16_NVFP4");
  EXPECT_EQ(r.linear_formats.at("NVFP4"), 36u);
  EXPECT_EQ(r.linear_formats.at("BF16"), 46u);
  EXPECT_TRUE(r.format_mismatches.empty()) << r.format_mismatches.front();
  EXPECT_EQ(r.dtype_counts.at("U8"), 36u);
  EXPECT_EQ(r.dtype_counts.at("F8_E4M3"), 36u);
  EXPECT_EQ(r.multimodal_tensor_count, 10u);
}

}  // namespace
}  // namespace quench
