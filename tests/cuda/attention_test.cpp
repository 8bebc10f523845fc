// tests/cuda/attention_test.cpp: paged attention against a dense fp64 reference on the CPU, for
// the 12B's two layer shapes (sliding: head_dim 256, 16 q / 8 kv heads, window 1024; global:
// head_dim 512, 16 q / 1 kv head, no window) at context lengths 1, 1023, 1024, 1025, 4096, 8192,
// with shuffled physical blocks, for a decode token and for a prefill chunk, bf16 and FP8 cache;
// then whole steps of several sequences of different lengths (prefill chunks over a cached prefix
// and decode tokens in one call, scattered block ids, -1 for out-of-window sliding blocks, block
// sizes 16, 32 and 12, a bucketed max_context larger than any real context).
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

// ---- several sequences in one call --------------------------------------------------------

struct SeqSpec {
  int length;   ///< context after this step (cached prefix + queries)
  int n_query;  ///< the step's query tokens: positions length - n_query .. length - 1
};

struct StepCase {
  const char* name;
  int Hq, Hkv, D, window, bs;
  bool fp8;
  std::vector<SeqSpec> seqs;
  int stride;  ///< the reference checks every stride-th query token (and each sequence's last)
};

class AttentionStepTest : public ::testing::TestWithParam<StepCase> {};

TEST_P(AttentionStepTest, MatchesDenseReference) {
  QUENCH_SKIP_WITHOUT_GPU();
  const StepCase c = GetParam();
  const int S = static_cast<int>(c.seqs.size()), bs = c.bs, G = c.Hq / c.Hkv;
  const size_t row = static_cast<size_t>(c.Hkv) * c.D;
  std::mt19937 rng(static_cast<uint32_t>(c.D * 7 + c.bs * 13 + S * 101 + (c.fp8 ? 1 : 0)));
  int max_nb = 1, pool = 0, T = 0;
  for (const auto& s : c.seqs) {
    max_nb = std::max(max_nb, (s.length + bs - 1) / bs);
    pool += (s.length + bs - 1) / bs;
    T += s.n_query;
  }
  // Bucketed like the CUDA runner: table width and max_context rounded up to a power of two.
  int mb = 16;
  while (mb < max_nb) mb *= 2;
  pool += 5;
  std::vector<int32_t> ids(pool);
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  std::vector<int32_t> table(static_cast<size_t>(S) * mb, -1), pos, seq;
  const float kscale = 0.02f, vscale = 0.015f;
  const size_t elem = c.fp8 ? 1 : 2;
  std::vector<uint8_t> kp(static_cast<size_t>(pool) * bs * row * elem), vp(kp.size());
  for (auto& b : kp) b = static_cast<uint8_t>(rng());  // unused slots hold garbage, never zeros
  for (auto& b : vp) b = static_cast<uint8_t>(rng());
  std::vector<std::vector<float>> kf(S), vf(S);
  std::vector<float> qf;
  int next_id = 0;
  for (int si = 0; si < S; ++si) {
    const SeqSpec& s = c.seqs[si];
    const int nb = (s.length + bs - 1) / bs, first_q = s.length - s.n_query;
    // Sliding layers: blocks wholly before the first query's window are freed (-1).
    const int keep_from = c.window > 0 ? std::max(0, first_q - c.window + 1) : 0;
    for (int b = 0; b < nb; ++b) table[static_cast<size_t>(si) * mb + b] = (b + 1) * bs <= keep_from ? -1 : ids[next_id++];
    testing::random_bf16(static_cast<size_t>(s.length) * row, 1.0f, rng, kf[si]);
    testing::random_bf16(static_cast<size_t>(s.length) * row, 1.0f, rng, vf[si]);
    for (int p = 0; p < s.length; ++p) {
      const int32_t blk = table[static_cast<size_t>(si) * mb + p / bs];
      if (blk < 0) continue;
      const size_t slot = static_cast<size_t>(blk) * bs + p % bs;
      for (size_t i = 0; i < row; ++i) {
        float& kx = kf[si][static_cast<size_t>(p) * row + i];
        float& vx = vf[si][static_cast<size_t>(p) * row + i];
        const size_t dst = slot * row + i;
        if (c.fp8) {
          kp[dst] = static_cast<uint8_t>(__nv_cvt_float_to_fp8(kx / kscale, __NV_SATFINITE, __NV_E4M3));
          vp[dst] = static_cast<uint8_t>(__nv_cvt_float_to_fp8(vx / vscale, __NV_SATFINITE, __NV_E4M3));
          kx = fp8e4m3_to_f32(kp[dst]) * kscale;
          vx = fp8e4m3_to_f32(vp[dst]) * vscale;
        } else {
          const uint16_t kb = f32_to_bf16(kx), vb = f32_to_bf16(vx);
          std::memcpy(&kp[dst * 2], &kb, 2);
          std::memcpy(&vp[dst * 2], &vb, 2);
        }
      }
    }
    for (int i = 0; i < s.n_query; ++i) {
      pos.push_back(first_q + i);
      seq.push_back(si);
    }
  }
  auto q = testing::random_bf16(static_cast<size_t>(T) * c.Hq * c.D, 0.08f, rng, qf);
  auto dk = testing::to_device(kp), dv = testing::to_device(vp), dq = testing::to_device(q);
  auto dpos = testing::to_device(pos), dseq = testing::to_device(seq), dtab = testing::to_device(table);
  const size_t n_out = static_cast<size_t>(T) * c.Hq * c.D;
  cuda::DeviceBuffer dout(n_out * 2);
  testing::poison(dout);
  const int max_context = mb * bs;
  cuda::DeviceBuffer scratch(std::max<size_t>(16, cuda::attention_scratch_bytes(T, c.Hq, c.D, max_context)));
  cuda::KvLayerView view{dk.get(), dv.get(), c.fp8, c.fp8 ? kscale : 1.0f, c.fp8 ? vscale : 1.0f, bs, c.Hkv, c.D};
  cuda::paged_attention(dq.get<cuda::bf16>(), T, c.Hq, c.D, c.window, {dpos.get<int32_t>(), dseq.get<int32_t>()},
                        {dtab.get<int32_t>(), mb}, view, max_context, dout.get<cuda::bf16>(), scratch.get(), nullptr);
  QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
  auto ob = testing::to_host<uint16_t>(dout, n_out);
  for (size_t i = 0; i < n_out; ++i) ASSERT_TRUE(std::isfinite(bf16_to_f32(ob[i]))) << "unwritten output at " << i;
  std::vector<float> out, ref;
  for (int t = 0; t < T; ++t) {
    const bool last = t + 1 == T || seq[t + 1] != seq[t];
    if (t % c.stride && !last) continue;
    const int si = seq[t], p = pos[t];
    const int lo = c.window > 0 ? std::max(0, p - c.window + 1) : 0;
    for (int h = 0; h < c.Hq; ++h) {
      const int kvh = h / G;
      std::vector<double> sc(p + 1 - lo);
      double mx = -1e300;
      for (int j = lo; j <= p; ++j) {
        double d = 0;
        for (int e = 0; e < c.D; ++e)
          d += static_cast<double>(qf[(static_cast<size_t>(t) * c.Hq + h) * c.D + e]) *
               kf[si][static_cast<size_t>(j) * row + kvh * c.D + e];
        sc[j - lo] = d;
        mx = std::max(mx, d);
      }
      double sum = 0;
      for (auto& x : sc) sum += (x = std::exp(x - mx));
      for (int e = 0; e < c.D; ++e) {
        double a = 0;
        for (int j = lo; j <= p; ++j) a += sc[j - lo] * vf[si][static_cast<size_t>(j) * row + kvh * c.D + e];
        ref.push_back(static_cast<float>(a / sum));
        out.push_back(bf16_to_f32(ob[(static_cast<size_t>(t) * c.Hq + h) * c.D + e]));
      }
    }
  }
  EXPECT_LT(testing::rel_l2(out.data(), ref.data(), out.size()), 1e-2) << out.size() / c.D << " rows checked";
}

std::vector<StepCase> StepCases() {
  const std::vector<SeqSpec> mixed_sliding = {{1500, 300}, {40, 40}, {1025, 1}, {3000, 77}, {7, 1}};
  const std::vector<SeqSpec> mixed_global = {{1200, 200}, {33, 33}, {700, 1}, {2100, 50}, {5, 5}};
  std::vector<SeqSpec> decode16;
  for (int i = 0; i < 16; ++i) decode16.push_back({1 + (i * 337) % 5000, 1});
  return {
      {"sliding_mixed_bf16", 16, 8, 256, 1024, 16, false, mixed_sliding, 5},
      {"sliding_mixed_fp8", 16, 8, 256, 1024, 16, true, mixed_sliding, 5},
      {"global_mixed_bf16", 16, 1, 512, 0, 16, false, mixed_global, 5},
      {"global_mixed_fp8", 16, 1, 512, 0, 16, true, mixed_global, 5},
      {"sliding_decode16_bf16", 16, 8, 256, 1024, 16, false, decode16, 1},
      {"global_decode16_bf16", 16, 1, 512, 0, 16, false, decode16, 1},
      {"global_decode16_fp8", 16, 1, 512, 0, 16, true, decode16, 1},
      {"sliding_prefill2048_bf16", 16, 8, 256, 1024, 16, false, {{2048, 2048}}, 29},
      {"global_prefill2048_bf16", 16, 1, 512, 0, 16, false, {{2048, 2048}}, 29},
      {"global_chunk128_at8192_bf16", 16, 1, 512, 0, 16, false, {{8192, 128}}, 9},
      {"sliding_chunk128_at8192_fp8", 16, 8, 256, 1024, 16, true, {{8192, 128}}, 9},
      {"sliding_block32", 16, 8, 256, 1024, 32, false, {{1100, 100}, {50, 20}}, 3},
      {"sliding_block12", 16, 8, 256, 1024, 12, false, {{1100, 100}, {50, 20}}, 3},
      {"global_block12_fp8", 16, 1, 512, 0, 12, true, {{1100, 100}, {50, 20}}, 3},
      {"tiny_sliding_mixed", 4, 2, 32, 8, 4, false, {{40, 30}, {9, 9}, {100, 1}, {64, 64}}, 1},
      {"tiny_global_mixed", 4, 1, 64, 0, 4, false, {{40, 30}, {9, 9}, {100, 1}, {64, 64}}, 1},
  };
}

INSTANTIATE_TEST_SUITE_P(Steps, AttentionStepTest, ::testing::ValuesIn(StepCases()),
                         [](const ::testing::TestParamInfo<StepCase>& i) { return std::string(i.param.name); });

}  // namespace
}  // namespace quench
