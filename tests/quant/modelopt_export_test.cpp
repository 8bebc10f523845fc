// quench's export against a checkpoint written by tools/fixtures/modelopt_reference.py --export
// (an independent numpy re-implementation of ModelOpt's HF export, W4A16_NVFP4 MLP-only) of the
// transformers-made tests/data/golden/tiny-bf16: same tensors, same bytes, same per-Linear formats
// under quench's reader, and the fixture loads and runs in quench's CPU forward.
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "backend/cpu/forward.h"
#include "io/quant_config.h"
#include "io/safetensors.h"
#include "io/text_file.h"
#include "model/model.h"
#include "quant/export.h"
#include "quant/quality.h"
#include "quant/scheme.h"
#include "quant/tiny_checkpoint.h"

namespace quench {
namespace {

const std::string kGolden = QUENCH_SOURCE_DIR "/tests/data/golden/tiny-bf16";
const std::string kFixture = QUENCH_SOURCE_DIR "/tests/data/quant/modelopt-tiny-nvfp4-mlp";

TEST(ModelOptExport, QuenchExportEqualsReferenceExportByteForByte) {
  test::ScratchDir out("mo");
  ExportOptions o;
  o.scheme = QuantScheme::kNvfp4Mlp;
  export_quantized(kGolden, out.path, o, nullptr);
  const Checkpoint ref = Checkpoint::open(kFixture);
  const Checkpoint ours = Checkpoint::open(out.path);
  EXPECT_EQ(ref.names(), ours.names());
  int quantized = 0;
  for (const auto& n : ref.names()) {
    SCOPED_TRACE(n);
    const TensorView& a = ref.get(n);
    const TensorView* b = ours.find(n);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(a.dtype, b->dtype);
    EXPECT_EQ(a.shape, b->shape);
    ASSERT_EQ(a.nbytes, b->nbytes);
    EXPECT_EQ(std::memcmp(a.data, b->data, a.nbytes), 0);
    quantized += a.dtype == DType::kU8;
  }
  EXPECT_EQ(quantized, 36);  // 12 layers x gate/up/down

  // Different exclude spellings (ModelOpt's "X*" vs quench's "X" + "X.*"), same meaning.
  const QuantConfig qa = QuantConfig::load(kFixture, read_json_file(std::string(kFixture) + "/config.json"));
  const QuantConfig qb = QuantConfig::load(out.path, read_json_file(out.path / "config.json"));
  EXPECT_EQ(qa.quant_algo, qb.quant_algo);
  for (const auto& n : ref.names()) {
    auto lm = parse_linear_weight(n);
    if (!lm) continue;
    EXPECT_EQ(qa.format_of(lm->module), qb.format_of(lm->module)) << lm->module;
  }
}

TEST(ModelOptExport, ReferenceCheckpointLoadsAndTracksBf16Logits) {
  auto bf16 = Model::load(kGolden);
  auto nv = Model::load(kFixture);
  EXPECT_EQ(nv->weights().layers[3].down_proj.format, WeightFormat::kNVFP4);
  EXPECT_EQ(nv->weights().layers[3].q_proj.format, WeightFormat::kBF16);
  auto refs = SafetensorsFile::open(std::string(kGolden) + "/reference.safetensors");
  const TensorView& ids_t = refs->tensors().at("input_ids");
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < ids_t.numel(); ++i) ids.push_back(static_cast<int32_t>(ids_t.get_f32(i)));
  const LogitQuality q = compare_logits(*bf16, *nv, {ids});
  EXPECT_EQ(q.positions, static_cast<int64_t>(ids.size()) - 1);
  // 4-bit MLP weights move the distributions a little, not a lot (measured: see quant/README.md).
  EXPECT_GT(q.kl_mean, 1e-5);
  EXPECT_LT(q.kl_mean, 0.2);
  EXPECT_GT(q.top1_agreement, 0.7);
}

}  // namespace
}  // namespace quench
