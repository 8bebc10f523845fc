// tests/model/quantized_forward_test.cpp: a checkpoint in ModelOpt's MIXED_PRECISION layout
// (NVFP4 MLP, FP8 attention projections) runs through Model::load + CpuForward and gives the
// logits of the same model written with the dequantized weights (io/dequant.h) in fp32.
#include <algorithm>
#include <cmath>
#include <fstream>

#include <gtest/gtest.h>

#include "backend/cpu/forward.h"
#include "core/numeric.h"
#include "io/dequant.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "model/naive_reference.h"
#include "model/tiny_checkpoint.h"

namespace quench {
namespace {

struct Quantized {
  std::vector<uint8_t> weight, scale;  // NVFP4: codes + block scales; FP8: codes
  float scale_2 = 1.0f;
};

/// ModelOpt-style NVFP4 quantization (nvfp4-modelopt-format.md §3), enough for a test input.
Quantized quantize_nvfp4(const std::vector<float>& w, int64_t out, int64_t in) {
  Quantized q;
  float amax = 0;
  for (float v : w) amax = std::max(amax, std::fabs(v));
  q.scale_2 = amax / 2688.0f;
  q.weight.assign(out * in / 2, 0);
  q.scale.resize(out * in / 16);
  for (int64_t r = 0; r < out; ++r)
    for (int64_t b = 0; b < in / 16; ++b) {
      float bmax = 0;
      for (int i = 0; i < 16; ++i) bmax = std::max(bmax, std::fabs(w[r * in + b * 16 + i]));
      float s = bmax / (6.0f * q.scale_2);
      if (s == 0) s = 1.0f;
      const uint8_t s8 = f32_to_fp8e4m3(std::clamp(s, 1.0f / 512, 448.0f), true);
      q.scale[r * (in / 16) + b] = s8;
      const float d = fp8e4m3_to_f32(s8) * q.scale_2;
      for (int i = 0; i < 16; ++i) {
        const int64_t c = b * 16 + i;
        const uint8_t code = f32_to_e2m1(w[r * in + c] / d);
        q.weight[r * (in / 2) + c / 2] |= (c % 2 == 0) ? code : uint8_t(code << 4);
      }
    }
  return q;
}

Quantized quantize_fp8(const std::vector<float>& w) {
  Quantized q;
  float amax = 0;
  for (float v : w) amax = std::max(amax, std::fabs(v));
  q.scale_2 = amax / 448.0f;
  for (float v : w) q.weight.push_back(f32_to_fp8e4m3(v / q.scale_2, true));
  return q;
}

TensorView view(const std::string& name, DType dt, std::vector<int64_t> shape, const void* data, size_t n) {
  TensorView t;
  t.name = name;
  t.dtype = dt;
  t.shape = std::move(shape);
  t.data = static_cast<const std::byte*>(data);
  t.nbytes = n;
  return t;
}

TEST(QuantizedForward, MixedNvfp4Fp8MatchesDequantizedFp32) {
  test::TempDir base_dir("qbase"), quant_dir("qmixed"), deq_dir("qdeq");
  test::write_tiny_checkpoint(base_dir);
  const Checkpoint base = Checkpoint::open(base_dir);
  std::ifstream config_file(base_dir.path() / "config.json");
  nlohmann::json config = nlohmann::json::parse(config_file);
  write_file_atomic(deq_dir.path() / "config.json", config.dump());

  SafetensorsWriter qw, dw;
  nlohmann::json layers = nlohmann::json::object();
  for (const std::string& name : base.names()) {
    const TensorView& t = base.get(name);
    const bool mlp = name.find(".mlp.") != std::string::npos;
    const bool attn = name.find("_proj.weight") != std::string::npos && name.find(".self_attn.") != std::string::npos;
    if (!(mlp || attn)) {
      qw.add(t);
      dw.add(t);
      continue;
    }
    const std::string module = name.substr(0, name.size() - 7);
    const int64_t out = t.shape[0], in = t.shape[1];
    const auto w = t.to_f32();
    std::vector<float> deq;
    if (mlp) {
      const Quantized q = quantize_nvfp4(w, out, in);
      qw.add(module + ".weight", DType::kU8, {out, in / 2}, q.weight.data(), q.weight.size());
      qw.add(module + ".weight_scale", DType::kF8E4M3, {out, in / 16}, q.scale.data(), q.scale.size());
      qw.add(module + ".weight_scale_2", DType::kF32, {}, &q.scale_2, 4);
      const float input_scale = 0.01f;
      qw.add(module + ".input_scale", DType::kF32, {}, &input_scale, 4);
      deq = dequant_nvfp4(view(name, DType::kU8, {out, in / 2}, q.weight.data(), q.weight.size()),
                          view(name + "_scale", DType::kF8E4M3, {out, in / 16}, q.scale.data(), q.scale.size()),
                          q.scale_2);
      layers[module] = {{"quant_algo", "NVFP4"}, {"group_size", 16}};
    } else {
      const Quantized q = quantize_fp8(w);
      qw.add(module + ".weight", DType::kF8E4M3, {out, in}, q.weight.data(), q.weight.size());
      qw.add(module + ".weight_scale", DType::kF32, {}, &q.scale_2, 4);
      deq = dequant_fp8(view(name, DType::kF8E4M3, {out, in}, q.weight.data(), q.weight.size()), q.scale_2);
      layers[module] = {{"quant_algo", "FP8"}};
    }
    dw.add(name, DType::kF32, {out, in}, deq.data(), deq.size() * 4);
  }
  config["quantization_config"] = {{"quant_method", "modelopt"},
                                   {"quant_algo", "MIXED_PRECISION"},
                                   {"quantized_layers", layers},
                                   {"kv_cache_quant_algo", nullptr},
                                   {"ignore", nlohmann::json::array()}};
  write_file_atomic(quant_dir.path() / "config.json", config.dump());
  qw.write(quant_dir.path() / "model.safetensors");
  dw.write(deq_dir.path() / "model.safetensors");

  auto qmodel = Model::load(quant_dir);
  auto dmodel = Model::load(deq_dir);
  const LayerWeights& l0 = qmodel->weights().layers[0];
  EXPECT_EQ(l0.gate_proj.format, WeightFormat::kNVFP4);
  ASSERT_TRUE(l0.gate_proj.input_scale.has_value());
  EXPECT_EQ(*l0.gate_proj.input_scale, 0.01f);
  EXPECT_EQ(l0.q_proj.format, WeightFormat::kFP8);
  EXPECT_EQ(qmodel->weights().layers[3].o_proj.format, WeightFormat::kFP8);

  const std::vector<int32_t> tokens = {2, 9, 40, 41, 7, 88, 13, 0, 64, 5, 21};
  const int V = test::kTinyVocab, N = static_cast<int>(tokens.size());
  std::vector<float> ql(size_t(N) * V), dl(size_t(N) * V);
  CpuForward qf(*qmodel), df(*dmodel);
  auto qc = qf.new_cache(), dc = df.new_cache();
  qf.forward(tokens, 0, qc, ql.data(), nullptr, LogitsFor::kAll);
  df.forward(tokens, 0, dc, dl.data(), nullptr, LogitsFor::kAll);
  for (int t = 0; t < N; ++t) {
    EXPECT_LE(test::rel_l2(ql.data() + size_t(t) * V, dl.data() + size_t(t) * V, V), 1e-6) << t;
  }
  // The quantization really changed the logits (so the match above is not trivially the original).
  auto omodel = Model::load(base_dir);
  CpuForward of(*omodel);
  auto oc = of.new_cache();
  std::vector<float> ol(size_t(N) * V);
  of.forward(tokens, 0, oc, ol.data(), nullptr, LogitsFor::kAll);
  EXPECT_GT(test::rel_l2(ql.data(), ol.data(), int64_t(N) * V), 1e-3);
}

}  // namespace
}  // namespace quench
