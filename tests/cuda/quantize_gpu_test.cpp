// tests/cuda/quantize_gpu_test.cpp: the GPU weight quantizer (backend/cuda/quantize_gpu.h) writes
// exactly the CPU quantizer's bytes (quant/nvfp4.h, quant/fp8.h) on random tensors and edge cases,
// reproduces the spec's worked example (../shared/reference/nvfp4-modelopt-format.md §10, values
// copied into this file), and `export_quantized` of models/gemma4-tiny-it on cuda and cpu gives
// byte-identical files for every scheme. Skips without a GPU.
#include <gtest/gtest.h>

#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>

#include "backend/cuda/quantize_gpu.h"
#include "core/numeric.h"
#include "cuda_test_util.h"
#include "io/safetensors.h"
#include "quant/calibration.h"
#include "quant/export.h"
#include "quant/fp8.h"
#include "quant/nvfp4.h"
#include "quant/scheme.h"
#include "quant/weight_quantizer.h"

namespace quench {
namespace {

namespace fs = std::filesystem;

/// A weight as the checkpoint stores it (raw bytes of `dtype`) and its exact fp32 values.
struct Weight {
  int64_t rows = 0, cols = 0;
  DType dtype = DType::kBF16;
  std::vector<unsigned char> bytes;
  std::vector<float> f32;
};

/// Stores fp32 values as `dtype` (RNE) and keeps the exactly-representable fp32 values.
Weight make_weight(const std::vector<float>& v, int64_t rows, int64_t cols, DType dtype) {
  Weight w{rows, cols, dtype, {}, std::vector<float>(v.size())};
  w.bytes.resize(v.size() * dtype_size(dtype));
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (dtype == DType::kBF16) {
      const uint16_t b = f32_to_bf16(v[i]);
      std::memcpy(&w.bytes[2 * i], &b, 2);
      w.f32[i] = bf16_to_f32(b);
    } else if (dtype == DType::kF16) {
      const uint16_t b = f32_to_f16(v[i]);
      std::memcpy(&w.bytes[2 * i], &b, 2);
      w.f32[i] = f16_to_f32(b);
    } else {
      std::memcpy(&w.bytes[4 * i], &v[i], 4);
      w.f32[i] = v[i];
    }
  }
  return w;
}

uint32_t bits(float f) { return std::bit_cast<uint32_t>(f); }

/// Index of the first differing byte (or -1) for a readable failure.
int64_t first_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  if (a.size() != b.size()) return 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return static_cast<int64_t>(i);
  return -1;
}

/// GPU vs CPU NVFP4 and FP8 of one weight: amax bits, global scale, every byte; rel_l2 close.
void expect_same_bytes(cuda::GpuWeightQuantizer& gpu, const Weight& w, const std::string& what) {
  SCOPED_TRACE(what);
  const float cpu_amax = abs_max(w.f32);
  const cuda::DeviceWeightInfo info = gpu.upload(0, w.bytes.data(), w.dtype, w.rows, w.cols);
  ASSERT_EQ(bits(info.amax), bits(cpu_amax)) << "amax gpu " << info.amax << " cpu " << cpu_amax;
  const auto n = static_cast<std::size_t>(w.rows * w.cols);
  if (w.cols % kNvfp4BlockSize == 0) {
    const float g = nvfp4_global_scale(cpu_amax);
    const Nvfp4Tensor ref = nvfp4_quantize(w.f32, w.rows, w.cols, g);
    std::vector<uint8_t> packed(n / 2, 0xAB), scales(n / kNvfp4BlockSize, 0xAB);
    const cuda::QuantError err = gpu.quantize_nvfp4(0, g, packed, scales);
    EXPECT_EQ(first_diff(packed, ref.packed), -1) << "NVFP4 packed codes differ";
    EXPECT_EQ(first_diff(scales, ref.scales), -1) << "NVFP4 block scales differ";
    // rel_l2 in double from the CPU dequantization (§4), summation order aside.
    double num = 0, den = 0;
    std::vector<float> row(w.cols);
    for (int64_t r = 0; r < w.rows; ++r) {
      nvfp4_dequantize_row(ref.packed.data() + r * (w.cols / 2), ref.scales.data() + r * (w.cols / 16), w.cols, g,
                           row.data());
      for (int64_t c = 0; c < w.cols; ++c) {
        const double x = w.f32[r * w.cols + c], d = x - row[c];
        num += d * d;
        den += x * x;
      }
    }
    const double want = den > 0 ? std::sqrt(num / den) : 0.0;
    if (std::isfinite(want)) {
      EXPECT_NEAR(err.rel_l2, want, 1e-9 * (1 + want));
    }
  }
  const float sc = fp8_scale(cpu_amax);
  std::vector<uint8_t> ref8(n), got8(n, 0xAB);
  fp8_quantize(w.f32, sc, ref8);
  gpu.quantize_fp8(0, sc, got8);
  EXPECT_EQ(first_diff(got8, ref8), -1) << "FP8 codes differ";
}

/// Random N(0, sigma) weights plus the edge cases of the task: a zero row, zero blocks, exact E2M1
/// ties, blocks whose scale falls in the E4M3 subnormal range or below 2^-9 (clamped), and
/// outliers. `amax_target` scales everything (huge and tiny magnitudes).
std::vector<float> edge_case_values(int64_t rows, int64_t cols, float sigma, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, sigma);
  std::vector<float> v(static_cast<std::size_t>(rows * cols));
  for (auto& x : v) x = nd(rng);
  auto block = [&](int64_t r, int64_t b) { return v.data() + r * cols + b * 16; };
  // Row 1 all zero; block (0, 1) all zero.
  if (rows > 1)
    for (int64_t c = 0; c < cols; ++c) v[cols + c] = 0.0f;
  if (cols >= 32)
    for (int i = 0; i < 16; ++i) block(0, 1)[i] = 0.0f;
  // An outlier sets the tensor amax (96 sigma, far above the normal values).
  v[std::min<int64_t>(2, rows - 1) * cols + 5] = 12.0f * sigma * 8.0f;
  // Tie blocks: block amax 6 * k * g with k an E4M3 value makes the scale exactly k and d = k * g,
  // so w = t * d with t in {0.25, 0.75, ..., 5} are exact ties (§1.3) when representable.
  const float amax = 12.0f * sigma * 8.0f;
  const float g = amax / 2688.0f;
  const float ties[] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f, -0.25f, -0.75f, -1.25f, -1.75f, -2.5f, -3.5f,
                        -5.0f, 6.0f, 0.0f};
  int r = 3;
  for (float k : {16.0f, 1.0f, 0.125f, 0.015625f, 448.0f, 3.0f}) {
    if (r >= rows) break;
    const float d = k * g;
    for (int64_t b = 0; b < std::min<int64_t>(cols / 16, 2); ++b)
      for (int i = 0; i < 16; ++i) block(r, b)[i] = ties[(i + b) % 16] * d;
    ++r;
  }
  // Subnormal-range and clamped block scales: block amax = amax * 2^-e.
  for (int e : {10, 12, 14, 16, 20, 30}) {
    if (r >= rows) break;
    for (int i = 0; i < 16; ++i) block(r, 0)[i] = std::ldexp(amax, -e) * (i % 2 ? -1.0f : 1.0f) * (i + 1) / 16.0f;
    ++r;
  }
  return v;
}

TEST(QuantizeGpu, RandomAndEdgeCasesMatchCpuBytes) {
  QUENCH_SKIP_WITHOUT_GPU();
  // Small staging buffers so uploads and downloads take many double-buffered chunks.
  cuda::GpuWeightQuantizer gpu(0, 64 << 10);
  std::mt19937 rng(20261130);
  for (DType dt : {DType::kBF16, DType::kF32, DType::kF16}) {
    for (auto [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{{37, 256}, {129, 3840}, {16, 16}, {1, 48}}) {
      const auto v = edge_case_values(rows, cols, 0.02f, rng);
      expect_same_bytes(gpu, make_weight(v, rows, cols, dt),
                        std::string(dtype_name(dt)) + " [" + std::to_string(rows) + "," + std::to_string(cols) + "]");
    }
  }
}

TEST(QuantizeGpu, HugeTinyAndZeroTensorsMatchCpuBytes) {
  QUENCH_SKIP_WITHOUT_GPU();
  cuda::GpuWeightQuantizer gpu;
  std::mt19937 rng(7);
  // Huge (amax ~ 1e36), tiny (~1e-30, NVFP4 scales clamp), bf16 subnormals (~1e-39) and F32 subnormals.
  for (float sigma : {1e35f, 1e-31f, 1e-39f}) {
    const auto v = edge_case_values(24, 512, sigma, rng);
    expect_same_bytes(gpu, make_weight(v, 24, 512, DType::kBF16), "bf16 sigma " + std::to_string(sigma));
  }
  expect_same_bytes(gpu, make_weight(edge_case_values(8, 64, 1e-42f, rng), 8, 64, DType::kF32), "f32 subnormal");
  // amax == 0: g = 0, every scale 1.0 (0x38), every code 0; FP8 scale 1.0. Negative zeros too.
  std::vector<float> zeros(32 * 64, 0.0f);
  for (std::size_t i = 0; i < zeros.size(); i += 3) zeros[i] = -0.0f;
  expect_same_bytes(gpu, make_weight(zeros, 32, 64, DType::kBF16), "all zero");
  // FP8 saturation edge: scale 2^-6 exactly (amax 7 = 448 * 2^-6), codes around 448 and its ties.
  std::vector<float> sat;
  for (float k : {448.0f, -448.0f, 444.0f, 440.0f, 436.0f, 432.0f, 416.0f, 0.5f * 0x1p-9f, 1.5f * 0x1p-9f, 0x1p-10f,
                  15.5f, 17.0f, -240.0f, 232.0f, 0.0f, -0.0f})
    sat.push_back(k * 0x1p-6f);
  expect_same_bytes(gpu, make_weight(sat, 1, 16, DType::kF32), "fp8 saturation edge");
  // A NaN inside a weight is skipped by amax and coded as the CPU codes it (NVFP4 7, FP8 0x7f).
  std::vector<float> nan = edge_case_values(4, 32, 0.1f, rng);
  nan[7] = std::numeric_limits<float>::quiet_NaN();
  expect_same_bytes(gpu, make_weight(nan, 4, 32, DType::kF32), "NaN element");
}

TEST(QuantizeGpu, SpecWorkedExampleBytes) {
  QUENCH_SKIP_WITHOUT_GPU();
  // nvfp4-modelopt-format.md §10: block of 16 bf16 values, tensor amax 10.5 elsewhere -> g = 2^-8.
  const float blk[16] = {0.8125f, -0.03515625f, 0.10546875f, -0.17578125f, 0.24609375f, 0.3515625f,
                         -0.4921875f, 0.703125f, 0.0f, -0.0625f, 0.2001953125f, -0.400390625f,
                         0.55078125f, -0.80078125f, 0.010009765625f, -0.125f};
  std::vector<float> v(32, 0.0f);
  for (int i = 0; i < 16; ++i) v[i] = blk[i];
  v[16] = 10.5f;
  const Weight w = make_weight(v, 1, 32, DType::kBF16);
  cuda::GpuWeightQuantizer gpu;
  const auto info = gpu.upload(0, w.bytes.data(), DType::kBF16, 1, 32);
  EXPECT_EQ(info.amax, 10.5f);
  const float g = nvfp4_global_scale(info.amax);
  EXPECT_EQ(bits(g), 0x3B800000u);
  std::vector<uint8_t> packed(16), scales(2);
  gpu.quantize_nvfp4(0, g, packed, scales);
  const std::vector<uint8_t> want_packed = {0x87, 0xA2, 0x44, 0x6E, 0x90, 0xD3, 0xF6, 0xA0,
                                            0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  EXPECT_EQ(packed, want_packed);
  EXPECT_EQ(scales, (std::vector<uint8_t>{0x61, 0x7E}));
  // The block as a whole tensor: g = 0.8125/2688, s = 447.99997 -> 0x7E.
  gpu.upload(1, w.bytes.data(), DType::kBF16, 1, 16);
  std::vector<uint8_t> p1(8), s1(1);
  gpu.quantize_nvfp4(1, nvfp4_global_scale(0.8125f), p1, s1);
  EXPECT_EQ(s1[0], 0x7E);
  // FP8 example: scale = 10.5 / 448; 0.2001953125 -> 0x51.
  std::vector<uint8_t> q(32);
  gpu.quantize_fp8(0, fp8_scale(10.5f), q);
  EXPECT_EQ(q[10], 0x51);
}

TEST(QuantizeGpu, AccumulateAmaxIsTheRunningMax) {
  QUENCH_SKIP_WITHOUT_GPU();
  std::mt19937 rng(99);
  std::vector<float> a, b;
  auto ab = testing::random_bf16(100003, 2.0f, rng, a);  // odd length: the grid-stride tail
  auto bb = testing::random_bf16(4096, 0.5f, rng, b);
  bb[17] = f32_to_bf16(-37.25f);  // the max comes from the second batch, negative
  b[17] = -37.25f;
  bb[18] = 0x7fc0;  // a NaN is ignored
  b[18] = 0.0f;
  auto da = testing::to_device(ab), db = testing::to_device(bb);
  std::vector<float> f32(333, -1e-3f);
  f32[5] = 12.5f;
  auto df = testing::to_device(f32);
  cuda::DeviceBuffer bits(4);
  QUENCH_CUDA_CHECK(cudaMemset(bits.get(), 0, 4));
  cuda::accumulate_amax(da.get(), DType::kBF16, static_cast<int64_t>(ab.size()), bits.get<uint32_t>(), nullptr);
  QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_EQ(testing::to_host<uint32_t>(bits, 1)[0], std::bit_cast<uint32_t>(abs_max(a)));
  cuda::accumulate_amax(db.get(), DType::kBF16, static_cast<int64_t>(bb.size()), bits.get<uint32_t>(), nullptr);
  QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_EQ(std::bit_cast<float>(testing::to_host<uint32_t>(bits, 1)[0]), std::max(abs_max(a), 37.25f));
  QUENCH_CUDA_CHECK(cudaMemset(bits.get(), 0, 4));
  cuda::accumulate_amax(df.get(), DType::kF32, static_cast<int64_t>(f32.size()), bits.get<uint32_t>(), nullptr);
  QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_EQ(std::bit_cast<float>(testing::to_host<uint32_t>(bits, 1)[0]), 12.5f);
  EXPECT_THROW(cuda::accumulate_amax(df.get(), DType::kI32, 4, bits.get<uint32_t>(), nullptr), InvalidArgument);
}

TEST(QuantizeGpu, RejectsBadShapesAndSlots) {
  QUENCH_SKIP_WITHOUT_GPU();
  cuda::GpuWeightQuantizer gpu;
  std::vector<uint8_t> out(8);
  EXPECT_THROW(gpu.quantize_fp8(3, 1.0f, out), InvalidArgument);  // never uploaded
  std::vector<uint16_t> w(24, 0x3f80);
  gpu.upload(0, w.data(), DType::kBF16, 2, 12);
  std::vector<uint8_t> p(12), s(1);
  EXPECT_THROW(gpu.quantize_nvfp4(0, 1.0f, p, s), InvalidArgument);  // 12 % 16 != 0
  std::vector<uint8_t> small(5);
  EXPECT_THROW(gpu.quantize_fp8(0, 1.0f, small), InvalidArgument);
  EXPECT_THROW(gpu.quantize_fp8(0, 0.0f, out), InvalidArgument);
  EXPECT_THROW(gpu.upload(0, w.data(), DType::kU8, 2, 12), InvalidArgument);
}

// ---- end to end: quench quantize's export on cuda vs cpu --------------------------------------------

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& tag) {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("quench-qgpu-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

/// Input amax for every Linear of the checkpoint and K/V amax per layer (made-up values: the
/// calibration is device-independent input to the export, the weights are what is compared).
ActivationAmax fake_calibration(const fs::path& model) {
  ActivationAmax a;
  float v = 0.75f;
  int layers = 0;
  for (const auto& n : Checkpoint::open(model).names())
    if (auto lm = parse_linear_weight(n)) {
      a.linear_input[lm->module] = (v += 0.37f);
      layers = std::max(layers, lm->layer + 1);
    }
  for (int l = 0; l < layers; ++l) {
    a.k_amax.push_back(2.0f + l);
    a.v_amax.push_back(3.0f + 0.5f * l);
  }
  return a;
}

TEST(QuantizeGpu, TinyModelExportIdenticalOnCudaAndCpu) {
  QUENCH_SKIP_WITHOUT_GPU();
  const fs::path model = fs::path(QUENCH_SOURCE_DIR) / "models/gemma4-tiny-it";
  ASSERT_TRUE(fs::exists(model / "model.safetensors")) << model;
  const ActivationAmax calib = fake_calibration(model);
  for (QuantScheme s : {QuantScheme::kNvfp4Mlp, QuantScheme::kNvfp4, QuantScheme::kFp8, QuantScheme::kNvfp4MlpFp8Attn}) {
    SCOPED_TRACE(std::string(quant_scheme_name(s)));
    const bool with_calib = s != QuantScheme::kNvfp4Mlp;  // nvfp4-mlp also as W4A16 (no calibration)
    TempDir cpu_dir("cpu"), gpu_dir("cuda");
    ExportOptions o;
    o.scheme = s;
    o.kv_cache_fp8 = with_calib;
    o.device = QuantDevice::kCpu;
    const ExportReport rc = export_quantized(model, cpu_dir.path, o, with_calib ? &calib : nullptr);
    o.device = QuantDevice::kCuda;
    const ExportReport rg = export_quantized(model, gpu_dir.path, o, with_calib ? &calib : nullptr);
    EXPECT_EQ(rc.device.rfind("cpu", 0), 0u) << rc.device;
    EXPECT_EQ(rg.device.rfind("cuda", 0), 0u) << rg.device;
    ASSERT_EQ(rc.linears.size(), rg.linears.size());
    for (std::size_t i = 0; i < rc.linears.size(); ++i) {
      EXPECT_EQ(rc.linears[i].weight_amax, rg.linears[i].weight_amax) << rc.linears[i].module;
      EXPECT_NEAR(rc.linears[i].rel_l2, rg.linears[i].rel_l2, 1e-9) << rc.linears[i].module;
    }
    int files = 0;
    for (const auto& e : fs::directory_iterator(cpu_dir.path)) {
      const fs::path other = gpu_dir.path / e.path().filename();
      ASSERT_TRUE(fs::exists(other)) << other;
      EXPECT_TRUE(read_bytes(e.path()) == read_bytes(other)) << e.path().filename() << " differs";
      ++files;
    }
    EXPECT_GE(files, 3);  // model.safetensors, config.json, hf_quant_config.json (+ copied files)
    EXPECT_EQ(std::distance(fs::directory_iterator(gpu_dir.path), fs::directory_iterator{}), files);
  }
}

TEST(QuantizeGpu, AutoPicksCudaWhenPresent) {
  QUENCH_SKIP_WITHOUT_GPU();
  EXPECT_TRUE(cuda_quantizer_available());
  EXPECT_EQ(make_weight_quantizer(QuantDevice::kAuto)->device(), QuantDevice::kCuda);
  EXPECT_EQ(make_weight_quantizer(QuantDevice::kCpu)->device(), QuantDevice::kCpu);
}

TEST(QuantizeGpu, WithoutGpuAutoIsCpuAndCudaIsAClearError) {
  EXPECT_EQ(parse_quant_device("auto"), QuantDevice::kAuto);
  EXPECT_EQ(parse_quant_device("cuda"), QuantDevice::kCuda);
  EXPECT_THROW(parse_quant_device("gpu"), InvalidArgument);
  if (cuda::cuda_device_available()) GTEST_SKIP() << "a CUDA device is present (covered by AutoPicksCudaWhenPresent)";
  EXPECT_FALSE(cuda_quantizer_available());
  EXPECT_EQ(make_weight_quantizer(QuantDevice::kAuto)->device(), QuantDevice::kCpu);
  try {
    make_weight_quantizer(QuantDevice::kCuda);
    ADD_FAILURE() << "--device cuda without a device did not throw";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("--device cuda"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace quench
