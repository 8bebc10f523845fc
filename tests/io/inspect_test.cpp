// Tests for io/inspect (the report behind `quench inspect`) on a small checkpoint built here:
// BF16 attention, NVFP4 MLP, a vision tensor, hf_quant_config.json metadata; plus the CLI binary
// when it has been built (bad dir -> one line on stderr, exit 1).
#include "io/inspect.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sys/wait.h>

#include "core/error.h"
#include "io/safetensors.h"
#include "io/test_util.h"

namespace quench {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::TempDir;
using testing::write_bytes;

// Two layers (sliding, full) of width 32; layer 1 is k_eq_v (no v_proj).
void make_checkpoint(const fs::path& dir, bool declare_nvfp4 = true) {
  json text = {{"model_type", "gemma4_unified_text"}, {"hidden_size", 32}, {"intermediate_size", 64},
               {"num_hidden_layers", 2}, {"num_attention_heads", 2}, {"num_key_value_heads", 1},
               {"head_dim", 16}, {"global_head_dim", 32}, {"num_global_key_value_heads", 1},
               {"attention_k_eq_v", true}, {"layer_types", {"sliding_attention", "full_attention"}},
               {"sliding_window", 8}, {"vocab_size", 64}, {"final_logit_softcapping", 30.0}};
  json cfg = {{"model_type", "gemma4_unified"}, {"text_config", text}, {"eos_token_id", {1, 106}}};
  write_bytes(dir / "config.json", cfg.dump());
  if (declare_nvfp4) {
    write_bytes(dir / "hf_quant_config.json",
                R"({"producer":{"name":"modelopt","version":"0.45.0"},"quantization":{"quant_algo":"NVFP4",)"
                R"("kv_cache_quant_algo":null,"group_size":16,"exclude_modules":["lm_head","model.language_model.layers.*.self_attn*"]}})");
  }
  SafetensorsWriter w;
  std::vector<uint8_t> zeros(64 * 64 * 4, 0);
  auto bf16 = [&](const std::string& n, std::vector<int64_t> shape) {
    std::size_t numel = 1;
    for (auto d : shape) numel *= static_cast<std::size_t>(d);
    w.add(n, DType::kBF16, shape, zeros.data(), numel * 2);
  };
  auto nvfp4 = [&](const std::string& m, int64_t out, int64_t in) {
    w.add(m + ".weight", DType::kU8, {out, in / 2}, zeros.data(), static_cast<std::size_t>(out * in / 2));
    w.add(m + ".weight_scale", DType::kF8E4M3, {out, in / 16}, zeros.data(), static_cast<std::size_t>(out * in / 16));
    const float g = 1.0f;
    w.add(m + ".weight_scale_2", DType::kF32, {}, &g, 4);
  };
  const std::string p = "model.language_model.";
  bf16(p + "embed_tokens.weight", {64, 32});
  bf16(p + "norm.weight", {32});
  for (int l = 0; l < 2; ++l) {
    const std::string L = p + "layers." + std::to_string(l) + ".";
    const int64_t hd = l == 0 ? 16 : 32;
    bf16(L + "self_attn.q_proj.weight", {2 * hd, 32});
    bf16(L + "self_attn.k_proj.weight", {hd, 32});
    if (l == 0) bf16(L + "self_attn.v_proj.weight", {hd, 32});
    bf16(L + "self_attn.o_proj.weight", {32, 2 * hd});
    nvfp4(L + "mlp.gate_proj", 64, 32);
    nvfp4(L + "mlp.up_proj", 64, 32);
    nvfp4(L + "mlp.down_proj", 32, 64);
    bf16(L + "layer_scalar", {1});
  }
  bf16("model.embed_vision.patch_dense.weight", {32, 48});
  bf16("model.embed_audio.embedding_projection.weight", {32, 16});
  w.write(dir / "model.safetensors");
}

TEST(Inspect, ReportOnSmallNvfp4Checkpoint) {
  TempDir dir;
  make_checkpoint(dir.path());
  const InspectReport r = inspect_checkpoint(dir.path());
  EXPECT_EQ(r.model_type, "gemma4_unified");
  ASSERT_TRUE(r.config.has_value());
  EXPECT_EQ(r.config->num_hidden_layers, 2);
  EXPECT_EQ(r.quant.quant_algo, "NVFP4");
  // 2 embeds/norm + layer 0: 4 attn + 9 mlp + 1 scalar; layer 1: 3 attn + 9 + 1; 2 multimodal.
  EXPECT_EQ(r.tensor_count, 2u + 14u + 13u + 2u);
  EXPECT_EQ(r.multimodal_tensor_count, 2u);
  EXPECT_EQ(r.multimodal_bytes, 32u * 48 * 2 + 32u * 16 * 2);
  EXPECT_EQ(r.linear_formats.at("BF16"), 7u);
  EXPECT_EQ(r.linear_formats.at("NVFP4"), 6u);
  EXPECT_TRUE(r.format_mismatches.empty());
  EXPECT_EQ(r.dtype_counts.at("U8"), 6u);
  EXPECT_EQ(r.dtype_counts.at("F8_E4M3"), 6u);
  EXPECT_EQ(r.dtype_counts.at("F32"), 6u);
  std::size_t sum = 0;
  for (const auto& [dt, b] : r.dtype_bytes) sum += b;
  EXPECT_EQ(sum, r.total_bytes);

  const std::string text = format_inspect_text(r);
  for (const char* needle :
       {"model_type: gemma4_unified", "layers: 2 (1 sliding_attention, 1 full_attention)",
        "sliding_attention: heads 2, kv_heads 1, head_dim 16, window 8, rope default theta=10000 [layers 0]",
        "full_attention: heads 2, kv_heads 1, head_dim 32, k_eq_v (no v_proj), rope proportional theta=1e+06 "
        "partial_rotary_factor=0.25 [layers 1]",
        "final_logit_softcapping: 30", "eos [1, 106]", "quantization: modelopt NVFP4 (group_size 16)",
        "linear weights: 13 (7 BF16, 6 NVFP4)", "tensors: 31,", "vision/audio tensors skipped: 2"}) {
    EXPECT_NE(text.find(needle), std::string::npos) << "missing '" << needle << "' in:\n" << text;
  }
  const json j = inspect_to_json(r);
  EXPECT_EQ(j["tensors"]["count"], 31);
  EXPECT_EQ(j["config"]["layers"][1]["head_dim"], 32);
  EXPECT_EQ(j["config"]["layers"][1]["k_eq_v"], true);
  EXPECT_EQ(j["quantization"]["linear_formats"]["NVFP4"], 6);
  EXPECT_EQ(j["multimodal_skipped"]["tensors"], 2);
}

TEST(Inspect, StoredFormatDisagreeingWithMetadataIsReported) {
  TempDir dir;
  make_checkpoint(dir.path(), /*declare_nvfp4=*/false);  // NVFP4 tensors but no quant metadata
  const InspectReport r = inspect_checkpoint(dir.path());
  EXPECT_EQ(r.format_mismatches.size(), 6u);
  EXPECT_NE(r.format_mismatches[0].find("declared BF16, stored NVFP4"), std::string::npos) << r.format_mismatches[0];
  EXPECT_NE(format_inspect_text(r).find("warning:"), std::string::npos);
}

TEST(Inspect, UnsupportedConfigIsReportedNotFatal) {
  TempDir dir;
  make_checkpoint(dir.path());
  const json cfg = {{"model_type", "gemma4_text"}, {"num_hidden_layers", 2}};  // PLE on by default
  write_bytes(dir / "config.json", cfg.dump());
  const InspectReport r = inspect_checkpoint(dir.path());
  EXPECT_FALSE(r.config.has_value());
  EXPECT_NE(r.config_error.find("hidden_size_per_layer_input"), std::string::npos);
  EXPECT_NE(format_inspect_text(r).find("not loadable"), std::string::npos);
  EXPECT_EQ(r.tensor_count, 31u);
}

TEST(Inspect, BadDirectoriesThrowNamingThePath) {
  TempDir dir;
  EXPECT_THROW(inspect_checkpoint(dir / "missing"), IoError);
  EXPECT_THROW(inspect_checkpoint(dir.path()), IoError);  // no config.json
  write_bytes(dir / "config.json", "{\"model_type\": \"gemma4_unified_text\"}");
  EXPECT_THROW(inspect_checkpoint(dir.path()), IoError);  // no safetensors
  write_bytes(dir / "model.safetensors", "garbage");
  try {
    inspect_checkpoint(dir.path());
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("model.safetensors"), std::string::npos) << e.what();
  }
}

TEST(Inspect, MultimodalNames) {
  EXPECT_TRUE(is_multimodal_tensor("model.vision_embedder.patch_dense.weight"));
  EXPECT_TRUE(is_multimodal_tensor("model.embed_vision.multimodal_embedder.embedding_projection.weight"));
  EXPECT_TRUE(is_multimodal_tensor("model.embed_audio.embedding_projection.weight"));
  EXPECT_FALSE(is_multimodal_tensor("model.language_model.embed_tokens.weight"));
}

// Runs `quench inspect` when the binary exists (it is built by the full build, not by test_io).
int run_cli(const std::string& args, std::string* out) {
  const std::string cmd = std::string(QUENCH_BINARY_DIR) + "/quench inspect " + args;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  const int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(Inspect, CliBinary) {
  if (!fs::exists(fs::path(QUENCH_BINARY_DIR) / "quench")) GTEST_SKIP() << "quench binary not built";
  TempDir dir;
  make_checkpoint(dir.path());
  std::string out;
  EXPECT_EQ(run_cli(dir.path().string() + " --json", &out), 0);
  EXPECT_EQ(json::parse(out)["tensors"]["count"], 31);
  out.clear();
  EXPECT_EQ(run_cli((dir / "missing").string() + " 2>&1", &out), 1);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_NE(out.find("quench inspect: "), std::string::npos) << out;
}

}  // namespace
}  // namespace quench
