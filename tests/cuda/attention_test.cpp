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
  for (int i = 0; i < 16; ++i) decode16.push_back({1 + (i * 337) % 3000, 1});
  // Continuous batching: 70 decode tokens and a prefill chunk in one step (T > 64: prefill tiles).
  std::vector<SeqSpec> decodes_and_chunk;
  for (int i = 0; i < 70; ++i) decodes_and_chunk.push_back({2 + (i * 211) % 1300, 1});
  decodes_and_chunk.insert(decodes_and_chunk.begin() + 35, {900, 200});
  return {
      {"sliding_mixed_bf16", 16, 8, 256, 1024, 16, false, mixed_sliding, 5},
      {"sliding_mixed_fp8", 16, 8, 256, 1024, 16, true, mixed_sliding, 5},
      {"global_mixed_bf16", 16, 1, 512, 0, 16, false, mixed_global, 5},
      {"global_mixed_fp8", 16, 1, 512, 0, 16, true, mixed_global, 5},
      {"sliding_decode16_bf16", 16, 8, 256, 1024, 16, false, decode16, 1},
      {"sliding_decodes_and_chunk_bf16", 16, 8, 256, 1024, 16, false, decodes_and_chunk, 3},
      {"global_decodes_and_chunk_fp8", 16, 1, 512, 0, 16, true, decodes_and_chunk, 3},
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
      // Query heads per KV head that do not divide the tile rows: 3 (6 q / 2 kv) and 24 (MQA).
      {"group3_D64", 6, 2, 64, 0, 16, false, {{300, 100}, {50, 1}}, 1},
      {"group24_D128_window", 24, 1, 128, 100, 16, true, {{500, 90}, {70, 1}}, 1},
      {"group24_D128_decode", 24, 1, 128, 0, 16, false, {{500, 1}, {70, 1}, {1, 1}}, 1},
      {"group4_D128_decode_fp8", 8, 2, 128, 0, 12, true, {{900, 1}, {33, 1}, {1, 1}, {2000, 1}}, 1},
      {"group1_D256_window_decode", 4, 4, 256, 64, 16, false, {{300, 1}, {64, 1}, {65, 2}}, 1},
  };
}

INSTANTIATE_TEST_SUITE_P(Steps, AttentionStepTest, ::testing::ValuesIn(StepCases()),
                         [](const ::testing::TestParamInfo<StepCase>& i) { return std::string(i.param.name); });


// ---- q/k/v norms + RoPE + paged cache store -------------------------------------------------

struct QkvCase {
  const char* name;
  int Hq, Hkv, D, T;
  bool fp8, proportional;
};

class QkvRopeTest : public ::testing::TestWithParam<QkvCase> {};

TEST_P(QkvRopeTest, MatchesFp64Reference) {
  QUENCH_SKIP_WITHOUT_GPU();
  const QkvCase c = GetParam();
  const int bs = 16, D = c.D, half = D / 2, T = c.T;
  const float eps = 1e-6f, kscale = 0.03f, vscale = 0.02f;
  std::mt19937 rng(static_cast<uint32_t>(D * 3 + T));
  std::normal_distribution<float> nd(0.0f, 1.5f);
  auto randv = [&](size_t n) {
    std::vector<float> x(n);
    for (auto& e : x) e = nd(rng);
    return x;
  };
  const auto q = randv(static_cast<size_t>(T) * c.Hq * D), k = randv(static_cast<size_t>(T) * c.Hkv * D),
             v = randv(static_cast<size_t>(T) * c.Hkv * D);
  std::vector<float> qn(D), kn(D), inv_freq(half, 0.0f);
  for (int i = 0; i < D; ++i) qn[i] = 1.0f + 0.3f * nd(rng), kn[i] = 1.0f + 0.3f * nd(rng);
  // Default RoPE (theta 1e4, all pairs) or proportional (theta 1e6, first quarter of the pairs).
  const int rotated = c.proportional ? D / 8 : half;
  for (int j = 0; j < rotated; ++j)
    inv_freq[j] = static_cast<float>(1.0 / std::pow(c.proportional ? 1e6 : 1e4, 2.0 * j / D));
  // Two sequences: tokens 0..T/2-1 continue sequence 0 at 100, the rest sequence 1 at 5000.
  std::vector<int32_t> pos(T), seq(T);
  for (int t = 0; t < T; ++t) {
    seq[t] = t < T / 2 ? 0 : 1;
    pos[t] = seq[t] == 0 ? 100 + t : 5000 + (t - T / 2);
  }
  const int mb = 512, pool = 2 * mb;
  std::vector<int32_t> ids(pool);
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  std::vector<int32_t> table(ids.begin(), ids.begin() + 2 * mb);
  const size_t row = static_cast<size_t>(c.Hkv) * D, elem = c.fp8 ? 1 : 2;
  const size_t pool_bytes = static_cast<size_t>(pool) * bs * row * elem;
  auto dq = testing::to_device(q), dk = testing::to_device(k), dv = testing::to_device(v);
  auto dqn = testing::to_device(qn), dkn = testing::to_device(kn), dfreq = testing::to_device(inv_freq);
  auto dpos = testing::to_device(pos), dseq = testing::to_device(seq), dtab = testing::to_device(table);
  cuda::DeviceBuffer kc(pool_bytes), vc(pool_bytes), qo(static_cast<size_t>(T) * c.Hq * D * 2);
  testing::poison(kc);
  testing::poison(vc);
  testing::poison(qo);
  cuda::KvLayerView view{kc.get(), vc.get(), c.fp8, c.fp8 ? kscale : 1.0f, c.fp8 ? vscale : 1.0f, bs, c.Hkv, D};
  cuda::qkv_norm_rope_store(dq.get<float>(), dk.get<float>(), dv.get<float>(), T, c.Hq, c.Hkv, D, dqn.get<float>(),
                            dkn.get<float>(), dfreq.get<float>(), eps, {dpos.get<int32_t>(), dseq.get<int32_t>()},
                            {dtab.get<int32_t>(), mb}, view, qo.get<cuda::bf16>(), nullptr);
  QUENCH_CUDA_CHECK(cudaDeviceSynchronize());
  auto qo_h = testing::to_host<uint16_t>(qo, static_cast<size_t>(T) * c.Hq * D);
  auto kc_h = testing::to_host<uint8_t>(kc, pool_bytes), vc_h = testing::to_host<uint8_t>(vc, pool_bytes);
  // fp64 reference: x / rms(x) * w, then NeoX RoPE on pairs (j, j + D/2).
  auto norm_rope = [&](const float* x, const float* w, int p, bool rope, std::vector<double>& out) {
    double ss = 0;
    for (int i = 0; i < D; ++i) ss += static_cast<double>(x[i]) * x[i];
    const double inv = 1.0 / std::sqrt(ss / D + eps);
    out.assign(D, 0.0);
    for (int i = 0; i < D; ++i) out[i] = x[i] * inv * (w ? w[i] : 1.0);
    if (!rope) return;
    for (int j = 0; j < half; ++j) {
      const double ang = static_cast<double>(static_cast<float>(p) * inv_freq[j]);
      const double x0 = out[j], x1 = out[j + half];
      out[j] = x0 * std::cos(ang) - x1 * std::sin(ang);
      out[j + half] = x1 * std::cos(ang) + x0 * std::sin(ang);
    }
  };
  auto cache_value = [&](const std::vector<uint8_t>& pool_h, size_t idx, float scale) {
    if (c.fp8) return fp8e4m3_to_f32(pool_h[idx]) * scale;
    uint16_t b;
    std::memcpy(&b, &pool_h[idx * 2], 2);
    return bf16_to_f32(b);
  };
  std::vector<float> got_q, ref_q, got_kv, ref_kv;
  std::vector<double> r;
  for (int t = 0; t < T; ++t) {
    for (int h = 0; h < c.Hq; ++h) {
      norm_rope(&q[(static_cast<size_t>(t) * c.Hq + h) * D], qn.data(), pos[t], true, r);
      for (int i = 0; i < D; ++i) {
        ref_q.push_back(static_cast<float>(r[i]));
        got_q.push_back(bf16_to_f32(qo_h[(static_cast<size_t>(t) * c.Hq + h) * D + i]));
      }
    }
    const size_t slot = static_cast<size_t>(table[static_cast<size_t>(seq[t]) * mb + pos[t] / bs]) * bs + pos[t] % bs;
    for (int h = 0; h < c.Hkv; ++h) {
      const size_t src = (static_cast<size_t>(t) * c.Hkv + h) * D, dst = (slot * c.Hkv + h) * D;
      norm_rope(&k[src], kn.data(), pos[t], true, r);
      for (int i = 0; i < D; ++i) {
        ref_kv.push_back(static_cast<float>(r[i]));
        got_kv.push_back(cache_value(kc_h, dst + i, kscale));
      }
      norm_rope(&v[src], nullptr, pos[t], false, r);
      for (int i = 0; i < D; ++i) {
        ref_kv.push_back(static_cast<float>(r[i]));
        got_kv.push_back(cache_value(vc_h, dst + i, vscale));
      }
    }
  }
  for (float x : got_q) ASSERT_TRUE(std::isfinite(x)) << "unwritten q output";
  for (float x : got_kv) ASSERT_TRUE(std::isfinite(x)) << "unwritten cache slot";
  EXPECT_LT(testing::rel_l2(got_q.data(), ref_q.data(), got_q.size()), 5e-3);
  // bf16 cache: rounding only; FP8 E4M3 (3 mantissa bits): relative RMS error ~2-3%.
  EXPECT_LT(testing::rel_l2(got_kv.data(), ref_kv.data(), got_kv.size()), c.fp8 ? 4e-2 : 5e-3);
}

INSTANTIATE_TEST_SUITE_P(Shapes, QkvRopeTest,
                         ::testing::Values(QkvCase{"sliding_bf16", 16, 8, 256, 37, false, false},
                                           QkvCase{"global_fp8", 16, 1, 512, 5, true, true},
                                           QkvCase{"global_bf16", 16, 1, 512, 64, false, true},
                                           QkvCase{"tiny", 4, 2, 32, 9, false, false}),
                         [](const ::testing::TestParamInfo<QkvCase>& i) { return std::string(i.param.name); });

}  // namespace
}  // namespace quench
