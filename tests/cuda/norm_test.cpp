// tests/cuda/norm_test.cpp: the row kernels of the step (embedding + fused first norm, RMSNorm,
// residual post-norm with the next norm fused) against the CPU reference backend's rms_norm
// (src/backend/cpu, itself checked against transformers), and the two-stage argmax (ties to the
// lowest index, NaN rows, fused softcap) against a host scan, and GeGLU (gelu_tanh_mul) against the
// CPU backend's; fresh random data, poisoned outputs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "backend/cpu/activation.h"
#include "backend/cpu/rmsnorm.h"
#include "backend/cuda/kernels.h"
#include "cuda_test_util.h"

namespace quench {
namespace {

using testing::rel_l2;

std::vector<float> random_f32(size_t n, float sigma, std::mt19937& rng) {
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

/// Every element of a bf16 output equals the reference rounded to bf16, up to one bf16 step of
/// the reference (the GPU's sum of squares runs in another order than the CPU's double sum), plus
/// `abs_tol` (for results of cancellation, e.g. 1 + tanh(z) near z = -inf in GELU).
void expect_bf16_close(const std::vector<uint16_t>& got, const std::vector<float>& ref, const char* what,
                       float abs_tol = 0.0f) {
  ASSERT_EQ(got.size(), ref.size());
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const float g = bf16_to_f32(got[i]);
    if (!(std::fabs(g - ref[i]) <= std::fabs(ref[i]) * (1.0f / 128) + abs_tol + 1e-30f)) {
      if (++bad <= 5) ADD_FAILURE() << what << "[" << i << "] = " << g << ", reference " << ref[i];
    }
  }
  EXPECT_EQ(bad, 0) << what;
}

/// Hidden sizes: the tiny fixtures (48), the 12B (3840), a size with a partial last thread chunk
/// (3848 = 962 float4s), one that is not a multiple of 4 (scalar path), and a wide one (8192);
/// row counts below and above 256 (the launch shape changes there).
class RowKernels : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(RowKernels, EmbedWithFusedNormMatchesCpu) {
  QUENCH_SKIP_WITHOUT_GPU();
  const auto [H, T] = GetParam();
  const int V = 97;
  std::mt19937 rng(11 + H * 7 + T);
  std::vector<float> table_f;
  const auto table = testing::random_bf16(static_cast<size_t>(V) * H, 0.03f, rng, table_f);
  std::uniform_int_distribution<int> tok(0, V - 1);
  std::vector<int32_t> ids(T);
  for (auto& i : ids) i = tok(rng);
  const std::vector<float> w = random_f32(H, 1.0f, rng);
  const float scale = 62.0f, eps = 1e-6f;
  auto d_table = testing::to_device(table), d_ids = testing::to_device(ids), d_w = testing::to_device(w);
  cuda::DeviceBuffer d_x(static_cast<size_t>(T) * H * 4), d_next(static_cast<size_t>(T) * H * 2);
  testing::poison(d_x);
  testing::poison(d_next);
  cuda::embed_rmsnorm(d_ids.get<int32_t>(), T, d_table.get<cuda::bf16>(), H, scale, d_x.get<float>(), d_w.get<float>(),
                      eps, d_next.get<cuda::bf16>(), nullptr);
  QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
  const auto x = testing::to_host<float>(d_x, static_cast<size_t>(T) * H);
  const auto next = testing::to_host<uint16_t>(d_next, static_cast<size_t>(T) * H);
  std::vector<float> ref_x(static_cast<size_t>(T) * H), ref_n(ref_x.size());
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < H; ++i) ref_x[static_cast<size_t>(t) * H + i] = table_f[static_cast<size_t>(ids[t]) * H + i] * scale;
  rms_norm(ref_x.data(), w.data(), T, H, eps, ref_n.data());
  EXPECT_EQ(x, ref_x);  // one fp32 multiply: exact
  expect_bf16_close(next, ref_n, "embed next");

  // embed() alone leaves no normed output and writes the same x.
  testing::poison(d_x);
  cuda::embed(d_ids.get<int32_t>(), T, d_table.get<cuda::bf16>(), H, scale, d_x.get<float>(), nullptr);
  QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_EQ(testing::to_host<float>(d_x, static_cast<size_t>(T) * H), ref_x);
}

TEST_P(RowKernels, RmsNormMatchesCpu) {
  QUENCH_SKIP_WITHOUT_GPU();
  const auto [H, T] = GetParam();
  std::mt19937 rng(23 + H * 5 + T);
  for (const bool with_weight : {true, false}) {
    const int stride = H % 4 == 0 ? H + 8 : H + 3;  // a strided input view (e.g. q inside a qkv row)
    const std::vector<float> x = random_f32(static_cast<size_t>(T) * stride, 3.0f, rng);
    const std::vector<float> w = random_f32(H, 1.0f, rng);
    auto d_x = testing::to_device(x), d_w = testing::to_device(w);
    cuda::DeviceBuffer d_out(static_cast<size_t>(T) * H * 2);
    testing::poison(d_out);
    cuda::rmsnorm_to_bf16(d_x.get<float>(), stride, with_weight ? d_w.get<float>() : nullptr, T, H, 1e-6f,
                          d_out.get<cuda::bf16>(), nullptr);
    QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<float> dense(static_cast<size_t>(T) * H), ref(dense.size());
    for (int t = 0; t < T; ++t)
      for (int i = 0; i < H; ++i) dense[static_cast<size_t>(t) * H + i] = x[static_cast<size_t>(t) * stride + i];
    rms_norm(dense.data(), with_weight ? w.data() : nullptr, T, H, 1e-6f, ref.data());
    expect_bf16_close(testing::to_host<uint16_t>(d_out, dense.size()), ref, with_weight ? "rmsnorm" : "rmsnorm no w");
  }
}

TEST_P(RowKernels, ResidualPostNormMatchesCpu) {
  QUENCH_SKIP_WITHOUT_GPU();
  const auto [H, T] = GetParam();
  std::mt19937 rng(37 + H * 3 + T);
  for (const bool fuse_next : {true, false}) {
    const size_t n = static_cast<size_t>(T) * H;
    const std::vector<float> x0 = random_f32(n, 2.0f, rng), y = random_f32(n, 40.0f, rng);
    const std::vector<float> wp = random_f32(H, 0.5f, rng), wn = random_f32(H, 1.0f, rng);
    const float scalar = fuse_next ? 0.37f : 1.0f, eps = 1e-6f;
    auto d_x = testing::to_device(x0), d_y = testing::to_device(y), d_wp = testing::to_device(wp),
         d_wn = testing::to_device(wn);
    cuda::DeviceBuffer d_next(n * 2);
    testing::poison(d_next);
    cuda::residual_post_norm(d_x.get<float>(), d_y.get<float>(), d_wp.get<float>(), scalar, T, H, eps,
                             fuse_next ? d_wn.get<float>() : nullptr, d_next.get<cuda::bf16>(), nullptr);
    QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
    // Reference (§2.3): x = (x + rmsnorm(y, w_post)) * scalar; next = bf16(rmsnorm(x, w_next)).
    std::vector<float> h(n), ref_x(n), ref_n(n);
    rms_norm(y.data(), wp.data(), T, H, eps, h.data());
    for (size_t i = 0; i < n; ++i) ref_x[i] = (x0[i] + h[i]) * scalar;
    const auto x = testing::to_host<float>(d_x, n);
    EXPECT_LT(rel_l2(x.data(), ref_x.data(), n), 1e-6);
    for (size_t i = 0; i < n; ++i) ASSERT_TRUE(std::isfinite(x[i])) << "x[" << i << "] not written";
    const auto next = testing::to_host<uint16_t>(d_next, n);
    if (fuse_next) {
      rms_norm(ref_x.data(), wn.data(), T, H, eps, ref_n.data());
      // x = x0 + h cancels where x0 ~ -h: there a 1-ulp difference of the normed y is a large
      // relative change of x (and next), so the floor scales with the row's magnitude (~1).
      expect_bf16_close(next, ref_n, "residual next", 1e-5f);
    } else {
      for (size_t i = 0; i < n; ++i) ASSERT_EQ(next[i], 0xffffu) << "next written without w_next at " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, RowKernels,
                         ::testing::Combine(::testing::Values(48, 3840, 3848, 3842, 8192), ::testing::Values(1, 3, 70, 300)),
                         [](const auto& info) {
                           return "H" + std::to_string(std::get<0>(info.param)) + "_T" +
                                  std::to_string(std::get<1>(info.param));
                         });

/// A chain of residual ends on a created stream with Programmatic Dependent Launch on (the
/// decode step's setting): each launch reads as y the row the previous launch wrote as x, and
/// its own x written two launches before; the kernels load their weights before waiting on the
/// previous kernel and let their dependents launch early. The chain equals the host chain: a
/// dependent read issued before the wait would read a stale row (an O(1) error).
TEST(RowKernels, PdlChainOnCreatedStreamMatchesHost) {
  QUENCH_SKIP_WITHOUT_GPU();
  const bool pdl_default = cuda::programmatic_dependent_launch();
  cuda::set_programmatic_dependent_launch(true);
  constexpr int H = 3840, kSteps = 24;
  std::mt19937 rng(4242);
  std::vector<float> a = random_f32(H, 1.0f, rng), b = random_f32(H, 30.0f, rng);
  std::vector<std::vector<float>> wp, wn;
  for (int k = 0; k < kSteps; ++k) {
    wp.push_back(random_f32(H, 0.5f, rng));
    wn.push_back(random_f32(H, 1.0f, rng));
  }
  auto d_a = testing::to_device(a), d_b = testing::to_device(b);
  std::vector<cuda::DeviceBuffer> d_wp, d_wn;
  for (int k = 0; k < kSteps; ++k) {
    d_wp.push_back(testing::to_device(wp[k]));
    d_wn.push_back(testing::to_device(wn[k]));
  }
  cuda::DeviceBuffer d_next(static_cast<size_t>(H) * 2);
  testing::poison(d_next);
  cudaStream_t stream;
  QUENCH_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const float eps = 1e-6f, scalar = 0.9f;
  for (int k = 0; k < kSteps; ++k) {
    float* x = (k % 2 ? d_b : d_a).get<float>();
    const float* y = (k % 2 ? d_a : d_b).get<float>();
    cuda::residual_post_norm(x, y, d_wp[k].get<float>(), scalar, 1, H, eps, d_wn[k].get<float>(),
                             d_next.get<cuda::bf16>(), stream);
  }
  QUENCH_CUDA_CHECK(cudaStreamSynchronize(stream));
  QUENCH_CUDA_CHECK(cudaStreamDestroy(stream));
  cuda::set_programmatic_dependent_launch(pdl_default);
  // Host chain (§2.3), the same order.
  std::vector<float> h(H), next(H);
  for (int k = 0; k < kSteps; ++k) {
    std::vector<float>& x = k % 2 ? b : a;
    const std::vector<float>& y = k % 2 ? a : b;
    rms_norm(y.data(), wp[k].data(), 1, H, eps, h.data());
    for (int i = 0; i < H; ++i) x[i] = (x[i] + h[i]) * scalar;
    if (k == kSteps - 1) rms_norm(x.data(), wn[k].data(), 1, H, eps, next.data());
  }
  const auto ga = testing::to_host<float>(d_a, H), gb = testing::to_host<float>(d_b, H);
  EXPECT_LT(rel_l2(ga.data(), a.data(), H), 1e-5);
  EXPECT_LT(rel_l2(gb.data(), b.data(), H), 1e-5);
  expect_bf16_close(testing::to_host<uint16_t>(d_next, H), next, "chain next", 1e-5f);
}

/// Host argmax of cap·tanh(v/cap) (or v), lowest index on ties, NaN skipped (0 if all NaN).
int host_argmax(const float* v, int V) {
  int best = -1;
  for (int i = 0; i < V; ++i) {
    if (std::isnan(v[i])) continue;
    if (best < 0 || v[i] > v[best]) best = i;
  }
  return best < 0 ? 0 : best;
}

class ArgmaxTest : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(ArgmaxTest, LowestIndexOfTheMaximum) {
  QUENCH_SKIP_WITHOUT_GPU();
  const auto [R, V] = GetParam();
  std::mt19937 rng(5 + R * 31 + V);
  std::vector<float> logits = random_f32(static_cast<size_t>(R) * V, 4.0f, rng);
  std::uniform_int_distribution<int> pos(0, V - 1);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int r = 0; r < R; ++r) {
    float* row = logits.data() + static_cast<size_t>(r) * V;
    switch (r % 5) {
      case 0: {  // a tie of the maximum at two (often far apart) positions
        const int a = pos(rng), b = pos(rng);
        row[a] = row[b] = 100.0f + r;
        break;
      }
      case 1: row[V - 1] = 1000.0f; break;  // the last element
      case 2:                                // NaNs are skipped
        for (int k = 0; k < 8; ++k) row[pos(rng)] = nan;
        break;
      case 3:  // every element equal: index 0
        for (int i = 0; i < V; ++i) row[i] = -3.5f;
        break;
      default:  // all NaN but one -inf: that one
        for (int i = 0; i < V; ++i) row[i] = nan;
        row[pos(rng)] = -std::numeric_limits<float>::infinity();
        break;
    }
  }
  auto d_logits = testing::to_device(logits);
  cuda::DeviceBuffer d_out(static_cast<size_t>(R) * 4), scratch(cuda::argmax_scratch_bytes(R, V));
  testing::poison(d_out);
  testing::poison(scratch);
  cuda::argmax_rows(d_logits.get<float>(), R, V, 0.0f, d_out.get<int32_t>(), scratch.get(), nullptr);
  QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
  const auto out = testing::to_host<int32_t>(d_out, R);
  for (int r = 0; r < R; ++r)
    EXPECT_EQ(out[r], host_argmax(logits.data() + static_cast<size_t>(r) * V, V)) << "row " << r;
}

TEST_P(ArgmaxTest, FusedSoftcapEqualsSoftcapThenArgmax) {
  QUENCH_SKIP_WITHOUT_GPU();
  const auto [R, V] = GetParam();
  std::mt19937 rng(77 + R * 13 + V);
  // Large logits: tanh saturates, so distinct raw values become ties after the cap, and the
  // lowest index among the capped ties must win (not the raw maximum).
  std::vector<float> logits = random_f32(static_cast<size_t>(R) * V, 60.0f, rng);
  const float cap = 30.0f;
  auto d_logits = testing::to_device(logits);
  cuda::DeviceBuffer d_fused(static_cast<size_t>(R) * 4), d_plain(static_cast<size_t>(R) * 4),
      scratch(cuda::argmax_scratch_bytes(R, V));
  testing::poison(d_fused);
  testing::poison(d_plain);
  cuda::argmax_rows(d_logits.get<float>(), R, V, cap, d_fused.get<int32_t>(), scratch.get(), nullptr);
  cuda::softcap(d_logits.get<float>(), static_cast<size_t>(R) * V, cap, nullptr);
  cuda::argmax_rows(d_logits.get<float>(), R, V, 0.0f, d_plain.get<int32_t>(), scratch.get(), nullptr);
  QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
  const auto capped = testing::to_host<float>(d_logits, logits.size());
  const auto fused = testing::to_host<int32_t>(d_fused, R), plain = testing::to_host<int32_t>(d_plain, R);
  for (int r = 0; r < R; ++r) {
    const int want = host_argmax(capped.data() + static_cast<size_t>(r) * V, V);
    EXPECT_EQ(fused[r], want) << "row " << r;
    EXPECT_EQ(plain[r], want) << "row " << r;
  }
  // The soft-capped values themselves: cap * tanh(v / cap) (§2.8).
  double worst = 0;
  for (size_t i = 0; i < logits.size(); ++i)
    worst = std::max(worst, std::fabs(capped[i] - cap * std::tanh(static_cast<double>(logits[i]) / cap)));
  EXPECT_LT(worst, 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Shapes, ArgmaxTest,
                         ::testing::Combine(::testing::Values(1, 5, 16, 64), ::testing::Values(262144, 1001, 512)),
                         [](const auto& info) {
                           return "R" + std::to_string(std::get<0>(info.param)) + "_V" +
                                  std::to_string(std::get<1>(info.param));
                         });

/// GeGLU (§2.7) on strided fp32 gate/up rows, both launch paths (16-byte loads when every size
/// is a multiple of 4; scalar otherwise), against the CPU backend's gelu_tanh_mul.
TEST(GeluMul, MatchesCpu) {
  QUENCH_SKIP_WITHOUT_GPU();
  for (const auto& [T, I, pad] : {std::tuple{1, 15360, 0}, std::tuple{7, 96, 4}, std::tuple{33, 1001, 3},
                                 std::tuple{130, 512, 8}}) {
    std::mt19937 rng(3 + T + I);
    const int stride = I + pad;
    const std::vector<float> gate = random_f32(static_cast<size_t>(T) * stride, 2.0f, rng);
    const std::vector<float> up = random_f32(static_cast<size_t>(T) * stride, 2.0f, rng);
    auto d_g = testing::to_device(gate), d_u = testing::to_device(up);
    cuda::DeviceBuffer d_act(static_cast<size_t>(T) * I * 2);
    testing::poison(d_act);
    cuda::gelu_tanh_mul(d_g.get<float>(), stride, d_u.get<float>(), stride, T, I, d_act.get<cuda::bf16>(), nullptr);
    QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<float> ref(static_cast<size_t>(T) * I);
    for (int t = 0; t < T; ++t)
      gelu_tanh_mul(gate.data() + static_cast<size_t>(t) * stride, up.data() + static_cast<size_t>(t) * stride, I,
                    ref.data() + static_cast<size_t>(t) * I);
    // tanhf may differ by an ulp between the GPU and the host: ~1e-7 · |gate · up| absolute.
    expect_bf16_close(testing::to_host<uint16_t>(d_act, ref.size()), ref, "gelu_mul", 1e-5f);
  }
}

}  // namespace
}  // namespace quench
