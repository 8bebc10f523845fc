// Tests of src/quant/export.cpp: the checkpoint layout of every scheme (tensor names, dtypes,
// shapes, shared fused scales, ModelOpt JSON), parsed back by quench's independent io reader
// (io/quant_config.h) and dequantized by io/dequant.h.
#include "quant/export.h"

#include <cmath>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/dequant.h"
#include "io/quant_config.h"
#include "io/safetensors.h"
#include "io/text_file.h"
#include "quant/calibration.h"
#include "quant/staging_dir.h"
#include "quant/tiny_checkpoint.h"

namespace quench {
namespace {

using test::ScratchDir;

const std::string L0 = "model.language_model.layers.0.";
const std::string L1 = "model.language_model.layers.1.";

/// Calibration amax for every Linear of the tiny model (distinct values per member).
ActivationAmax fake_calibration() {
  ActivationAmax a;
  float v = 1.0f;
  for (const std::string& l : {L0, L1})
    for (const char* m : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                          "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"})
      a.linear_input[l + m] = (v += 0.5f);
  a.k_amax = {3.0f, 4.0f};
  a.v_amax = {5.0f, 6.0f};
  return a;
}

struct Exported {
  ScratchDir in{"in"}, out{"out"};
  ExportReport rep;
  Exported(QuantScheme s, bool calib, bool kv = false, std::size_t shard = 5'000'000'000) {
    test::write_tiny_checkpoint(in.path);
    ExportOptions o;
    o.scheme = s;
    o.kv_cache_fp8 = kv;
    o.max_shard_bytes = shard;
    ActivationAmax a = fake_calibration();
    rep = export_quantized(in.path, out.path, o, calib ? &a : nullptr);
  }
};

TEST(Export, Nvfp4MlpLayoutAndMetadata) {
  Exported e(QuantScheme::kNvfp4Mlp, /*calib=*/true);
  const Checkpoint in = Checkpoint::open(e.in.path);
  const Checkpoint out = Checkpoint::open(e.out.path);
  // MLP: packed U8, E4M3 block scales, scalar global scales and input scales (§2).
  out.get(L0 + "mlp.gate_proj.weight").expect(DType::kU8, {128, 32});
  out.get(L0 + "mlp.gate_proj.weight_scale").expect(DType::kF8E4M3, {128, 4});
  out.get(L0 + "mlp.gate_proj.weight_scale_2").expect(DType::kF32, {});
  out.get(L0 + "mlp.down_proj.weight").expect(DType::kU8, {64, 64});
  out.get(L0 + "mlp.down_proj.weight_scale").expect(DType::kF8E4M3, {64, 8});
  // gate/up share weight_scale_2 = max amax / 2688 and input_scale = max amax / 2688 (§3.5, §5.1).
  const float g_gate = out.get(L0 + "mlp.gate_proj.weight_scale_2").get_f32(0);
  EXPECT_EQ(g_gate, out.get(L0 + "mlp.up_proj.weight_scale_2").get_f32(0));
  float amax = 0;
  for (const char* m : {"mlp.gate_proj.weight", "mlp.up_proj.weight"})
    for (float x : in.get(L0 + m).to_f32()) amax = std::max(amax, std::fabs(x));
  EXPECT_EQ(g_gate, amax / 2688.0f);
  const ActivationAmax a = fake_calibration();
  const float in_amax = std::max(a.linear_input.at(L0 + "mlp.gate_proj"), a.linear_input.at(L0 + "mlp.up_proj"));
  EXPECT_EQ(out.get(L0 + "mlp.gate_proj.input_scale").get_f32(0), in_amax / 2688.0f);
  EXPECT_EQ(out.get(L0 + "mlp.up_proj.input_scale").get_f32(0), in_amax / 2688.0f);
  // Attention, norms, embeddings, layer_scalar: unchanged bytes.
  for (const std::string& n : {L0 + "self_attn.q_proj.weight", L1 + "self_attn.k_proj.weight",
                              std::string("model.language_model.embed_tokens.weight"), L1 + "layer_scalar"}) {
    const TensorView& a0 = in.get(n);
    const TensorView& b0 = out.get(n);
    ASSERT_EQ(a0.nbytes, b0.nbytes) << n;
    EXPECT_EQ(std::memcmp(a0.data, b0.data, a0.nbytes), 0) << n;
  }
  EXPECT_FALSE(out.has(L1 + "self_attn.v_proj.weight"));  // k_eq_v layer
  // Dequantized MLP weights are close to the originals (4-bit: rel. L2 around 0.1).
  const auto w = in.get(L1 + "mlp.down_proj.weight").to_f32();
  const auto d = dequant_nvfp4(out.get(L1 + "mlp.down_proj.weight"), out.get(L1 + "mlp.down_proj.weight_scale"),
                               out.get(L1 + "mlp.down_proj.weight_scale_2").get_f32(0));
  double num = 0, den = 0;
  for (std::size_t i = 0; i < w.size(); ++i) num += (w[i] - d[i]) * (w[i] - d[i]), den += w[i] * w[i];
  EXPECT_LT(std::sqrt(num / den), 0.15);
  EXPECT_GT(std::sqrt(num / den), 0.01);  // it really is quantized
  for (const auto& l : e.rep.linears)
    if (l.module == L1 + "mlp.down_proj") {
      EXPECT_NEAR(l.rel_l2, std::sqrt(num / den), 1e-6);
    }

  // Metadata (§6.1, §6.2) and quench's own reader of it.
  const auto hf = read_json_file(e.out.path / "hf_quant_config.json");
  EXPECT_EQ(hf["producer"]["name"], "modelopt");
  EXPECT_EQ(hf["quantization"]["quant_algo"], "NVFP4");
  EXPECT_EQ(hf["quantization"]["group_size"], 16);
  EXPECT_TRUE(hf["quantization"].contains("kv_cache_quant_algo"));
  EXPECT_TRUE(hf["quantization"]["kv_cache_quant_algo"].is_null());
  const auto excl = hf["quantization"]["exclude_modules"].get<std::vector<std::string>>();
  for (const std::string& x : {std::string("lm_head"), L0 + "self_attn", L0 + "self_attn.*", L1 + "self_attn",
                              L1 + "self_attn.*", std::string("model.vision_embedder"),
                              std::string("model.vision_embedder.*"), std::string("model.embed_vision"),
                              std::string("model.embed_audio.*")})
    EXPECT_NE(std::find(excl.begin(), excl.end(), x), excl.end()) << x;
  const auto cfg = read_json_file(e.out.path / "config.json");
  const auto& qc = cfg["quantization_config"];
  EXPECT_EQ(qc["quant_method"], "modelopt");
  EXPECT_EQ(qc["quant_algo"], "NVFP4");
  EXPECT_EQ(qc["ignore"], hf["quantization"]["exclude_modules"]);
  EXPECT_EQ(qc["config_groups"]["group_0"]["weights"]["num_bits"], 4);
  EXPECT_EQ(qc["config_groups"]["group_0"]["input_activations"]["group_size"], 16);
  EXPECT_FALSE(qc.contains("kv_cache_scheme"));
  EXPECT_EQ(cfg["text_config"]["hidden_size"], 64);  // the rest of config.json is kept
  const QuantConfig parsed = QuantConfig::load(e.out.path, cfg);
  EXPECT_EQ(parsed.format_of(L0 + "mlp.down_proj"), WeightFormat::kNVFP4);
  EXPECT_EQ(parsed.format_of(L0 + "self_attn.q_proj"), WeightFormat::kBF16);
  EXPECT_EQ(parsed.format_of(L1 + "self_attn.o_proj"), WeightFormat::kBF16);

  // Multimodal tensors renamed to vLLM's layout, kept BF16; chat template copied.
  EXPECT_TRUE(out.has("model.vision_embedder.patch_dense.weight"));
  EXPECT_TRUE(out.has("model.vision_embedder.pos_embedding"));
  EXPECT_TRUE(out.has("model.embed_vision.embedding_projection.weight"));
  EXPECT_TRUE(out.has("model.embed_audio.embedding_projection.weight"));
  EXPECT_FALSE(out.has("model.embed_vision.patch_dense.weight"));
  EXPECT_EQ(out.get("model.vision_embedder.patch_dense.weight").dtype, DType::kBF16);
  EXPECT_TRUE(std::filesystem::exists(e.out.path / "chat_template.jinja"));
  EXPECT_EQ(e.rep.quant_algo, "NVFP4");
}

TEST(Export, UncalibratedNvfp4IsW4A16WithoutInputScale) {
  Exported e(QuantScheme::kNvfp4Mlp, /*calib=*/false);
  const Checkpoint out = Checkpoint::open(e.out.path);
  EXPECT_FALSE(out.has(L0 + "mlp.gate_proj.input_scale"));
  const auto hf = read_json_file(e.out.path / "hf_quant_config.json");
  EXPECT_EQ(hf["quantization"]["quant_algo"], "W4A16_NVFP4");
  const auto cfg = read_json_file(e.out.path / "config.json");
  EXPECT_FALSE(cfg["quantization_config"]["config_groups"]["group_0"].contains("input_activations"));
}

TEST(Export, Nvfp4AllLinearsSharesQkvScale) {
  Exported e(QuantScheme::kNvfp4, true);
  const Checkpoint out = Checkpoint::open(e.out.path);
  const float gq = out.get(L0 + "self_attn.q_proj.weight_scale_2").get_f32(0);
  EXPECT_EQ(gq, out.get(L0 + "self_attn.k_proj.weight_scale_2").get_f32(0));
  EXPECT_EQ(gq, out.get(L0 + "self_attn.v_proj.weight_scale_2").get_f32(0));
  EXPECT_EQ(out.get(L0 + "self_attn.q_proj.input_scale").get_f32(0),
            out.get(L0 + "self_attn.v_proj.input_scale").get_f32(0));
  out.get(L1 + "self_attn.o_proj.weight").expect(DType::kU8, {64, 64});
  const auto hf = read_json_file(e.out.path / "hf_quant_config.json");
  const auto excl = hf["quantization"]["exclude_modules"].get<std::vector<std::string>>();
  EXPECT_EQ(std::find(excl.begin(), excl.end(), L0 + "self_attn"), excl.end());
}

TEST(Export, Fp8WithKvScales) {
  Exported e(QuantScheme::kFp8, true, /*kv=*/true);
  const Checkpoint out = Checkpoint::open(e.out.path);
  out.get(L0 + "self_attn.q_proj.weight").expect(DType::kF8E4M3, {64, 64});
  out.get(L0 + "self_attn.q_proj.weight_scale").expect(DType::kF32, {});
  out.get(L0 + "mlp.down_proj.weight").expect(DType::kF8E4M3, {64, 128});
  EXPECT_FALSE(out.has(L0 + "mlp.down_proj.weight_scale_2"));
  const ActivationAmax a = fake_calibration();
  EXPECT_EQ(out.get(L0 + "mlp.down_proj.input_scale").get_f32(0), a.linear_input.at(L0 + "mlp.down_proj") / 448.0f);
  EXPECT_EQ(out.get(L1 + "self_attn.k_proj.k_scale").get_f32(0), 4.0f / 448.0f);
  EXPECT_EQ(out.get(L1 + "self_attn.v_proj.v_scale").get_f32(0), 6.0f / 448.0f);
  const auto hf = read_json_file(e.out.path / "hf_quant_config.json");
  EXPECT_EQ(hf["quantization"]["quant_algo"], "FP8");
  EXPECT_EQ(hf["quantization"]["kv_cache_quant_algo"], "FP8");
  EXPECT_FALSE(hf["quantization"].contains("group_size"));
  const auto cfg = read_json_file(e.out.path / "config.json");
  EXPECT_EQ(cfg["quantization_config"]["kv_cache_scheme"]["num_bits"], 8);
  const QuantConfig parsed = QuantConfig::load(e.out.path, cfg);
  EXPECT_EQ(parsed.format_of(L0 + "self_attn.q_proj"), WeightFormat::kFP8);
  EXPECT_EQ(parsed.kv_cache_quant_algo, "FP8");
  // FP8 dequantization error is small (per-tensor scale, 3 mantissa bits).
  const Checkpoint in = Checkpoint::open(e.in.path);
  const auto w = in.get(L0 + "mlp.up_proj.weight").to_f32();
  const auto d = dequant_fp8(out.get(L0 + "mlp.up_proj.weight"), out.get(L0 + "mlp.up_proj.weight_scale").get_f32(0));
  double num = 0, den = 0;
  for (std::size_t i = 0; i < w.size(); ++i) num += (w[i] - d[i]) * (w[i] - d[i]), den += w[i] * w[i];
  EXPECT_LT(std::sqrt(num / den), 0.05);
}

TEST(Export, MixedPrecisionListsEveryLayer) {
  Exported e(QuantScheme::kNvfp4MlpFp8Attn, true);
  const Checkpoint out = Checkpoint::open(e.out.path);
  out.get(L0 + "self_attn.o_proj.weight").expect(DType::kF8E4M3, {64, 64});
  out.get(L0 + "mlp.up_proj.weight").expect(DType::kU8, {128, 32});
  const auto hf = read_json_file(e.out.path / "hf_quant_config.json");
  EXPECT_EQ(hf["quantization"]["quant_algo"], "MIXED_PRECISION");
  EXPECT_FALSE(hf["quantization"].contains("exclude_modules"));
  const auto& ql = hf["quantization"]["quantized_layers"];
  EXPECT_EQ(ql.size(), 13u);  // 7 + 6 (no v_proj on the k_eq_v layer)
  EXPECT_EQ(ql[L0 + "self_attn.q_proj"]["quant_algo"], "FP8");
  EXPECT_EQ(ql[L1 + "mlp.down_proj"]["quant_algo"], "NVFP4");
  EXPECT_EQ(ql[L1 + "mlp.down_proj"]["group_size"], 16);
  const auto cfg = read_json_file(e.out.path / "config.json");
  const auto& qc = cfg["quantization_config"];
  EXPECT_EQ(qc["ignore"].size(), 0u);
  EXPECT_EQ(qc["config_groups"].size(), 2u);
  EXPECT_EQ(qc["quantized_layers"], ql);
  const QuantConfig parsed = QuantConfig::load(e.out.path, cfg);
  EXPECT_EQ(parsed.format_of(L1 + "self_attn.k_proj"), WeightFormat::kFP8);
  EXPECT_EQ(parsed.format_of(L1 + "mlp.gate_proj"), WeightFormat::kNVFP4);
}

TEST(Export, ShardsWithIndex) {
  Exported e(QuantScheme::kNvfp4Mlp, true, false, /*shard=*/20000);
  EXPECT_GT(e.rep.num_shards, 2u);
  EXPECT_TRUE(std::filesystem::exists(e.out.path / "model.safetensors.index.json"));
  EXPECT_FALSE(std::filesystem::exists(e.out.path / "model.safetensors"));
  const auto idx = read_json_file(e.out.path / "model.safetensors.index.json");
  EXPECT_EQ(idx["metadata"]["total_size"].get<std::size_t>(), e.rep.tensor_bytes);
  const Checkpoint out = Checkpoint::open(e.out.path);
  EXPECT_EQ(out.names().size(), e.rep.num_tensors);
  EXPECT_EQ(idx["weight_map"].size(), e.rep.num_tensors);
}

TEST(Export, ExcludePatternsKeepModulesBf16AndListThem) {
  ScratchDir in("in"), out("out");
  test::write_tiny_checkpoint(in.path);
  ExportOptions o;
  o.exclude = {"*layers.1.mlp.down_proj"};
  export_quantized(in.path, out.path, o, nullptr);
  const Checkpoint c = Checkpoint::open(out.path);
  EXPECT_EQ(c.get(L1 + "mlp.down_proj.weight").dtype, DType::kBF16);
  EXPECT_EQ(c.get(L1 + "mlp.gate_proj.weight").dtype, DType::kU8);
  const auto hf = read_json_file(out.path / "hf_quant_config.json");
  const auto excl = hf["quantization"]["exclude_modules"].get<std::vector<std::string>>();
  EXPECT_NE(std::find(excl.begin(), excl.end(), L1 + "mlp.down_proj"), excl.end());
  EXPECT_EQ(std::find(excl.begin(), excl.end(), L1 + "mlp"), excl.end());  // gate/up still quantized
}

TEST(Export, ExcludeSplittingAFusedGroupIsRejected) {
  ScratchDir in("in"), out("out");
  test::write_tiny_checkpoint(in.path);
  ExportOptions o;
  o.exclude = {"*layers.0.mlp.gate_proj"};
  EXPECT_THROW(export_quantized(in.path, out.path, o, nullptr), InvalidArgument);
}

TEST(Export, Fp8WithoutCalibrationIsRejected) {
  ScratchDir in("in"), out("out");
  test::write_tiny_checkpoint(in.path);
  ExportOptions o;
  o.scheme = QuantScheme::kFp8;
  EXPECT_THROW(export_quantized(in.path, out.path, o, nullptr), InvalidArgument);
}

TEST(Export, AlreadyQuantizedInputIsRejected) {
  Exported e(QuantScheme::kNvfp4Mlp, false);
  ScratchDir out2("out2");
  EXPECT_THROW(export_quantized(e.out.path, out2.path, ExportOptions{}, nullptr), UnsupportedError);
}

TEST(StagingDir, RemovedUnlessCommittedAndRefusesNonEmptyTarget) {
  ScratchDir root("stage");
  const auto final_dir = root.path / "ckpt";
  std::filesystem::path staged;
  {
    StagingDir s(final_dir);
    staged = s.path();
    EXPECT_TRUE(std::filesystem::is_directory(staged));
    EXPECT_NE(staged.filename().string().find("partial"), std::string::npos);
  }
  EXPECT_FALSE(std::filesystem::exists(staged));
  EXPECT_FALSE(std::filesystem::exists(final_dir));
  {
    StagingDir s(final_dir);
    std::ofstream(s.path() / "x") << "1";
    s.commit();
  }
  EXPECT_TRUE(std::filesystem::exists(final_dir / "x"));
  EXPECT_THROW(StagingDir{final_dir}, InvalidArgument);
}

}  // namespace
}  // namespace quench
