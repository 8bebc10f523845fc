// The `quench quantize` and `quench synth` verbs as a user runs them (the built binary), and the
// small text helpers behind them (calibration text files, last-integer judge).
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "core/error.h"
#include "io/safetensors.h"
#include "io/text_file.h"
#include "quant/calibration_text.h"
#include "quant/skill_eval.h"
#include "quant/tiny_checkpoint.h"

namespace quench {
namespace {

const std::string kQuench = QUENCH_BINARY_DIR "/quench";

/// Runs a shell command, returns its exit status and combined output.
std::pair<int, std::string> sh(const std::string& cmd) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  const int rc = pclose(p);
  return {WEXITSTATUS(rc), out};
}

TEST(QuantizeCli, SynthThenQuantizeWeightOnly) {
  test::ScratchDir root("cli");
  {
    std::ofstream(root.path / "config.json") << test::tiny_config().dump();
  }
  auto [rc1, out1] = sh(kQuench + " synth " + (root.path / "config.json").string() + " " + (root.path / "bf16").string());
  ASSERT_EQ(rc1, 0) << out1;
  EXPECT_NE(out1.find("synthesized"), std::string::npos);
  auto [rc2, out2] = sh(kQuench + " quantize " + (root.path / "bf16").string() + " " + (root.path / "nv").string() +
                        " --calib-samples 0 --quality-samples 0 --max-shard-size 0.00003");
  ASSERT_EQ(rc2, 0) << out2;
  EXPECT_NE(out2.find("W4A16_NVFP4"), std::string::npos) << out2;
  EXPECT_TRUE(std::filesystem::exists(root.path / "nv" / "model.safetensors.index.json"));
  const auto report = read_json_file(root.path / "nv" / "quantization_report.json");
  EXPECT_EQ(report["scheme"], "nvfp4-mlp");
  EXPECT_EQ(report["layers"].size(), 13u);
  EXPECT_GT(report["weight_error_by_projection"]["mlp.up_proj"]["mean_rel_l2"].get<double>(), 0.0);
  // No partial directory is left next to the output.
  for (const auto& e : std::filesystem::directory_iterator(root.path))
    EXPECT_EQ(e.path().filename().string().find(".partial"), std::string::npos) << e.path();

  // A second run into the same (non-empty) directory fails with one line naming it; nothing changes.
  auto [rc3, out3] = sh(kQuench + " quantize " + (root.path / "bf16").string() + " " + (root.path / "nv").string() +
                        " --calib-samples 0 --quality-samples 0");
  EXPECT_EQ(rc3, 1);
  EXPECT_NE(out3.find("already exists and is not empty"), std::string::npos) << out3;
  // Calibration needs tokenizer.json: the error names the input directory, no output appears.
  auto [rc4, out4] = sh(kQuench + " quantize " + (root.path / "bf16").string() + " " + (root.path / "nv2").string());
  EXPECT_EQ(rc4, 1);
  EXPECT_NE(out4.find("no tokenizer.json"), std::string::npos) << out4;
  EXPECT_FALSE(std::filesystem::exists(root.path / "nv2"));
  // Unknown scheme: rejected by the flag parser.
  auto [rc5, out5] = sh(kQuench + " quantize " + (root.path / "bf16").string() + " " + (root.path / "nv3").string() +
                        " --scheme int4");
  EXPECT_NE(rc5, 0);
}

TEST(QuantizeCli, SynthNvfp4MlpGoesThroughTheQuantizer) {
  test::ScratchDir root("clinv");
  {
    std::ofstream(root.path / "config.json") << test::tiny_config().dump();
  }
  auto [rc, out] = sh(kQuench + " synth " + (root.path / "config.json").string() + " " + (root.path / "nv/").string() +
                      " --dtype nvfp4-mlp --seed 5");
  ASSERT_EQ(rc, 0) << out;
  const auto hf = read_json_file(root.path / "nv" / "hf_quant_config.json");
  EXPECT_EQ(hf["quantization"]["quant_algo"], "W4A16_NVFP4");
  const Checkpoint c = Checkpoint::open(root.path / "nv");
  EXPECT_EQ(c.get("model.language_model.layers.0.mlp.up_proj.weight").dtype, DType::kU8);
  EXPECT_TRUE(c.has("model.vision_embedder.patch_dense.weight"));
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(root.path)) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 2);  // config.json and nv: the BF16 staging directory is gone
}

TEST(CalibrationText, PlainTextSplitsAtBlankLinesAndJsonlReadsText) {
  test::ScratchDir d("text");
  {
    std::ofstream(d.path / "a.txt") << "first line\nstill first\n\n\nsecond\n";
    std::ofstream(d.path / "b.jsonl") << "{\"text\": \"one\"}\n\n{\"article\": \"two\"}\n{\"text\": \"three\"}\n";
    std::ofstream(d.path / "bad.jsonl") << "{\"text\": \"one\"}\n{\"title\": 3}\n";
  }
  const auto a = load_calibration_texts(d.path / "a.txt", 0);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0], "first line\nstill first");
  EXPECT_EQ(a[1], "second");
  const auto b = load_calibration_texts(d.path / "b.jsonl", 2);
  EXPECT_EQ(b, (std::vector<std::string>{"one", "two"}));
  try {
    load_calibration_texts(d.path / "bad.jsonl", 0);
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:2"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(builtin_calibration_texts().empty());
  for (const auto& h : builtin_heldout_texts())
    for (const auto& c : builtin_calibration_texts()) EXPECT_NE(h, c);
}

TEST(SkillEval, LastIntegerJudge) {
  EXPECT_EQ(last_integer("3 + 5 = 8, 2 + 4 = 6, so 23 + 45 = 68."), 68);
  EXPECT_EQ(last_integer("85 - 81 = -4? no: 4"), 4);
  EXPECT_EQ(last_integer("the result is -12"), -12);
  EXPECT_FALSE(last_integer("no digits").has_value());
}

}  // namespace
}  // namespace quench
