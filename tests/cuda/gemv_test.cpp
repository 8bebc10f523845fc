// tests/cuda/gemv_test.cpp: the decode GEMMs (bf16, FP8, NVFP4), their fused launches (several
// Linears in one launch; gate/up + GELU) and the bf16 dequantization kernels, against
// dequantize-on-the-CPU (io/dequant.h) then matmul in double, on fresh random data each check,
// with poisoned (NaN) outputs so any unwritten element fails.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>

#include "backend/cuda/gemv_variant.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/linear.h"
#include "cuda_test_util.h"
#include "io/dequant.h"

namespace quench {
namespace {

using testing::rel_l2;

/// A fresh seed per check (printed on failure through SCOPED_TRACE).
uint32_t fresh_seed() {
  static std::random_device rd;
  return rd();
}

/// One random weight of a format, on the host (raw bytes and the CPU dequantization) and device.
struct RandomWeight {
  cuda::GemvFormat format;
  int N, K;
  std::vector<uint8_t> data, scales;  // raw bytes as the device holds them
  float scale = 1.0f;
  std::vector<float> wf;              // [N, K] dequantized on the CPU
  cuda::DeviceBuffer d_data, d_scales;

  RandomWeight(cuda::GemvFormat f, int n, int k, std::mt19937& rng) : format(f), N(n), K(k) {
    std::uniform_int_distribution<int> byte(0, 255);
    const size_t nk = static_cast<size_t>(N) * K;
    if (f == cuda::GemvFormat::kBF16) {
      std::vector<uint16_t> w = testing::random_bf16(nk, 0.05f, rng, wf);
      data.resize(nk * 2);
      std::memcpy(data.data(), w.data(), data.size());
    } else if (f == cuda::GemvFormat::kFP8) {
      data.resize(nk);
      for (auto& b : data) {
        do b = static_cast<uint8_t>(byte(rng));
        while ((b & 0x7f) == 0x7f);  // no NaN codes (subnormal codes included)
      }
      scale = std::uniform_real_distribution<float>(0.002f, 0.03f)(rng);
      TensorView tv{"w", DType::kF8E4M3, {N, K}, reinterpret_cast<const std::byte*>(data.data()), data.size()};
      wf = dequant_fp8(tv, scale);
    } else {
      data.resize(nk / 2);
      scales.resize(nk / 16);
      for (auto& b : data) b = static_cast<uint8_t>(byte(rng));
      // Block scales over the whole E4M3 range, subnormals and 448 included, mostly mid-range.
      std::uniform_int_distribution<int> mid(0x28, 0x48), any(0x00, 0x7e), pick(0, 9);
      for (auto& b : scales) b = static_cast<uint8_t>(pick(rng) == 0 ? any(rng) : mid(rng));
      scale = std::uniform_real_distribution<float>(2e-4f, 2e-3f)(rng);
      TensorView tq{"w", DType::kU8, {N, K / 2}, reinterpret_cast<const std::byte*>(data.data()), data.size()};
      TensorView ts{"s", DType::kF8E4M3, {N, K / 16}, reinterpret_cast<const std::byte*>(scales.data()),
                    scales.size()};
      wf = dequant_nvfp4(tq, ts, scale);
    }
    d_data = testing::to_device(data);
    if (!scales.empty()) d_scales = testing::to_device(scales);
  }

  cuda::GemvJob job(float* y) const {
    return {format, d_data.get(), scales.empty() ? nullptr : d_scales.get<uint8_t>(), scale, N, y};
  }

  /// A DeviceLinear holding copies of the same bytes (for LinearExecutor).
  cuda::DeviceLinear linear() const {
    cuda::DeviceLinear L;
    L.format = format == cuda::GemvFormat::kBF16  ? WeightFormat::kBF16
               : format == cuda::GemvFormat::kFP8 ? WeightFormat::kFP8
                                                  : WeightFormat::kNVFP4;
    L.N = N;
    L.K = K;
    L.data = testing::to_device(data);
    if (!scales.empty()) L.block_scales = testing::to_device(scales);
    L.scale = scale;
    return L;
  }
};

/// Random activations x bf16 [M, K] on the device; xf the exact values.
struct RandomInput {
  std::vector<float> xf;
  cuda::DeviceBuffer d;
  RandomInput(int M, int K, std::mt19937& rng) { d = testing::to_device(testing::random_bf16(size_t(M) * K, 1.0f, rng, xf)); }
  const cuda::bf16* get() const { return d.get<cuda::bf16>(); }
};

/// y[m, n] = sum_k x[m, k] W[n, k] in double.
std::vector<double> reference(const std::vector<float>& W, const std::vector<float>& x, int N, int K, int M) {
  std::vector<double> y(static_cast<size_t>(M) * N);
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double s = 0;
      const float* w = &W[static_cast<size_t>(n) * K];
      const float* xr = &x[static_cast<size_t>(m) * K];
      for (int k = 0; k < K; ++k) s += static_cast<double>(w[k]) * xr[k];
      y[static_cast<size_t>(m) * N + n] = s;
    }
  return y;
}

/// fp32 accumulation (tensor cores) against double: ||y - ref|| / ||ref|| < 1e-4 and every
/// element within 1e-3 of the reference's RMS (so one wrong row cannot hide in the norm).
void expect_close(const std::vector<float>& y, const std::vector<double>& ref, const std::string& what) {
  ASSERT_EQ(y.size(), ref.size());
  double num = 0, den = 0, worst = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    ASSERT_TRUE(std::isfinite(y[i])) << what << ": element " << i << " not written / not finite";
    const double d = y[i] - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
    worst = std::max(worst, std::abs(d));
  }
  const double rms = std::sqrt(den / static_cast<double>(y.size()));
  EXPECT_LT(std::sqrt(num / den), 1e-4) << what;
  EXPECT_LT(worst, 1e-3 * rms) << what;
}

const char* name_of(cuda::GemvFormat f) {
  return f == cuda::GemvFormat::kBF16 ? "bf16" : f == cuda::GemvFormat::kFP8 ? "fp8" : "nvfp4";
}

struct Shape {
  int N, K, M;
};

/// Runs `fn` once with each decode-GEMV kernel forced (gemv_variant.h), then restores kAuto: the
/// register kernel and the shared-memory ring kernel (shapes the ring does not take fall back to
/// the register kernel, so those run it twice).
template <class Fn>
void for_each_kernel(Fn&& fn) {
  for (cuda::GemvKernel k : {cuda::GemvKernel::kRegisters, cuda::GemvKernel::kRing, cuda::GemvKernel::kAuto}) {
    SCOPED_TRACE(k == cuda::GemvKernel::kRegisters ? "register kernel"
                 : k == cuda::GemvKernel::kRing    ? "ring kernel"
                                                   : "auto");
    cuda::set_gemv_kernel(k);
    fn();
  }
  cuda::set_gemv_kernel(cuda::GemvKernel::kAuto);
}

class GemvTest : public ::testing::TestWithParam<Shape> {};

/// gemv_bf16 / gemv_fp8 / gemv_nvfp4 (the single-job entry points) for one format.
void check_single_once(cuda::GemvFormat f, Shape s) {
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(std::string(name_of(f)) + " N=" + std::to_string(s.N) + " K=" + std::to_string(s.K) +
               " M=" + std::to_string(s.M) + " seed=" + std::to_string(seed));
  std::mt19937 rng(seed);
  RandomWeight w(f, s.N, s.K, rng);
  RandomInput x(s.M, s.K, rng);
  cuda::DeviceBuffer dy(static_cast<size_t>(s.M) * s.N * 4);
  testing::poison(dy);
  if (f == cuda::GemvFormat::kBF16)
    cuda::gemv_bf16(w.d_data.get<cuda::bf16>(), s.N, s.K, x.get(), s.M, dy.get<float>(), nullptr);
  else if (f == cuda::GemvFormat::kFP8)
    cuda::gemv_fp8(w.d_data.get<uint8_t>(), w.scale, s.N, s.K, x.get(), s.M, dy.get<float>(), nullptr);
  else
    cuda::gemv_nvfp4(w.d_data.get<uint8_t>(), w.d_scales.get<uint8_t>(), w.scale, s.N, s.K, x.get(), s.M,
                     dy.get<float>(), nullptr);
  QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
  expect_close(testing::to_host<float>(dy, static_cast<size_t>(s.M) * s.N), reference(w.wf, x.xf, s.N, s.K, s.M),
               name_of(f));
}

void check_single(cuda::GemvFormat f, Shape s) {
  for_each_kernel([&] { check_single_once(f, s); });
}

TEST_P(GemvTest, Bf16MatchesReference) {
  QUENCH_SKIP_WITHOUT_GPU();
  check_single(cuda::GemvFormat::kBF16, GetParam());
}

TEST_P(GemvTest, Fp8MatchesReference) {
  QUENCH_SKIP_WITHOUT_GPU();
  check_single(cuda::GemvFormat::kFP8, GetParam());
}

TEST_P(GemvTest, Nvfp4MatchesDequantizedReference) {
  QUENCH_SKIP_WITHOUT_GPU();
  check_single(cuda::GemvFormat::kNVFP4, GetParam());
}

// Shapes: 12B-sized (K = 3840 / 15360), every tiling the launcher picks (few blocks: 8 pieces per
// lane; N = 15360 NVFP4 and N = 17000: two 16-row tiles per block), K a multiple of 16 but not 32
// (NVFP4 rows not 16-byte aligned: the 8-byte path), N not a multiple of the block's 16 / 32
// rows, tiny K (fewer pieces than lanes).
INSTANTIATE_TEST_SUITE_P(Shapes, GemvTest,
                         ::testing::Values(Shape{64, 64, 1}, Shape{256, 3840, 1}, Shape{513, 1024, 3},
                                           Shape{3840, 15360, 1}, Shape{15360, 3840, 8}, Shape{100, 512, 5},
                                           Shape{37, 208, 2}, Shape{1000, 48, 7}, Shape{8470, 272, 4},
                                           Shape{300, 784, 8}, Shape{17, 16, 6}, Shape{17000, 64, 3}),
                         [](const ::testing::TestParamInfo<Shape>& i) {
                           return "N" + std::to_string(i.param.N) + "_K" + std::to_string(i.param.K) + "_M" +
                                  std::to_string(i.param.M);
                         });

TEST(GemvAllRows, EveryMFrom1To8EveryFormat) {
  QUENCH_SKIP_WITHOUT_GPU();
  for (cuda::GemvFormat f : {cuda::GemvFormat::kBF16, cuda::GemvFormat::kFP8, cuda::GemvFormat::kNVFP4})
    for (int M = 1; M <= 8; ++M) {
      check_single(f, {131, 1024, M});
      check_single(f, {70, 400, M});  // K % 32 == 16
    }
}

TEST(GemvAllRows, RejectsBadShapes) {
  std::vector<float> y(4);
  EXPECT_THROW(cuda::gemv_bf16(nullptr, 4, 64, nullptr, 9, y.data(), nullptr), InvalidArgument);
  EXPECT_THROW(cuda::gemv_bf16(nullptr, 4, 64, nullptr, 0, y.data(), nullptr), InvalidArgument);
  EXPECT_THROW(cuda::gemv_nvfp4(nullptr, nullptr, 1.0f, 4, 40, nullptr, 1, y.data(), nullptr), InvalidArgument);
  EXPECT_THROW(cuda::gemv_fp8(nullptr, 1.0f, 4, 24, nullptr, 1, y.data(), nullptr), InvalidArgument);
}

/// gemv_multi on q/k/v-like jobs of one format equals the reference of each job.
TEST(GemvMulti, ThreeJobsOneLaunchMatchReference) {
  QUENCH_SKIP_WITHOUT_GPU();
  for (cuda::GemvFormat f : {cuda::GemvFormat::kBF16, cuda::GemvFormat::kFP8, cuda::GemvFormat::kNVFP4})
    for (int M : {1, 5, 8}) {
      const uint32_t seed = fresh_seed();
      SCOPED_TRACE(std::string(name_of(f)) + " M=" + std::to_string(M) + " seed=" + std::to_string(seed));
      std::mt19937 rng(seed);
      const int K = 768;
      const int Ns[3] = {520, 130, 48};
      std::vector<RandomWeight> w;
      for (int N : Ns) w.emplace_back(f, N, K, rng);
      RandomInput x(M, K, rng);
      std::vector<cuda::DeviceBuffer> ys;
      cuda::GemvJob jobs[3];
      for (int j = 0; j < 3; ++j) {
        ys.emplace_back(static_cast<size_t>(M) * Ns[j] * 4);
        testing::poison(ys.back());
        jobs[j] = w[j].job(ys.back().get<float>());
      }
      for_each_kernel([&] {
        for (auto& y : ys) testing::poison(y);
        cuda::gemv_multi(jobs, 3, K, x.get(), M, nullptr);
        QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
        for (int j = 0; j < 3; ++j)
          expect_close(testing::to_host<float>(ys[j], static_cast<size_t>(M) * Ns[j]),
                       reference(w[j].wf, x.xf, Ns[j], K, M), "job " + std::to_string(j));
      });
    }
}

/// Shapes aimed at the ring kernel's edges (gemv_ring.cu), each under both kernels: K with fewer
/// 128-byte spans per row than warps (K = 256), one more span than warps (NVFP4 K = 4352: 17),
/// several spans per warp with a remainder (K = 15360 NVFP4: 60); N from 1 row (one block) to
/// row ranges that are not multiples of the 16-row tile; jobs whose rows straddle a tile.
TEST(GemvRing, EdgeShapesEveryFormat) {
  QUENCH_SKIP_WITHOUT_GPU();
  const Shape shapes[] = {{1, 256, 1},     {17, 256, 8},    {700, 4352, 2},  {3001, 768, 1},
                          {531, 3840, 4},  {2222, 256, 6},  {129, 15360, 1}, {4100, 1024, 3},
                          {90, 4352, 7},   {16, 512, 5}};
  for (cuda::GemvFormat f : {cuda::GemvFormat::kBF16, cuda::GemvFormat::kFP8, cuda::GemvFormat::kNVFP4})
    for (const Shape& s : shapes) check_single(f, s);
}

std::vector<float> gelu_mul_reference(const std::vector<double>& g, const std::vector<double>& u);

/// The ring kernel with every warp grouping forced (1, 2, 4, 8, 16 warps per tile): plain and
/// gate/up launches, tiles per block below and above the group count.
TEST(GemvRing, EveryGroupWidth) {
  QUENCH_SKIP_WITHOUT_GPU();
  cuda::set_gemv_kernel(cuda::GemvKernel::kRing);
  for (int gw : {1, 2, 4, 8, 16}) {
    SCOPED_TRACE("group warps " + std::to_string(gw));
    cuda::set_gemv_ring_group_warps(gw);
    for (cuda::GemvFormat f : {cuda::GemvFormat::kBF16, cuda::GemvFormat::kNVFP4})
      for (const Shape& s : {Shape{3001, 768, 1}, Shape{130, 4352, 3}, Shape{9000, 256, 8}}) check_single_once(f, s);
    const uint32_t seed = fresh_seed();
    SCOPED_TRACE("gate/up seed=" + std::to_string(seed));
    std::mt19937 rng(seed);
    const int N = 2050, K = 1024, M = 2;
    RandomWeight gate(cuda::GemvFormat::kNVFP4, N, K, rng), up(cuda::GemvFormat::kNVFP4, N, K, rng);
    RandomInput x(M, K, rng);
    const size_t n = static_cast<size_t>(M) * N;
    const auto ref = gelu_mul_reference(reference(gate.wf, x.xf, N, K, M), reference(up.wf, x.xf, N, K, M));
    cuda::DeviceBuffer act(n * 2);
    testing::poison(act);
    cuda::gemv_gate_up_gelu(gate.job(nullptr), up.job(nullptr), K, x.get(), M, act.get<cuda::bf16>(), nullptr);
    QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
    const auto got = testing::to_host<uint16_t>(act, n);
    double num = 0, den = 0;
    for (size_t i = 0; i < n; ++i) {
      const float v = bf16_to_f32(got[i]);
      ASSERT_TRUE(std::isfinite(v)) << "act element " << i << " not written";
      num += (v - ref[i]) * double(v - ref[i]);
      den += double(ref[i]) * ref[i];
    }
    EXPECT_LT(std::sqrt(num / den), 1e-2);
  }
  cuda::set_gemv_ring_group_warps(0);
  cuda::set_gemv_kernel(cuda::GemvKernel::kAuto);
}

/// The NVFP4 register kernel compiled for 3 blocks per SM (set_gemv_register_blocks): every tiling
/// it picks (one / two tiles per block, 16- and 8-byte pieces), plain and gate/up.
TEST(GemvRegisters, ThreeBlocksPerSmNvfp4) {
  QUENCH_SKIP_WITHOUT_GPU();
  cuda::set_gemv_kernel(cuda::GemvKernel::kRegisters);
  cuda::set_gemv_register_blocks(3);
  for (const Shape& s : {Shape{3840, 4096, 1}, Shape{9000, 512, 8}, Shape{700, 400, 3}, Shape{130, 15360, 2}})
    check_single_once(cuda::GemvFormat::kNVFP4, s);
  for (int N : {200, 8500}) {
    const uint32_t seed = fresh_seed();
    SCOPED_TRACE("gate/up N=" + std::to_string(N) + " seed=" + std::to_string(seed));
    std::mt19937 rng(seed);
    const int K = 1024, M = 4;
    RandomWeight gate(cuda::GemvFormat::kNVFP4, N, K, rng), up(cuda::GemvFormat::kNVFP4, N, K, rng);
    RandomInput x(M, K, rng);
    const size_t n = static_cast<size_t>(M) * N;
    const auto ref = gelu_mul_reference(reference(gate.wf, x.xf, N, K, M), reference(up.wf, x.xf, N, K, M));
    cuda::DeviceBuffer act(n * 2);
    testing::poison(act);
    cuda::gemv_gate_up_gelu(gate.job(nullptr), up.job(nullptr), K, x.get(), M, act.get<cuda::bf16>(), nullptr);
    QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
    const auto got = testing::to_host<uint16_t>(act, n);
    double num = 0, den = 0;
    for (size_t i = 0; i < n; ++i) {
      const float v = bf16_to_f32(got[i]);
      ASSERT_TRUE(std::isfinite(v)) << "act element " << i << " not written";
      num += (v - ref[i]) * double(v - ref[i]);
      den += double(ref[i]) * ref[i];
    }
    EXPECT_LT(std::sqrt(num / den), 1e-2);
  }
  cuda::set_gemv_register_blocks(0);
  cuda::set_gemv_kernel(cuda::GemvKernel::kAuto);
}

/// The MLP chain gate/up+GELU -> down launched back to back with programmatic dependent launch on
/// a created stream (each GEMV requests weights before waiting on the previous kernel) equals, bit
/// for bit, the same chain on the legacy stream (no PDL): down must not read act before gate/up
/// wrote it, gate/up must not overwrite act while the previous down still reads it. Both kernels.
TEST(GemvPdl, MlpChainEqualsWithoutPdl) {
  QUENCH_SKIP_WITHOUT_GPU();
  const bool pdl_before = cuda::programmatic_dependent_launch();
  cudaStream_t stream;
  QUENCH_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  for (cuda::GemvFormat f : {cuda::GemvFormat::kBF16, cuda::GemvFormat::kNVFP4}) {
    const uint32_t seed = fresh_seed();
    SCOPED_TRACE(std::string(name_of(f)) + " seed=" + std::to_string(seed));
    std::mt19937 rng(seed);
    const int H = 1024, I = 4096, M = 2, kRounds = 6;
    RandomWeight gate(f, I, H, rng), up(f, I, H, rng), down(f, H, I, rng);
    std::vector<RandomInput> xs;
    for (int r = 0; r < kRounds; ++r) xs.emplace_back(M, H, rng);
    cuda::DeviceBuffer act(static_cast<size_t>(M) * I * 2), y(static_cast<size_t>(kRounds) * M * H * 4);
    auto chain = [&](cudaStream_t s) {
      testing::poison(y);
      QUENCH_CUDA_CHECK(cudaDeviceSynchronize());  // the memset is not ordered with `s`
      for (int r = 0; r < kRounds; ++r) {
        cuda::gemv_gate_up_gelu(gate.job(nullptr), up.job(nullptr), H, xs[r].get(), M, act.get<cuda::bf16>(), s);
        const cuda::GemvJob jd = down.job(y.get<float>() + static_cast<size_t>(r) * M * H);
        cuda::gemv_multi(&jd, 1, I, act.get<cuda::bf16>(), M, s);
      }
      QUENCH_CUDA_CHECK(cudaStreamSynchronize(s));
      QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
      return testing::to_host<float>(y, static_cast<size_t>(kRounds) * M * H);
    };
    for_each_kernel([&] {
      cuda::set_programmatic_dependent_launch(false);
      const auto ref = chain(nullptr);
      cuda::set_programmatic_dependent_launch(true);
      const auto got = chain(stream);
      size_t diff = 0;
      for (size_t i = 0; i < ref.size(); ++i) diff += std::memcmp(&ref[i], &got[i], 4) != 0;
      EXPECT_EQ(diff, 0u) << "outputs differ with PDL";
    });
  }
  cuda::set_programmatic_dependent_launch(pdl_before);
  QUENCH_CUDA_CHECK(cudaStreamDestroy(stream));
}

/// Four jobs with row counts that are not multiples of 16 (tiles straddle jobs) on ring shapes.
TEST(GemvRing, FourJobsStraddlingTiles) {
  QUENCH_SKIP_WITHOUT_GPU();
  for (cuda::GemvFormat f : {cuda::GemvFormat::kBF16, cuda::GemvFormat::kFP8, cuda::GemvFormat::kNVFP4})
    for (int M : {1, 4, 8}) {
      const uint32_t seed = fresh_seed();
      SCOPED_TRACE(std::string(name_of(f)) + " M=" + std::to_string(M) + " seed=" + std::to_string(seed));
      std::mt19937 rng(seed);
      const int K = 1024;
      const int Ns[4] = {1027, 5, 333, 64};
      std::vector<RandomWeight> w;
      for (int N : Ns) w.emplace_back(f, N, K, rng);
      RandomInput x(M, K, rng);
      std::vector<cuda::DeviceBuffer> ys;
      cuda::GemvJob jobs[4];
      for (int j = 0; j < 4; ++j) {
        ys.emplace_back(static_cast<size_t>(M) * Ns[j] * 4);
        jobs[j] = w[j].job(ys.back().get<float>());
      }
      for_each_kernel([&] {
        for (auto& y : ys) testing::poison(y);
        cuda::gemv_multi(jobs, 4, K, x.get(), M, nullptr);
        QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
        for (int j = 0; j < 4; ++j)
          expect_close(testing::to_host<float>(ys[j], static_cast<size_t>(M) * Ns[j]),
                       reference(w[j].wf, x.xf, Ns[j], K, M), "job " + std::to_string(j));
      });
    }
}

/// bf16(gelu_tanh(g) * u) in double from the double references (PyTorch approximate="tanh").
std::vector<float> gelu_mul_reference(const std::vector<double>& g, const std::vector<double>& u) {
  std::vector<float> a(g.size());
  for (size_t i = 0; i < g.size(); ++i) {
    const double v = g[i];
    const double gl = 0.5 * v * (1.0 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
    a[i] = bf16_to_f32(f32_to_bf16(static_cast<float>(gl * u[i])));
  }
  return a;
}

/// The fused gate/up/GELU launch (M <= 8) and LinearExecutor's unfused fallback (M > 8) against
/// the double reference, and the fused launch against the unfused kernels (gemv + gelu_tanh_mul).
TEST(GemvGateUp, FusedMatchesUnfusedAndReference) {
  QUENCH_SKIP_WITHOUT_GPU();
  cuda::LinearExecutor exec;
  for (cuda::GemvFormat f : {cuda::GemvFormat::kBF16, cuda::GemvFormat::kFP8, cuda::GemvFormat::kNVFP4})
    for (int M : {1, 3, 8, 12}) {
      for (int N : {200, 8500}) {
        if (N == 8500 && M == 12) continue;  // the cuBLAS fallback is covered by N = 200
        const uint32_t seed = fresh_seed();
        SCOPED_TRACE(std::string(name_of(f)) + " N=" + std::to_string(N) + " M=" + std::to_string(M) +
                     " seed=" + std::to_string(seed));
        std::mt19937 rng(seed);
        const int K = 496;  // K % 32 == 16
        RandomWeight gate(f, N, K, rng), up(f, N, K, rng);
        RandomInput x(M, K, rng);
        const size_t n = static_cast<size_t>(M) * N;
        const cuda::DeviceLinear lg = gate.linear(), lu = up.linear();
        cuda::DeviceBuffer act(n * 2), act_ref(n * 2), yg(n * 4), yu(n * 4);
        testing::poison(act);
        exec.run_gate_up_gelu(lg, lu, x.get(), M, act.get<cuda::bf16>());
        QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
        const auto got = testing::to_host<uint16_t>(act, n);
        const auto ref = gelu_mul_reference(reference(gate.wf, x.xf, N, K, M), reference(up.wf, x.xf, N, K, M));
        double num = 0, den = 0;
        for (size_t i = 0; i < n; ++i) {
          const float v = bf16_to_f32(got[i]);
          ASSERT_TRUE(std::isfinite(v)) << "act element " << i << " not written";
          num += (v - ref[i]) * double(v - ref[i]);
          den += double(ref[i]) * ref[i];
        }
        EXPECT_LT(std::sqrt(num / den), 1e-2) << "bf16 output against the double reference";
        if (M > cuda::kGemvMaxRows) continue;
        // Unfused kernels on the same data: each element within one bf16 rounding step.
        testing::poison(act_ref);
        cuda::GemvJob jg = gate.job(yg.get<float>()), ju = up.job(yu.get<float>());
        cuda::gemv_multi(&jg, 1, K, x.get(), M, nullptr);
        cuda::gemv_multi(&ju, 1, K, x.get(), M, nullptr);
        cuda::gelu_tanh_mul(yg.get<float>(), N, yu.get<float>(), N, M, N, act_ref.get<cuda::bf16>(), nullptr);
        QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
        const auto unf = testing::to_host<uint16_t>(act_ref, n);
        size_t far = 0;
        for (size_t i = 0; i < n; ++i) {
          const float a = bf16_to_f32(got[i]), b = bf16_to_f32(unf[i]);
          far += std::abs(a - b) > std::abs(b) * (1.0f / 128) + 1e-30f;
        }
        EXPECT_EQ(far, 0u) << "fused and unfused GeGLU differ by more than one bf16 step";
      }
    }
}

/// gemv_gate_up_gelu on shapes the ring kernel takes (K % 256 == 0), N not a multiple of its
/// 8-row gate/up tiles, every M, each kernel: against the double reference.
TEST(GemvRing, GateUpGeluEveryM) {
  QUENCH_SKIP_WITHOUT_GPU();
  for (cuda::GemvFormat f : {cuda::GemvFormat::kBF16, cuda::GemvFormat::kFP8, cuda::GemvFormat::kNVFP4})
    for (int M = 1; M <= cuda::kGemvMaxRows; ++M) {
      const int N = M % 2 ? 1203 : 77, K = M % 3 ? 768 : 3840;
      const uint32_t seed = fresh_seed();
      SCOPED_TRACE(std::string(name_of(f)) + " N=" + std::to_string(N) + " K=" + std::to_string(K) +
                   " M=" + std::to_string(M) + " seed=" + std::to_string(seed));
      std::mt19937 rng(seed);
      RandomWeight gate(f, N, K, rng), up(f, N, K, rng);
      RandomInput x(M, K, rng);
      const size_t n = static_cast<size_t>(M) * N;
      const auto ref = gelu_mul_reference(reference(gate.wf, x.xf, N, K, M), reference(up.wf, x.xf, N, K, M));
      cuda::DeviceBuffer act(n * 2);
      for_each_kernel([&] {
        testing::poison(act);
        cuda::gemv_gate_up_gelu(gate.job(nullptr), up.job(nullptr), K, x.get(), M, act.get<cuda::bf16>(), nullptr);
        QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
        const auto got = testing::to_host<uint16_t>(act, n);
        double num = 0, den = 0;
        for (size_t i = 0; i < n; ++i) den += double(ref[i]) * ref[i];
        const double rms = std::sqrt(den / static_cast<double>(n));
        size_t far = 0;
        for (size_t i = 0; i < n; ++i) {
          const float v = bf16_to_f32(got[i]);
          ASSERT_TRUE(std::isfinite(v)) << "act element " << i << " not written";
          num += (v - ref[i]) * double(v - ref[i]);
          // One bf16 step (2^-7 relative at most) plus the fp32 accumulation error.
          far += std::abs(v - ref[i]) > std::abs(ref[i]) / 100.0 + 1e-3 * rms;
        }
        EXPECT_LT(std::sqrt(num / den), 1e-2);
        EXPECT_EQ(far, 0u) << "elements far from the reference";
      });
    }
}

/// LinearExecutor::run_multi: one launch for M <= 8, one run() per job beyond.
TEST(GemvMulti, ExecutorRunMultiMatchesReference) {
  QUENCH_SKIP_WITHOUT_GPU();
  cuda::LinearExecutor exec;
  for (cuda::GemvFormat f : {cuda::GemvFormat::kBF16, cuda::GemvFormat::kNVFP4})
    for (int M : {2, 8, 11}) {
      const uint32_t seed = fresh_seed();
      SCOPED_TRACE(std::string(name_of(f)) + " M=" + std::to_string(M) + " seed=" + std::to_string(seed));
      std::mt19937 rng(seed);
      const int K = 512;
      RandomWeight q(f, 256, K, rng), k(f, 64, K, rng);
      RandomInput x(M, K, rng);
      const cuda::DeviceLinear lq = q.linear(), lk = k.linear();
      cuda::DeviceBuffer yq(size_t(M) * 256 * 4), yk(size_t(M) * 64 * 4);
      testing::poison(yq);
      testing::poison(yk);
      const cuda::LinearJob jobs[2] = {{&lq, yq.get<float>()}, {&lk, yk.get<float>()}};
      exec.run_multi(jobs, x.get(), M);
      QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
      // cuBLAS (M > 8) may use reduced-precision reductions of bf16 products: looser bound there.
      auto check = [&](const cuda::DeviceBuffer& d, const RandomWeight& w, const char* what) {
        const auto y = testing::to_host<float>(d, size_t(M) * w.N);
        const auto r = reference(w.wf, x.xf, w.N, K, M);
        if (M <= cuda::kGemvMaxRows) {
          expect_close(y, r, what);
        } else {
          std::vector<float> rf(r.begin(), r.end());
          EXPECT_LT(rel_l2(y.data(), rf.data(), y.size()), 1e-2) << what;
        }
      };
      check(yq, q, "q");
      check(yk, k, "k");
    }
}

/// The prefill path's dequantization: every bf16 equals the CPU dequantized value rounded once.
TEST(GemvDequant, Nvfp4AndFp8BitExact) {
  QUENCH_SKIP_WITHOUT_GPU();
  for (const auto& [N, K] : std::vector<std::pair<int, int>>{{3, 48}, {64, 64}, {513, 1024}, {1000, 3840}}) {
    const uint32_t seed = fresh_seed();
    SCOPED_TRACE("N=" + std::to_string(N) + " K=" + std::to_string(K) + " seed=" + std::to_string(seed));
    std::mt19937 rng(seed);
    for (cuda::GemvFormat f : {cuda::GemvFormat::kFP8, cuda::GemvFormat::kNVFP4}) {
      RandomWeight w(f, N, K, rng);
      cuda::DeviceBuffer out(static_cast<size_t>(N) * K * 2);
      testing::poison(out);
      if (f == cuda::GemvFormat::kFP8)
        cuda::dequant_fp8_to_bf16(w.d_data.get<uint8_t>(), w.scale, N, K, out.get<cuda::bf16>(), nullptr);
      else
        cuda::dequant_nvfp4_to_bf16(w.d_data.get<uint8_t>(), w.d_scales.get<uint8_t>(), w.scale, N, K,
                                    out.get<cuda::bf16>(), nullptr);
      QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
      const auto wb = testing::to_host<uint16_t>(out, static_cast<size_t>(N) * K);
      size_t bad = 0, first = 0;
      for (size_t i = 0; i < wb.size(); ++i)
        if (wb[i] != f32_to_bf16(w.wf[i]) && bad++ == 0) first = i;
      EXPECT_EQ(bad, 0u) << name_of(f) << ": first mismatch at " << first << ": got " << wb[first] << " want "
                         << f32_to_bf16(w.wf[first]);
    }
  }
}

}  // namespace
}  // namespace quench
