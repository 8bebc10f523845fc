// tests/cuda/attention_test.cpp: paged attention against a dense fp64 reference on the CPU, for
// the 12B's two layer shapes (sliding: head_dim 256, 16 q / 8 kv heads, window 1024; global:
// head_dim 512, 16 q / 1 kv head, no window) at context lengths 1, 1023, 1024, 1025, 4096, 8192,
// with shuffled physical blocks, for a decode token and for a prefill chunk, bf16 and FP8 cache.
#include <gtest/gtest.h>

#include <algorithm>
#include <cuda_fp8.h>
#include <cstring>
#include <numeric>

#include "backend/cuda/kernels.h"
#include "cuda_test_util.h"

namespace quench {
namespace {

struct AttnCase {
  int Hq, Hkv, D, window, length, n_query;  // queries are the last n_query positions
  bool fp8;
};

std::string Name(const ::testing::TestParamInfo<AttnCase>& i) {
  const auto& c = i.param;
  return "D" + std::to_string(c.D) + "_W" + std::to_string(c.window) + "_L" + std::to_string(c.length) + "_Q" +
         std::to_string(c.n_query) + (c.fp8 ? "_fp8" : "_bf16");
}

class AttentionTest : public ::testing::TestWithParam<AttnCase> {};

TEST_P(AttentionTest, MatchesDenseReference) {
  QUENCH_SKIP_WITHOUT_GPU();
  const AttnCase c = GetParam();
  const int bs = 16, L = c.length, nb = (L + bs - 1) / bs, Tq = c.n_query;
  std::mt19937 rng(L * 31 + c.D + c.n_query);
  // Physical blocks in shuffled order (plus a few unused ones).
  std::vector<int32_t> table(nb);
  std::iota(table.begin(), table.end(), 0);
  std::shuffle(table.begin(), table.end(), rng);
  for (auto& b : table) b += 3;
  const int pool = nb + 3;
  const size_t row = static_cast<size_t>(c.Hkv) * c.D;
  std::vector<float> kf, vf, qf;
  auto k = testing::random_bf16(static_cast<size_t>(L) * row, 1.0f, rng, kf);
  auto v = testing::random_bf16(static_cast<size_t>(L) * row, 1.0f, rng, vf);
  auto q = testing::random_bf16(static_cast<size_t>(Tq) * c.Hq * c.D, 0.08f, rng, qf);
  const float kscale = 0.02f, vscale = 0.015f;
  // Paged pools.
  const size_t elem = c.fp8 ? 1 : 2;
  std::vector<uint8_t> kp(static_cast<size_t>(pool) * bs * row * elem, 0), vp(kp.size(), 0);
  for (int p = 0; p < L; ++p) {
    const size_t slot = static_cast<size_t>(table[p / bs]) * bs + p % bs;
    for (size_t i = 0; i < row; ++i) {
      const size_t src = static_cast<size_t>(p) * row + i, dst = slot * row + i;
      if (c.fp8) {
        kp[dst] = static_cast<uint8_t>(__nv_cvt_float_to_fp8(kf[src] / kscale, __NV_SATFINITE, __NV_E4M3));
        vp[dst] = static_cast<uint8_t>(__nv_cvt_float_to_fp8(vf[src] / vscale, __NV_SATFINITE, __NV_E4M3));
        kf[src] = fp8e4m3_to_f32(kp[dst]) * kscale;  // the reference sees what the cache holds
        vf[src] = fp8e4m3_to_f32(vp[dst]) * vscale;
      } else {
        std::memcpy(&kp[dst * 2], &k[src], 2);
        std::memcpy(&vp[dst * 2], &v[src], 2);
      }
    }
  }
  std::vector<int32_t> pos(Tq), seq(Tq, 0);
  for (int t = 0; t < Tq; ++t) pos[t] = L - Tq + t;
  auto dk = testing::to_device(kp), dv = testing::to_device(vp), dq = testing::to_device(q);
  auto dpos = testing::to_device(pos), dseq = testing::to_device(seq), dtab = testing::to_device(table);
  cuda::DeviceBuffer dout(static_cast<size_t>(Tq) * c.Hq * c.D * 2);
  testing::poison(dout);
  cuda::DeviceBuffer scratch(std::max<size_t>(16, cuda::attention_scratch_bytes(Tq, c.Hq, c.D, L)));
  cuda::KvLayerView view{dk.get(), dv.get(), c.fp8, c.fp8 ? kscale : 1.0f, c.fp8 ? vscale : 1.0f, bs, c.Hkv, c.D};
  cuda::paged_attention(dq.get<cuda::bf16>(), Tq, c.Hq, c.D, c.window, {dpos.get<int32_t>(), dseq.get<int32_t>()},
                        {dtab.get<int32_t>(), nb}, view, L, dout.get<cuda::bf16>(), scratch.get(), nullptr);
  QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
  auto ob = testing::to_host<uint16_t>(dout, static_cast<size_t>(Tq) * c.Hq * c.D);
  std::vector<float> out(ob.size()), ref(ob.size());
  for (size_t i = 0; i < ob.size(); ++i) out[i] = bf16_to_f32(ob[i]);
  const int G = c.Hq / c.Hkv;
  for (int t = 0; t < Tq; ++t)
    for (int h = 0; h < c.Hq; ++h) {
      const int kvh = h / G, p = pos[t];
      const int lo = c.window > 0 ? std::max(0, p - c.window + 1) : 0;
      std::vector<double> s(p + 1 - lo);
      double mx = -1e300;
      for (int j = lo; j <= p; ++j) {
        double d = 0;
        for (int e = 0; e < c.D; ++e)
          d += static_cast<double>(qf[(static_cast<size_t>(t) * c.Hq + h) * c.D + e]) *
               kf[static_cast<size_t>(j) * row + kvh * c.D + e];
        s[j - lo] = d;
        mx = std::max(mx, d);
      }
      double sum = 0;
      for (auto& x : s) sum += (x = std::exp(x - mx));
      for (int e = 0; e < c.D; ++e) {
        double a = 0;
        for (int j = lo; j <= p; ++j) a += s[j - lo] * vf[static_cast<size_t>(j) * row + kvh * c.D + e];
        ref[(static_cast<size_t>(t) * c.Hq + h) * c.D + e] = static_cast<float>(a / sum);
      }
    }
  for (float x : out) ASSERT_TRUE(std::isfinite(x)) << "unwritten or non-finite output";
  EXPECT_LT(testing::rel_l2(out.data(), ref.data(), out.size()), 1e-2);
}

std::vector<AttnCase> Cases() {
  std::vector<AttnCase> v;
  for (int L : {1, 1023, 1024, 1025, 4096, 8192}) {
    v.push_back({16, 8, 256, 1024, L, 1, false});  // sliding layer, decode
    v.push_back({16, 1, 512, 0, L, 1, false});     // global layer (MQA), decode
  }
  v.push_back({16, 8, 256, 1024, 2048, 40, false});  // prefill chunks crossing the window
  v.push_back({16, 1, 512, 0, 1500, 33, false});
  v.push_back({16, 8, 256, 1024, 4096, 1, true});    // FP8 cache
  v.push_back({16, 1, 512, 0, 1025, 3, true});
  v.push_back({4, 2, 32, 8, 40, 40, false});         // the tiny golden model's shapes
  v.push_back({4, 1, 64, 0, 40, 40, false});
  return v;
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionTest, ::testing::ValuesIn(Cases()), Name);

}  // namespace
}  // namespace quench
