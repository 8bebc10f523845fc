// quench's NVFP4 / FP8 quantizer against tests/data/quant/modelopt_random.safetensors, written by
// tools/fixtures/modelopt_reference.py (an independent numpy/torch implementation of ModelOpt's
// formulas; see its docstring). Every byte of every case must be equal.
#include <algorithm>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/numeric.h"
#include "io/safetensors.h"
#include "quant/fp8.h"
#include "quant/nvfp4.h"

namespace quench {
namespace {

const char* kFixture = QUENCH_SOURCE_DIR "/tests/data/quant/modelopt_random.safetensors";

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, sep);) out.push_back(item);
  return out;
}

/// Cases grouped by fused group ("fused.0", "fused.1" ... share one global scale).
TEST(ModelOptFixture, AllBytesEqual) {
  auto file = SafetensorsFile::open(kFixture);
  const auto& t = file->tensors();
  const auto& meta = file->metadata();
  ASSERT_TRUE(meta.count("cases"));
  const bool exact_division = meta.count("global_scale_division") &&
                              meta.at("global_scale_division") == "exact";
  const auto cases = split(meta.at("cases"), ',');
  ASSERT_GE(cases.size(), 6u);

  // Group amax per case prefix (before the first '.').
  std::map<std::string, float> group_amax;
  std::map<std::string, std::vector<float>> inputs;
  for (const auto& c : cases) {
    const TensorView& in = t.at(c + ".input");
    ASSERT_EQ(in.dtype, DType::kBF16);
    std::vector<float> w = in.to_f32();
    const std::string group = c.substr(0, c.find('.'));
    group_amax[group] = std::max(group_amax[group], abs_max(w));
    inputs[c] = std::move(w);
  }

  std::size_t bytes_compared = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c);
    const TensorView& in = t.at(c + ".input");
    const int64_t rows = in.shape[0], cols = in.shape[1];
    const std::string group = c.substr(0, c.find('.'));
    const float g_ref = t.at(c + ".nvfp4.weight_scale_2").get_f32(0);
    if (exact_division) {
      EXPECT_EQ(nvfp4_global_scale(group_amax[group]), g_ref);
    }

    Nvfp4Tensor q = nvfp4_quantize(inputs[c], rows, cols, g_ref);
    const TensorView& ref_w = t.at(c + ".nvfp4.weight");
    const TensorView& ref_s = t.at(c + ".nvfp4.weight_scale");
    ASSERT_EQ(ref_w.nbytes, q.packed.size());
    ASSERT_EQ(ref_s.nbytes, q.scales.size());
    const auto* rw = reinterpret_cast<const uint8_t*>(ref_w.data);
    const auto* rs = reinterpret_cast<const uint8_t*>(ref_s.data);
    int bad = 0;
    for (std::size_t i = 0; i < q.packed.size(); ++i)
      if (q.packed[i] != rw[i] && bad++ < 5) ADD_FAILURE() << "packed byte " << i;
    for (std::size_t i = 0; i < q.scales.size(); ++i)
      if (q.scales[i] != rs[i] && bad++ < 5) ADD_FAILURE() << "scale byte " << i;
    EXPECT_EQ(bad, 0);

    const float fp8_ref_scale = t.at(c + ".fp8.weight_scale").get_f32(0);
    EXPECT_EQ(fp8_scale(group_amax[group]), fp8_ref_scale);
    std::vector<uint8_t> f8(inputs[c].size());
    fp8_quantize(inputs[c], fp8_ref_scale, f8);
    const TensorView& ref_f8 = t.at(c + ".fp8.weight");
    ASSERT_EQ(ref_f8.nbytes, f8.size());
    EXPECT_EQ(std::memcmp(ref_f8.data, f8.data(), f8.size()), 0);
    bytes_compared += q.packed.size() + q.scales.size() + f8.size();
  }
  EXPECT_GT(bytes_compared, 10000u);
}

}  // namespace
}  // namespace quench
