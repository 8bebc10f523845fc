// tests/cuda/runner_fp8_gemm_test.cpp: the FP8 prefill path (fp8_gemm.h) on random data with
// poisoned outputs: the activation quantization byte for byte against the host's E4M3 rounding
// (core/numeric.h, itself checked against torch's casts), and the cuBLASLt E4M3 x E4M3 GEMM
// against a float64 product of the same codes times the two scales; and the CUDA runner's prefill
// on an FP8 checkpoint (built at test time from the tiny golden model) with the FP8 path against
// the dequantize-to-bf16 path.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>

#include <unistd.h>

#include "backend/cuda/cuda_runner.h"
#include "backend/cuda/fp8_gemm.h"
#include "core/numeric.h"
#include "cuda_test_util.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "model/weights.h"

namespace quench {
namespace {

/// Random E4M3 codes (NaN codes 0x7f / 0xff excluded).
std::vector<uint8_t> random_e4m3(size_t n, std::mt19937& rng) {
  std::uniform_int_distribution<int> b(0, 255);
  std::vector<uint8_t> v(n);
  for (auto& c : v) {
    do c = static_cast<uint8_t>(b(rng));
    while ((c & 0x7f) == 0x7f);
  }
  return v;
}

TEST(Fp8Prefill, QuantizeMatchesHostRounding) {
  QUENCH_SKIP_WITHOUT_GPU();
  std::mt19937 rng(11);
  for (const size_t n : {size_t(8), size_t(4099), size_t(3840) * 37}) {
    for (const float scale : {0.0123f, 1.0f, 7.5f}) {
      std::vector<float> f;
      // sigma 3 / scale 0.0123: most values saturate at +-448; scale 7.5: many subnormals.
      const std::vector<uint16_t> x = testing::random_bf16(n, 3.0f, rng, f);
      auto d_x = testing::to_device(x);
      cuda::DeviceBuffer d_q(n);
      testing::poison(d_q);
      cuda::quantize_fp8_e4m3(d_x.get<cuda::bf16>(), n, scale, d_q.get<uint8_t>(), nullptr);
      QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
      const auto q = testing::to_host<uint8_t>(d_q, n);
      const float inv = 1.0f / scale;
      int bad = 0;
      for (size_t i = 0; i < n; ++i) {
        const uint8_t want = f32_to_fp8e4m3(bf16_to_f32(x[i]) * inv, /*saturate=*/true);
        if (q[i] != want && ++bad <= 5)
          ADD_FAILURE() << "n " << n << " scale " << scale << " [" << i << "] x " << bf16_to_f32(x[i]) << ": got 0x"
                        << std::hex << int(q[i]) << ", want 0x" << int(want) << std::dec;
      }
      EXPECT_EQ(bad, 0);
    }
  }
  std::vector<uint16_t> one(8, 0);
  auto d1 = testing::to_device(one);
  cuda::DeviceBuffer dq(8);
  EXPECT_THROW(cuda::quantize_fp8_e4m3(d1.get<cuda::bf16>(), 8, 0.0f, dq.get<uint8_t>(), nullptr), InvalidArgument);
}

TEST(Fp8Prefill, GemmMatchesFloat64Reference) {
  QUENCH_SKIP_WITHOUT_GPU();
  std::mt19937 rng(23);
  cuda::Fp8Gemm gemm;
  // (M, N, K): prefill-sized row counts (> 128) on a thin slice of the 12B's K = 3840 / 15360.
  for (const auto& [M, N, K] : {std::tuple{129, 64, 3840}, std::tuple{300, 256, 1024}, std::tuple{160, 48, 15360}}) {
    const std::vector<uint8_t> w = random_e4m3(size_t(N) * K, rng), x = random_e4m3(size_t(M) * K, rng);
    const float w_scale = 0.0173f, x_scale = 0.31f;
    auto d_w = testing::to_device(w), d_x = testing::to_device(x);
    cuda::DeviceBuffer d_y(size_t(M) * N * 4);
    testing::poison(d_y);
    gemm.run(d_w.get<uint8_t>(), w_scale, N, K, d_x.get<uint8_t>(), x_scale, M, d_y.get<float>(), nullptr);
    QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
    const auto y = testing::to_host<float>(d_y, size_t(M) * N);
    std::vector<float> wf(w.size()), xf(x.size()), ref(size_t(M) * N);
    for (size_t i = 0; i < w.size(); ++i) wf[i] = fp8e4m3_to_f32(w[i]);
    for (size_t i = 0; i < x.size(); ++i) xf[i] = fp8e4m3_to_f32(x[i]);
    for (int m = 0; m < M; ++m)
      for (int n = 0; n < N; ++n) {
        double acc = 0;
        const float* a = xf.data() + size_t(m) * K;
        const float* b = wf.data() + size_t(n) * K;
        for (int k = 0; k < K; ++k) acc += double(a[k]) * b[k];
        ref[size_t(m) * N + n] = static_cast<float>(acc * x_scale * w_scale);
      }
    for (size_t i = 0; i < y.size(); ++i) ASSERT_TRUE(std::isfinite(y[i])) << "y[" << i << "] not written";
    const double err = testing::rel_l2(y.data(), ref.data(), y.size());
    std::printf("[ fp8 gemm ] M=%d N=%d K=%d: rel L2 vs float64 %.3e\n", M, N, K, err);
    // Exact products, fp32 accumulation (promoted periodically: cuBLASLt fast accumulation is off);
    // a layout or scale mistake is an O(1) error.
    EXPECT_LT(err, 1e-3);
  }
  cuda::DeviceBuffer big(64 * 64 * 4);
  EXPECT_THROW(gemm.run(big.get<uint8_t>(), 1.0f, 64, 40, big.get<uint8_t>(), 1.0f, 64, big.get<float>(), nullptr),
               InvalidArgument);  // K not a multiple of 16
}

namespace fs = std::filesystem;

/// An FP8 (ModelOpt layout) copy of `src` in `dst`: every *_proj weight as E4M3 codes of
/// w / (amax / 448) with that per-tensor weight_scale, and input_scale = act_amax / 448.
void write_fp8_checkpoint(const fs::path& src, const fs::path& dst, float act_amax) {
  fs::create_directories(dst);
  for (const char* f : {"config.json", "generation_config.json"})
    if (fs::exists(src / f)) fs::copy_file(src / f, dst / f, fs::copy_options::overwrite_existing);
  auto in = SafetensorsFile::open(src / "model.safetensors");
  SafetensorsWriter w;
  const std::string suffix = "_proj.weight";
  for (const auto& [name, t] : in->tensors()) {
    if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
      w.add(t);
      continue;
    }
    const std::vector<float> v = t.to_f32();
    float amax = 0;
    for (float x : v) amax = std::max(amax, std::fabs(x));
    const float scale = amax / 448.0f, in_scale = act_amax / 448.0f;
    std::vector<uint8_t> codes(v.size());
    for (size_t i = 0; i < v.size(); ++i) codes[i] = f32_to_fp8e4m3(v[i] / scale, true);
    const std::string base = name.substr(0, name.size() - std::string(".weight").size());
    w.add(name, DType::kF8E4M3, t.shape, codes.data(), codes.size());
    w.add(base + ".weight_scale", DType::kF32, {}, &scale, sizeof(float));
    w.add(base + ".input_scale", DType::kF32, {}, &in_scale, sizeof(float));
  }
  w.write(dst / "model.safetensors");
  std::ofstream(dst / "hf_quant_config.json")
      << R"({"producer": {"name": "modelopt"}, "quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": null}})";
}

/// Prefill of a 200-token prompt (M > 128 rows: the prefill path) on an FP8 checkpoint: FP8
/// activations on the FP8 tensor cores vs the same weights dequantized to bf16 with bf16
/// activations. They differ only by the activation rounding to E4M3 (3 mantissa bits): close but
/// not equal (equal would mean the FP8 path never ran); a layout or scale mistake is O(1).
TEST(Fp8Prefill, RunnerPrefillCloseToDequantizedPath) {
  const fs::path src = fs::path(QUENCH_SOURCE_DIR) / "tests/data/golden/tiny-bf16";
  if (!fs::exists(src / "model.safetensors")) GTEST_SKIP() << "golden fixture missing: " << src;
  const fs::path dir = fs::temp_directory_path() / ("quench-fp8-prefill-" + std::to_string(::getpid()));
  write_fp8_checkpoint(src, dir, 8.0f);
  // The checkpoint loads as FP8 everywhere (checked without a GPU too).
  std::shared_ptr<const Model> model = Model::load(dir);
  const LinearWeight& q0 = model->weights().layers.at(0).q_proj;
  EXPECT_EQ(q0.format, WeightFormat::kFP8);
  EXPECT_TRUE(q0.input_scale.has_value());
  if (!cuda::cuda_device_available()) {
    fs::remove_all(dir);
    GTEST_SKIP() << "no CUDA device";
  }
  const int V = model->config().vocab_size, N = 200;
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> tok(3, V - 1);
  std::vector<int32_t> ids(N);
  for (auto& t : ids) t = tok(rng);
  KvCacheConfig kv;
  kv.block_size = 16;
  kv.num_blocks_full = kv.num_blocks_sliding = N / 16 + 2;
  std::vector<int32_t> table(N / 16 + 1);
  std::iota(table.begin(), table.end(), 0);
  std::vector<float> a(V), b(V);
  SeqStep s{ids, 0, table, table, true};
  {
    cuda::CudaModelRunner fp8(model, kv);
    ASSERT_TRUE(fp8.fp8_prefill());
    fp8.execute(std::span<const SeqStep>(&s, 1), a);
    cuda::CudaModelRunner deq(model, kv);
    deq.set_fp8_prefill(false);
    deq.execute(std::span<const SeqStep>(&s, 1), b);
  }
  fs::remove_all(dir);
  for (int v = 0; v < V; ++v) ASSERT_TRUE(std::isfinite(a[v])) << "logit " << v;
  const double err = testing::rel_l2(a.data(), b.data(), V);
  std::printf("[ fp8 prefill ] FP8 activations vs dequantized bf16 path: logits rel L2 %.3e\n", err);
  EXPECT_GT(err, 0.0);
  EXPECT_LT(err, 0.2);
}

}  // namespace
}  // namespace quench
