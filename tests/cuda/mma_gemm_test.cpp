// tests/cuda/mma_gemm_test.cpp: the tensor-core weight-only GEMM (bf16, FP8, NVFP4 weights) against
// CPU dequantization (io/dequant.h) then a float64 matmul, on fresh random data per case, with
// NaN-poisoned outputs. Shapes have K a multiple of 16 but not of the kernel's K chunk (32/64/128)
// and N not a multiple of its row tile, so the tails, the 8-byte-aligned NVFP4 rows (K % 32 != 0)
// and the unaligned block-scale rows (K % 64 != 0) are exercised; M spans one to many token tiles.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "backend/cuda/kernels.h"
#include "backend/cuda/mma_gemm.h"
#include "cuda_test_util.h"
#include "io/dequant.h"

namespace quench {
namespace {

using testing::rel_l2;

struct Case {
  WeightFormat format;
  int N, K, M;
};

std::vector<float> reference(const std::vector<float>& W, const std::vector<float>& x, int N, int K, int M) {
  std::vector<float> y(static_cast<size_t>(M) * N);
  for (int m = 0; m < M; ++m) {
    const float* xr = x.data() + static_cast<size_t>(m) * K;
    for (int n = 0; n < N; ++n) {
      const float* wr = W.data() + static_cast<size_t>(n) * K;
      double s = 0;
      for (int k = 0; k < K; ++k) s += static_cast<double>(wr[k]) * xr[k];
      y[static_cast<size_t>(m) * N + n] = static_cast<float>(s);
    }
  }
  return y;
}

/// A random weight of the case's format on the device, plus its exact fp32 values on the host.
struct TestWeight {
  cuda::DeviceBuffer data, scales;
  cuda::GemmWeight view;
  std::vector<float> values;
};

TestWeight make_weight(WeightFormat f, int N, int K, std::mt19937& rng) {
  TestWeight t;
  const size_t nk = static_cast<size_t>(N) * K;
  std::uniform_int_distribution<int> byte(0, 255);
  switch (f) {
    case WeightFormat::kBF16: {
      auto w = testing::random_bf16(nk, 0.05f, rng, t.values);
      t.data = testing::to_device(w);
      t.view = {f, N, K, t.data.get(), nullptr, 1.0f};
      break;
    }
    case WeightFormat::kFP8: {
      std::vector<uint8_t> w(nk);
      for (auto& b : w) {
        do b = static_cast<uint8_t>(byte(rng));
        while ((b & 0x7f) == 0x7f);  // no NaN codes; subnormals and ±0 included
      }
      const float scale = 0.0137f;
      TensorView tv{"w", DType::kF8E4M3, {N, K}, reinterpret_cast<const std::byte*>(w.data()), w.size()};
      t.values = dequant_fp8(tv, scale);
      t.data = testing::to_device(w);
      t.view = {f, N, K, t.data.get(), nullptr, scale};
      break;
    }
    case WeightFormat::kNVFP4: {
      std::vector<uint8_t> q(nk / 2), s(nk / 16);
      for (auto& b : q) b = static_cast<uint8_t>(byte(rng));
      // Mostly normal scales, some subnormal or zero E4M3 codes (the exactness argument of the
      // kernel covers them too), a few large ones up to 448.
      std::uniform_int_distribution<int> pick(0, 19), normal(0x28, 0x58), tiny(0x00, 0x08), big(0x70, 0x7e);
      for (auto& b : s) {
        const int p = pick(rng);
        b = static_cast<uint8_t>(p == 0 ? tiny(rng) : p == 1 ? big(rng) : normal(rng));
      }
      const float g = 0.00071f;
      TensorView tq{"w", DType::kU8, {N, K / 2}, reinterpret_cast<const std::byte*>(q.data()), q.size()};
      TensorView ts{"s", DType::kF8E4M3, {N, K / 16}, reinterpret_cast<const std::byte*>(s.data()), s.size()};
      t.values = dequant_nvfp4(tq, ts, g);
      t.data = testing::to_device(q);
      t.scales = testing::to_device(s);
      t.view = {f, N, K, t.data.get(), t.scales.get<uint8_t>(), g};
      break;
    }
  }
  return t;
}

class MmaGemmTest : public ::testing::TestWithParam<Case> {};

TEST_P(MmaGemmTest, MatchesDequantizedReference) {
  QUENCH_SKIP_WITHOUT_GPU();
  const auto [f, N, K, M] = GetParam();
  std::mt19937 rng(static_cast<unsigned>(17 * N + 31 * K + M + 1000 * static_cast<int>(f)));
  TestWeight w = make_weight(f, N, K, rng);
  std::vector<float> xf;
  auto x = testing::random_bf16(static_cast<size_t>(M) * K, 1.0f, rng, xf);
  auto dx = testing::to_device(x);
  cuda::DeviceBuffer dy(static_cast<size_t>(M) * N * 4);
  const size_t ws_bytes = cuda::mma_gemm_workspace_bytes(w.view, M);
  ASSERT_LE(ws_bytes, cuda::kMmaGemmMaxWorkspace);
  cuda::DeviceBuffer ws(std::max<size_t>(ws_bytes, 16));
  testing::poison(ws);
  testing::poison(dy);
  cuda::mma_gemm(w.view, dx.get<cuda::bf16>(), M, dy.get<float>(), ws.get(), ws.bytes(), nullptr);
  QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
  auto y = testing::to_host<float>(dy, static_cast<size_t>(M) * N);
  size_t non_finite = 0;
  for (float v : y) non_finite += !std::isfinite(v);
  ASSERT_EQ(non_finite, 0u) << "outputs left unwritten (NaN poison) or overflowed";
  const auto ref = reference(w.values, xf, N, K, M);
  // W and x are exact in bf16 (the NVFP4/FP8 products are exact too: see mma_gemm.cu), so only
  // the fp32 accumulation rounds: far below the 1e-3..1e-2 of bf16-rounded operands.
  EXPECT_LT(rel_l2(y.data(), ref.data(), y.size()), 1e-4);

  // Same inputs, same result bit for bit (no atomics; a race would move it).
  cuda::DeviceBuffer dy2(dy.bytes());
  testing::poison(dy2);
  cuda::mma_gemm(w.view, dx.get<cuda::bf16>(), M, dy2.get<float>(), ws.get(), ws.bytes(), nullptr);
  QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
  auto y2 = testing::to_host<float>(dy2, y.size());
  EXPECT_EQ(0, std::memcmp(y.data(), y2.data(), y.size() * sizeof(float)));
}

std::vector<Case> cases() {
  std::vector<Case> out;
  const WeightFormat formats[] = {WeightFormat::kBF16, WeightFormat::kFP8, WeightFormat::kNVFP4};
  // K: 208 = 128 + 80 (NVFP4 rows 8-byte aligned, scale rows 13 bytes), 1040 = 8·128 + 16,
  // 2112 = 16·128 + 64 (aligned NVFP4 rows and scale rows, partial last chunk).
  const int Ms[] = {9, 16, 17, 33, 64, 100, 128, 200, 512};
  for (WeightFormat f : formats) {
    for (int M : Ms) out.push_back({f, 300, 208, M});
    out.push_back({f, 200, 1040, 16});
    out.push_back({f, 333, 2112, 33});
    out.push_back({f, 77, 2112, 64});
    // A 12B-sized shape: split-K over a long K with few row blocks.
    out.push_back({f, 3840, 15360, 16});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Shapes, MmaGemmTest, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& i) {
                           const char* f = i.param.format == WeightFormat::kBF16  ? "bf16"
                                           : i.param.format == WeightFormat::kFP8 ? "fp8"
                                                                                  : "nvfp4";
                           return std::string(f) + "_N" + std::to_string(i.param.N) + "_K" +
                                  std::to_string(i.param.K) + "_M" + std::to_string(i.param.M);
                         });

// Every compiled kernel variant (the default picks only some of them by M) and forced split
// counts (both reductions), on one shape with every tail: N, K and M not multiples of any tile.
TEST(MmaGemm, EveryTilingMatchesReference) {
  QUENCH_SKIP_WITHOUT_GPU();
  // K = 1040: unaligned NVFP4 rows and scale rows (the bounds-checked loads throughout);
  // K = 2112: aligned rows, full chunks take the unchecked loads, the last chunk is partial.
  const int N = 333, M = 45;
  for (const int K : {1040, 2112}) {
    for (WeightFormat f : {WeightFormat::kBF16, WeightFormat::kFP8, WeightFormat::kNVFP4}) {
      std::mt19937 rng(4242 + static_cast<int>(f) + K);
      TestWeight w = make_weight(f, N, K, rng);
      std::vector<float> xf;
      auto dx = testing::to_device(testing::random_bf16(static_cast<size_t>(M) * K, 1.0f, rng, xf));
      const auto ref = reference(w.values, xf, N, K, M);
      for (cuda::MmaGemmTiling t : cuda::mma_gemm_tilings()) {
        for (int splits : {1, 3, 9}) {  // 3: reduced in a cluster; 9: partials + reduction kernel
          t.splits = splits;
          SCOPED_TRACE(::testing::Message() << weight_format_name(f) << " K=" << K << " mt=" << t.mt
                                            << " nt=" << t.nt << " stages=" << t.stages << " sub=" << t.sub
                                            << " warps=" << t.warps << " xperm=" << t.xperm << " splits=" << splits);
          cuda::DeviceBuffer dy(static_cast<size_t>(M) * N * 4);
          cuda::DeviceBuffer ws(std::max<size_t>(cuda::mma_gemm_workspace_bytes(w.view, M, t), 16));
          testing::poison(dy);
          testing::poison(ws);
          cuda::mma_gemm(w.view, t, dx.get<cuda::bf16>(), M, dy.get<float>(), ws.get(), ws.bytes(), nullptr);
          QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
          auto y = testing::to_host<float>(dy, static_cast<size_t>(M) * N);
          size_t non_finite = 0;
          for (float v : y) non_finite += !std::isfinite(v);
          ASSERT_EQ(non_finite, 0u);
          EXPECT_LT(rel_l2(y.data(), ref.data(), y.size()), 1e-4);
        }
      }
    }
  }
}

// Several weights in one launch (q/k/v, gate/up): each output equals its own reference; the row
// counts are not multiples of the row tile, so a block never mixes two weights' rows.
TEST(MmaGemm, MultiMatchesEachReference) {
  QUENCH_SKIP_WITHOUT_GPU();
  const int kNs[] = {300, 77, 200};
  for (WeightFormat f : {WeightFormat::kBF16, WeightFormat::kFP8, WeightFormat::kNVFP4})
    for (int M : {9, 17, 33, 64, 100, 130}) {
      for (int jobs : {2, 3}) {
        SCOPED_TRACE(::testing::Message() << weight_format_name(f) << " M=" << M << " jobs=" << jobs);
        const std::vector<int> Ns(kNs, kNs + jobs);
        const int K = jobs == 2 ? 2112 : 1040;  // aligned rows (unchecked loads) / unaligned NVFP4 rows
        std::mt19937 rng(99 + M + static_cast<int>(f));
        std::vector<TestWeight> w;
        std::vector<cuda::GemmWeight> views;
        for (int N : Ns) {
          w.push_back(make_weight(f, N, K, rng));
          views.push_back(w.back().view);
        }
        std::vector<float> xf;
        auto dx = testing::to_device(testing::random_bf16(static_cast<size_t>(M) * K, 1.0f, rng, xf));
        std::vector<cuda::DeviceBuffer> dy;
        std::vector<float*> ys;
        for (int N : Ns) {
          dy.emplace_back(static_cast<size_t>(M) * N * 4);
          testing::poison(dy.back());
          ys.push_back(dy.back().get<float>());
        }
        const size_t ws_bytes = cuda::mma_gemm_multi_workspace_bytes(views.data(), jobs, M);
        cuda::DeviceBuffer ws(std::max<size_t>(ws_bytes, 16));
        cuda::mma_gemm_multi(views.data(), ys.data(), jobs, dx.get<cuda::bf16>(), M, ws.get(), ws.bytes(), nullptr);
        QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
        for (int j = 0; j < jobs; ++j) {
          auto y = testing::to_host<float>(dy[j], static_cast<size_t>(M) * Ns[j]);
          size_t non_finite = 0;
          for (float v : y) non_finite += !std::isfinite(v);
          ASSERT_EQ(non_finite, 0u) << "weight " << j;
          const auto ref = reference(w[j].values, xf, Ns[j], K, M);
          EXPECT_LT(rel_l2(y.data(), ref.data(), y.size()), 1e-4) << "weight " << j;
        }
      }
    }
}

// Under PDL mma_gemm requests W before griddepcontrol.wait and x after it: x written by the
// previous kernel on the stream (rmsnorm_to_bf16, itself launched with PDL) over a NaN-poisoned
// buffer must be what the product sees, every time.
TEST(MmaGemm, ReadsXOnlyAfterTheKernelWritingItUnderPdl) {
  QUENCH_SKIP_WITHOUT_GPU();
  const bool pdl_before = cuda::programmatic_dependent_launch();
  cuda::set_programmatic_dependent_launch(true);
  cudaStream_t stream = nullptr;
  QUENCH_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const int N = 4096, K = 3840, M = 16;
  std::mt19937 rng(2026);
  for (WeightFormat f : {WeightFormat::kNVFP4, WeightFormat::kBF16}) {
    SCOPED_TRACE(weight_format_name(f));
    TestWeight w = make_weight(f, N, K, rng);
    std::vector<float> xf(static_cast<size_t>(M) * K);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (float& v : xf) v = nd(rng);
    auto d_xf = testing::to_device(xf);
    cuda::DeviceBuffer dx(static_cast<size_t>(M) * K * 2), dy(static_cast<size_t>(M) * N * 4);
    cuda::DeviceBuffer ws(std::max<size_t>(cuda::mma_gemm_workspace_bytes(w.view, M), 16));
    for (int rep = 0; rep < 4; ++rep) {
      QUENCH_CUDA_CHECK(cudaMemsetAsync(dx.get(), 0xff, dx.bytes(), stream));  // NaN bf16
      QUENCH_CUDA_CHECK(cudaMemsetAsync(dy.get(), 0xff, dy.bytes(), stream));
      cuda::rmsnorm_to_bf16(d_xf.get<float>(), K, nullptr, M, K, 1e-6f, dx.get<cuda::bf16>(), stream);
      cuda::mma_gemm(w.view, dx.get<cuda::bf16>(), M, dy.get<float>(), ws.get(), ws.bytes(), stream);
      QUENCH_CUDA_CHECK(cudaStreamSynchronize(stream));
      auto xb = testing::to_host<uint16_t>(dx, static_cast<size_t>(M) * K);
      std::vector<float> xv(xb.size());
      for (size_t i = 0; i < xb.size(); ++i) {
        const uint32_t bits = static_cast<uint32_t>(xb[i]) << 16;
        std::memcpy(&xv[i], &bits, 4);
      }
      auto y = testing::to_host<float>(dy, static_cast<size_t>(M) * N);
      size_t non_finite = 0;
      for (float v : y) non_finite += !std::isfinite(v);
      ASSERT_EQ(non_finite, 0u) << "rep " << rep << ": x read before the norm kernel wrote it";
      const auto ref = reference(w.values, xv, N, K, M);
      EXPECT_LT(rel_l2(y.data(), ref.data(), y.size()), 1e-4) << "rep " << rep;
    }
  }
  QUENCH_CUDA_CHECK(cudaStreamDestroy(stream));
  cuda::set_programmatic_dependent_launch(pdl_before);
}

TEST(MmaGemm, MultiRejectsMixedK) {
  cuda::GemmWeight w[2] = {{WeightFormat::kBF16, 64, 64, reinterpret_cast<const void*>(uintptr_t{256}), nullptr, 1.0f},
                           {WeightFormat::kBF16, 64, 128, reinterpret_cast<const void*>(uintptr_t{256}), nullptr, 1.0f}};
  float* y[2] = {reinterpret_cast<float*>(uintptr_t{256}), reinterpret_cast<float*>(uintptr_t{256})};
  EXPECT_THROW(cuda::mma_gemm_multi(w, y, 2, reinterpret_cast<const cuda::bf16*>(uintptr_t{256}), 16, nullptr, 0,
                                    nullptr),
               InvalidArgument);
}

TEST(MmaGemm, RejectsKNotMultipleOf16) {
  cuda::GemmWeight w{WeightFormat::kBF16, 64, 72, reinterpret_cast<const void*>(uintptr_t{256}), nullptr, 1.0f};
  try {
    cuda::mma_gemm(w, reinterpret_cast<const cuda::bf16*>(uintptr_t{256}), 16, reinterpret_cast<float*>(uintptr_t{256}),
                   nullptr, 0, nullptr);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("K must be a multiple of 16"), std::string::npos) << e.what();
  }
}

TEST(MmaGemm, WorkspaceIsBoundedForDecodeShapes) {
  QUENCH_SKIP_WITHOUT_GPU();  // the plan reads the SM count
  for (WeightFormat f : {WeightFormat::kBF16, WeightFormat::kFP8, WeightFormat::kNVFP4})
    for (int N : {2048, 3840, 15360, 262144})
      for (int M : {9, 16, 64, 128, 4096}) {
        cuda::GemmWeight w{f, N, 3840, nullptr, nullptr, 1.0f};
        EXPECT_LE(cuda::mma_gemm_workspace_bytes(w, M), cuda::kMmaGemmMaxWorkspace);
      }
}

}  // namespace
}  // namespace quench
