// tests/cuda/sampling_test.cpp: the GPU sampler (backend/cuda/gpu_sampler.h) against the CPU
// Sampler (engine/sampler.h) and its DeviceSamplingRow definition (engine/device_sampling.h):
// greedy = argmax, top_k = 1 = greedy, the filtered candidate set of min_p / top_k / top_p equals
// the CPU sampler's (including the shared-memory overflow paths: flat rows, dense clusters),
// adjustments give the CPU's processed logits bit for bit, draws follow the filtered softmax
// (chi-square over fixed seeds), match the CPU draw with the same seed, and do not depend on the
// row's position in the batch. Skips without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "backend/cuda/cuda_runner.h"
#include "backend/cuda/gpu_sampler.h"
#include "cuda_test_util.h"
#include "engine/device_sampling.h"
#include "engine/sampler.h"
#include "io/model_config.h"
#include "model/model.h"

namespace quench {
namespace {

using cuda::DeviceBuffer;
using cuda::GpuSampler;

constexpr int kV = 262144;

struct GpuOut {
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
  std::vector<uint8_t> mask;     ///< [rows, V]
  std::vector<float> adjusted;   ///< logits after the adjustments [n_logits, V]
};

/// Runs the GPU sampler on host logits [n_logits, V].
GpuOut run_gpu(const std::vector<float>& logits, int V, const std::vector<DeviceSamplingRow>& rows) {
  const int n_logits = static_cast<int>(logits.size() / static_cast<size_t>(V));
  DeviceBuffer d_logits = testing::to_device(logits);
  DeviceBuffer d_mask(std::max<size_t>(1, rows.size() * static_cast<size_t>(V)));
  QUENCH_CUDA_CHECK(cudaMemset(d_mask.get(), 0xee, d_mask.bytes()));
  GpuSampler s(V);
  GpuOut o;
  o.tokens.assign(rows.size(), -7);
  o.logprobs.assign(rows.size(), 0.0f);
  s.prepare(rows, n_logits, nullptr);
  s.launch(d_logits.get<float>(), nullptr, d_mask.get<uint8_t>());
  s.finish(nullptr, o.tokens, o.logprobs);
  o.mask = testing::to_host<uint8_t>(d_mask, rows.size() * static_cast<size_t>(V));
  o.adjusted = testing::to_host<float>(d_logits, logits.size());
  return o;
}

std::vector<float> normal_row(int V, float sigma, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, sigma);
  std::vector<float> r(static_cast<size_t>(V));
  for (float& v : r) v = nd(rng);
  return r;
}

/// LM-like row: N(0, 2.5) with a few ids lifted to the top.
std::vector<float> lm_row(int V, std::mt19937& rng) {
  auto r = normal_row(V, 2.5f, rng);
  std::uniform_int_distribution<int> id(0, V - 1);
  std::uniform_real_distribution<float> lift(8.0f, 14.0f);
  for (int j = 0; j < 12; ++j) r[static_cast<size_t>(id(rng))] += lift(rng);
  return r;
}

DeviceSamplingRow row_params(int logits_row, float t, int top_k, float top_p, float min_p, uint64_t seed) {
  DeviceSamplingRow d;
  d.logits_row = logits_row;
  d.temperature = t;
  d.top_k = top_k;
  d.top_p = top_p;
  d.min_p = min_p;
  d.seed = seed;
  return d;
}

/// The CPU sampler's filtered set and token for one row (no processors beyond the row's).
struct CpuDraw {
  std::vector<int32_t> cand;
  int32_t token;
  float logprob;
};
CpuDraw cpu_draw(std::span<const float> logits, const DeviceSamplingRow& r) {
  Sampler s(static_cast<int>(logits.size()), {}, {});
  auto [tok, lp] = sample_device_row_on_host(logits, r, s);
  return {s.last_candidates(), tok, lp};
}

std::vector<int32_t> mask_ids(const std::vector<uint8_t>& mask, size_t row, int V) {
  std::vector<int32_t> ids;
  for (int i = 0; i < V; ++i)
    if (mask[row * static_cast<size_t>(V) + static_cast<size_t>(i)] == 1) ids.push_back(i);
  return ids;
}

TEST(GpuSampling, GreedyIsTheCpuArgmaxWithLowestIdOnTies) {
  QUENCH_SKIP_WITHOUT_GPU();
  std::mt19937 rng(1);
  const int R = 6;
  std::vector<float> logits;
  for (int r = 0; r < R; ++r) {
    auto row = normal_row(kV, 3.0f, rng);
    if (r == 1) {  // a tie at the max: the lower id wins
      const float mx = *std::max_element(row.begin(), row.end()) + 1.0f;
      row[200000] = mx;
      row[7777] = mx;
    }
    if (r == 2) {  // masked ids (-inf) never win, even when everything else is lower
      for (float& v : row) v -= 50.0f;
      row[5] = -std::numeric_limits<float>::infinity();
    }
    logits.insert(logits.end(), row.begin(), row.end());
  }
  std::vector<DeviceSamplingRow> rows;
  for (int r = 0; r < R; ++r) rows.push_back(row_params(r, 0.0f, 0, 1.0f, 0.0f, 0));
  const GpuOut g = run_gpu(logits, kV, rows);
  for (int r = 0; r < R; ++r) {
    std::span<const float> row(logits.data() + static_cast<size_t>(r) * kV, kV);
    int32_t best = -1;
    for (int i = 0; i < kV; ++i)
      if (std::isfinite(row[static_cast<size_t>(i)]) && (best < 0 || row[static_cast<size_t>(i)] > row[static_cast<size_t>(best)])) best = i;
    EXPECT_EQ(g.tokens[static_cast<size_t>(r)], best) << "row " << r;
    const auto lp = log_softmax(row);
    EXPECT_NEAR(g.logprobs[static_cast<size_t>(r)], std::max(lp[static_cast<size_t>(best)], -9999.0f), 2e-4) << "row " << r;
  }
  EXPECT_EQ(g.tokens[1], 7777);
}

TEST(GpuSampling, TopKOneIsGreedy) {
  QUENCH_SKIP_WITHOUT_GPU();
  std::mt19937 rng(2);
  std::vector<float> logits;
  const int R = 8;
  for (int r = 0; r < R; ++r) {
    auto row = lm_row(kV, rng);
    logits.insert(logits.end(), row.begin(), row.end());
  }
  std::vector<DeviceSamplingRow> rows;
  for (int r = 0; r < R; ++r) rows.push_back(row_params(r, 0.7f + 0.1f * r, 1, 1.0f, 0.0f, 100 + r));
  const GpuOut g = run_gpu(logits, kV, rows);
  for (int r = 0; r < R; ++r) {
    auto b = logits.begin() + static_cast<std::ptrdiff_t>(r) * kV;
    EXPECT_EQ(g.tokens[static_cast<size_t>(r)], std::max_element(b, b + kV) - b);
    EXPECT_NEAR(g.logprobs[static_cast<size_t>(r)], 0.0f, 1e-6);
  }
}

struct FilterCase {
  const char* rows;  // "normal1", "normal3", "lm", "flat", "cluster"
  float t;
  int top_k;
  float top_p;
  float min_p;
};

std::vector<float> make_row(const std::string& kind, int V, std::mt19937& rng) {
  if (kind == "normal1") return normal_row(V, 1.0f, rng);
  if (kind == "normal3") return normal_row(V, 3.0f, rng);
  if (kind == "lm") return lm_row(V, rng);
  if (kind == "flat") return std::vector<float>(static_cast<size_t>(V), 1.25f);  // every id tied
  // "cluster": 20000 ids within 0.01 of the max (one level-0 bin holds more than 8192 ids)
  auto r = normal_row(V, 2.0f, rng);
  std::uniform_real_distribution<float> u(0.0f, 0.01f);
  std::uniform_int_distribution<int> id(0, V - 1);
  for (int j = 0; j < 20000; ++j) r[static_cast<size_t>(id(rng))] = 20.0f - u(rng);
  return r;
}

TEST(GpuSampling, FilteredSetEqualsTheCpuSamplersAndSoDoesTheDraw) {
  QUENCH_SKIP_WITHOUT_GPU();
  const FilterCase cases[] = {
      {"lm", 1.0f, 50, 0.95f, 0.0f},     {"lm", 1.0f, 0, 0.95f, 0.0f},      {"lm", 0.6f, 0, 1.0f, 0.05f},
      {"lm", 1.3f, 0, 1.0f, 0.0f},       {"normal1", 1.0f, 0, 0.9f, 0.0f},  {"normal1", 1.0f, 1000, 1.0f, 0.0f},
      {"normal3", 0.8f, 40, 0.7f, 0.02f}, {"normal3", 1.0f, 20000, 1.0f, 0.0f}, {"normal3", 2.0f, 0, 0.5f, 0.0f},
      {"flat", 1.0f, 0, 0.5f, 0.0f},     {"flat", 1.0f, 100, 1.0f, 0.0f},   {"flat", 1.0f, 10, 0.3f, 0.0f},
      {"cluster", 1.0f, 15000, 1.0f, 0.0f}, {"cluster", 1.0f, 0, 0.6f, 0.0f}, {"cluster", 0.5f, 12000, 0.8f, 0.1f},
  };
  std::mt19937 rng(3);
  std::vector<float> logits;
  std::vector<DeviceSamplingRow> rows;
  int r = 0;
  for (const FilterCase& c : cases) {
    auto row = make_row(c.rows, kV, rng);
    logits.insert(logits.end(), row.begin(), row.end());
    rows.push_back(row_params(r, c.t, c.top_k, c.top_p, c.min_p, 9000 + r));
    ++r;
  }
  const GpuOut g = run_gpu(logits, kV, rows);
  int token_mismatch = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const FilterCase& c = cases[i];
    SCOPED_TRACE(::testing::Message() << "case " << i << " " << c.rows << " T=" << c.t << " top_k=" << c.top_k
                                      << " top_p=" << c.top_p << " min_p=" << c.min_p);
    const CpuDraw cpu = cpu_draw(std::span<const float>(logits.data() + i * kV, kV), rows[i]);
    const auto gpu_set = mask_ids(g.mask, i, kV);
    ASSERT_EQ(gpu_set.size(), cpu.cand.size());
    EXPECT_TRUE(gpu_set == cpu.cand);
    EXPECT_TRUE(std::binary_search(gpu_set.begin(), gpu_set.end(), g.tokens[i]));
    token_mismatch += g.tokens[i] != cpu.token;
    if (g.tokens[i] == cpu.token) {
      EXPECT_NEAR(g.logprobs[i], cpu.logprob, 2e-4);
    }
  }
  // Same uniform, same ids, weights within fp32 exp rounding: the same token nearly always.
  EXPECT_LE(token_mismatch, 1);
}

TEST(GpuSampling, VocabularyNotAMultipleOfFour) {
  QUENCH_SKIP_WITHOUT_GPU();
  const int V = 1001;
  std::mt19937 rng(4);
  std::vector<float> logits;
  std::vector<DeviceSamplingRow> rows;
  for (int r = 0; r < 4; ++r) {
    auto row = normal_row(V, 2.0f, rng);
    logits.insert(logits.end(), row.begin(), row.end());
  }
  rows.push_back(row_params(0, 0.0f, 0, 1.0f, 0.0f, 1));
  rows.push_back(row_params(1, 1.0f, 30, 0.9f, 0.0f, 2));
  rows.push_back(row_params(2, 1.0f, 0, 0.8f, 0.01f, 3));
  rows.push_back(row_params(3, 0.9f, 0, 1.0f, 0.0f, 4));
  const GpuOut g = run_gpu(logits, V, rows);
  EXPECT_EQ(g.tokens[0], std::max_element(logits.begin(), logits.begin() + V) - logits.begin());
  for (size_t i = 1; i < rows.size(); ++i) {
    const CpuDraw cpu = cpu_draw(std::span<const float>(logits.data() + i * V, V), rows[i]);
    EXPECT_TRUE(mask_ids(g.mask, i, V) == cpu.cand) << "row " << i;
    EXPECT_EQ(g.tokens[i], cpu.token) << "row " << i;
  }
}

TEST(GpuSampling, AdjustmentsGiveTheCpuSamplersProcessedLogitsExactly) {
  QUENCH_SKIP_WITHOUT_GPU();
  std::mt19937 rng(5);
  std::vector<float> logits = normal_row(kV, 4.0f, rng);
  SamplingParams p;
  p.temperature = 0.0f;
  p.repetition_penalty = 1.35f;
  p.frequency_penalty = 0.7f;
  p.presence_penalty = -0.4f;
  p.min_tokens = 5;
  p.stop_token_ids = {12, 13};
  std::uniform_int_distribution<int> id(0, kV - 1);
  for (int j = 0; j < 50; ++j) p.logit_bias[id(rng)] = std::uniform_real_distribution<float>(-120.0f, 120.0f)(rng);
  std::unordered_set<int32_t> seen;
  std::unordered_map<int32_t, int> counts;
  for (int j = 0; j < 3000; ++j) seen.insert(id(rng));
  for (int j = 0; j < 400; ++j) {
    const int32_t t = id(rng);
    seen.insert(t);
    ++counts[t];
  }
  const std::vector<int32_t> suppress = {0, 100, 262143};
  const std::vector<int32_t> eos = {1, 106};
  SamplerSeqState st;
  st.params = &p;
  st.seen_ids = &seen;
  st.output_counts = &counts;
  st.num_output_tokens = 2;
  std::vector<LogitAdjustment> adj;
  build_logit_adjustments(st, suppress, eos, kV, adj);
  std::vector<DeviceSamplingRow> rows = {make_device_sampling_row(st, 0, adj)};
  const GpuOut g = run_gpu(logits, kV, rows);
  std::vector<float> want = logits;
  Sampler(kV, suppress, eos).apply_processors(want, st);
  size_t diff = 0;
  for (size_t i = 0; i < want.size(); ++i) diff += !(g.adjusted[i] == want[i] || (std::isnan(want[i]) && std::isnan(g.adjusted[i])));
  EXPECT_EQ(diff, 0u);
  // Greedy over the adjusted row: the CPU sampler's token.
  std::vector<float> copy = logits;
  Sampler cpu(kV, suppress, eos);
  EXPECT_EQ(g.tokens[0], cpu.sample(copy, st).token_id);
}

TEST(GpuSampling, DrawsFollowTheFilteredSoftmaxAndTheCpuDraws) {
  QUENCH_SKIP_WITHOUT_GPU();
  // One logits row, 20000 draws with seeds 0..19999 (all rows of one batch share the row).
  const int V = 4096;
  std::mt19937 rng(6);
  std::vector<float> logits = normal_row(V, 2.0f, rng);
  const int N = 20000;
  std::vector<DeviceSamplingRow> rows;
  for (int s = 0; s < N; ++s) rows.push_back(row_params(0, 0.9f, 40, 0.9f, 0.0f, static_cast<uint64_t>(s)));
  const GpuOut g = run_gpu(logits, V, rows);
  const CpuDraw ref = cpu_draw(logits, rows[0]);
  ASSERT_GT(ref.cand.size(), 5u);
  // Expected probabilities: softmax of l / T over the CPU's filtered set.
  std::vector<double> prob(ref.cand.size());
  double mx = -1e30, z = 0;
  for (int32_t id : ref.cand) mx = std::max(mx, static_cast<double>(logits[static_cast<size_t>(id)] / 0.9f));
  for (size_t j = 0; j < ref.cand.size(); ++j) z += prob[j] = std::exp(logits[static_cast<size_t>(ref.cand[j])] / 0.9f - mx);
  std::unordered_map<int32_t, int> count;
  int agree = 0;
  for (int s = 0; s < N; ++s) {
    ++count[g.tokens[static_cast<size_t>(s)]];
    agree += g.tokens[static_cast<size_t>(s)] == cpu_draw(logits, rows[static_cast<size_t>(s)]).token;
  }
  double chi2 = 0;
  size_t seen = 0;
  for (size_t j = 0; j < ref.cand.size(); ++j) {
    const double e = N * prob[j] / z;
    const int o = count.count(ref.cand[j]) ? count[ref.cand[j]] : 0;
    seen += static_cast<size_t>(o);
    chi2 += (o - e) * (o - e) / e;
  }
  EXPECT_EQ(seen, static_cast<size_t>(N)) << "draws outside the filtered set";
  const double df = static_cast<double>(ref.cand.size() - 1);
  EXPECT_LT(chi2, df + 6.0 * std::sqrt(2.0 * df)) << "df " << df;  // far beyond the 1e-6 tail
  EXPECT_GE(agree, N - N / 1000) << "GPU and CPU draws with the same seeds";
}

TEST(GpuSampling, SameSeedSameTokenWhateverTheRowPosition) {
  QUENCH_SKIP_WITHOUT_GPU();
  std::mt19937 rng(7);
  const int L = 4;
  std::vector<float> logits;
  for (int r = 0; r < L; ++r) {
    auto row = lm_row(kV, rng);
    for (float& v : row) v *= 0.4f;  // flatter: many ids in play
    logits.insert(logits.end(), row.begin(), row.end());
  }
  std::vector<DeviceSamplingRow> a;
  for (int s = 0; s < 32; ++s) {
    DeviceSamplingRow d = row_params(s % L, 1.0f, s % 3 == 0 ? 50 : 0, s % 2 ? 0.95f : 1.0f, 0.0f, 500 + s);
    d.index = static_cast<uint64_t>(s % 2);
    d.step = static_cast<uint64_t>(s);
    a.push_back(d);
  }
  std::vector<DeviceSamplingRow> b(a.rbegin(), a.rend());
  std::rotate(b.begin(), b.begin() + 11, b.end());
  const GpuOut ga = run_gpu(logits, kV, a);
  const GpuOut gb = run_gpu(logits, kV, b);
  const GpuOut ga2 = run_gpu(logits, kV, a);
  for (size_t i = 0; i < a.size(); ++i) {
    const auto it = std::find_if(b.begin(), b.end(), [&](const DeviceSamplingRow& d) { return d.seed == a[i].seed; });
    const size_t j = static_cast<size_t>(it - b.begin());
    EXPECT_EQ(ga.tokens[i], gb.tokens[j]) << "seed " << a[i].seed;
    EXPECT_EQ(ga.logprobs[i], gb.logprobs[j]) << "seed " << a[i].seed;
    EXPECT_EQ(ga.tokens[i], ga2.tokens[i]) << "run to run, seed " << a[i].seed;
  }
  // Alone in its batch, the same draw.
  for (size_t i = 0; i < a.size(); i += 7) {
    DeviceSamplingRow one = a[i];
    const int lr = one.logits_row;
    one.logits_row = 0;
    std::vector<float> row(logits.begin() + static_cast<std::ptrdiff_t>(lr) * kV, logits.begin() + static_cast<std::ptrdiff_t>(lr + 1) * kV);
    EXPECT_EQ(run_gpu(row, kV, {one}).tokens[0], ga.tokens[i]) << "seed " << a[i].seed;
  }
  // Different seeds on one flat-ish row do not all agree.
  std::set<int32_t> distinct(ga.tokens.begin(), ga.tokens.end());
  EXPECT_GT(distinct.size(), 4u);
}

TEST(GpuSampling, RowWithEveryIdMaskedGivesMinusOneAndBadRowsAreRefused) {
  QUENCH_SKIP_WITHOUT_GPU();
  const int V = 512;
  std::vector<float> logits(2 * V, -std::numeric_limits<float>::infinity());
  for (int i = 0; i < V; ++i) logits[static_cast<size_t>(V + i)] = static_cast<float>(i % 7);
  std::vector<DeviceSamplingRow> rows = {row_params(0, 1.0f, 0, 1.0f, 0.0f, 1), row_params(0, 0.0f, 0, 1.0f, 0.0f, 1),
                                         row_params(1, 1.0f, 5, 1.0f, 0.0f, 1)};
  const GpuOut g = run_gpu(logits, V, rows);
  EXPECT_EQ(g.tokens[0], -1);
  EXPECT_EQ(g.tokens[1], -1);
  EXPECT_GE(g.tokens[2], 0);
  EXPECT_EQ(g.tokens[2] % 7, 6);  // top_k 5 keeps the ties at the maximum 6
  GpuSampler s(V);
  std::vector<DeviceSamplingRow> bad = {row_params(2, 1.0f, 0, 1.0f, 0.0f, 1)};
  EXPECT_THROW(s.prepare(bad, 2, nullptr), InvalidArgument);
  LogitAdjustment a;
  a.token_id = V;
  std::vector<LogitAdjustment> adj = {a};
  bad[0].logits_row = 0;
  bad[0].adjustments = adj;
  EXPECT_THROW(s.prepare(bad, 2, nullptr), InvalidArgument);
}

TEST(GpuSampling, CudaRunnerExecuteSampleEqualsExecuteThenTheHostDraw) {
  QUENCH_SKIP_WITHOUT_GPU();
  const std::filesystem::path dir = std::filesystem::path(QUENCH_SOURCE_DIR) / "tests/data/golden/tiny-bf16";
  if (!std::filesystem::exists(dir / "config.json")) GTEST_SKIP() << "golden fixture missing: " << dir;
  std::shared_ptr<const Model> model = Model::load(dir);
  const int V = model->config().vocab_size;
  KvCacheConfig kv;
  kv.block_size = 4;
  kv.num_blocks_full = kv.num_blocks_sliding = 32;
  // Two runners fed the same tokens: one hands its logits to the host, one samples on the GPU.
  cuda::CudaModelRunner host_side(model, kv), device_side(model, kv);
  ASSERT_TRUE(device_side.supports_device_sampling());
  std::mt19937 rng(8);
  std::uniform_int_distribution<int> tok(3, V - 1);
  const int S = 3;
  std::vector<std::vector<int32_t>> ids(S), tables(S);
  for (int i = 0; i < S; ++i) {
    for (int j = 0; j < 5 + 3 * i; ++j) ids[static_cast<size_t>(i)].push_back(tok(rng));
    for (int b = 0; b < 8; ++b) tables[static_cast<size_t>(i)].push_back(i * 8 + b);
  }
  // Penalties on sequence 2 (its prompt ids are "seen"; the first prompt id also counted as output).
  SamplingParams pen;
  pen.repetition_penalty = 1.5f;
  pen.frequency_penalty = 0.5f;
  std::vector<int> done(S, 0);  // tokens computed per sequence
  for (int step = 0; step < 5; ++step) {
    std::vector<SeqStep> batch(S);
    for (int i = 0; i < S; ++i) {
      auto& v = ids[static_cast<size_t>(i)];
      batch[static_cast<size_t>(i)] = SeqStep{std::span<const int32_t>(v).subspan(static_cast<size_t>(done[static_cast<size_t>(i)])),
                                              done[static_cast<size_t>(i)], tables[static_cast<size_t>(i)],
                                              tables[static_cast<size_t>(i)], true};
    }
    std::unordered_set<int32_t> seen(ids[2].begin(), ids[2].end());
    std::unordered_map<int32_t, int> counts = {{ids[2][0], 2}};
    SamplerSeqState st;
    st.params = &pen;
    st.seen_ids = &seen;
    st.output_counts = &counts;
    std::vector<LogitAdjustment> adj;
    build_logit_adjustments(st, {}, {}, V, adj);
    std::vector<DeviceSamplingRow> rows = {
        row_params(0, step % 2 ? 0.0f : 1.0f, 0, 0.9f, 0.0f, 11),  // greedy / top_p, alternating
        row_params(1, 0.8f, 20, 1.0f, 0.05f, 12),
        row_params(2, 1.0f, 0, 1.0f, 0.0f, 13),
        row_params(1, 0.8f, 20, 1.0f, 0.05f, 14),  // shares logits row 1 (a fork)
    };
    rows[2].repetition_penalty = pen.repetition_penalty;
    rows[2].frequency_penalty = pen.frequency_penalty;
    rows[2].adjustments = adj;
    rows[3].index = 1;
    for (auto& r : rows) r.step = static_cast<uint64_t>(step);
    std::vector<float> logits(static_cast<size_t>(S) * V);
    host_side.execute(batch, logits);
    std::vector<int32_t> got(rows.size());
    std::vector<float> got_lp(rows.size());
    device_side.execute_sample(batch, rows, got, got_lp);
    for (size_t r = 0; r < rows.size(); ++r) {
      const CpuDraw want = cpu_draw(std::span<const float>(logits.data() + static_cast<size_t>(rows[r].logits_row) * V, V), rows[r]);
      EXPECT_EQ(got[r], want.token) << "step " << step << " row " << r;
      EXPECT_NEAR(got_lp[r], want.logprob, 2e-3) << "step " << step << " row " << r;
    }
    // All-greedy rows without adjustments take the argmax fused into the step.
    for (int i = 0; i < S; ++i) done[static_cast<size_t>(i)] = static_cast<int>(ids[static_cast<size_t>(i)].size());
    for (int i = 0; i < S; ++i) ids[static_cast<size_t>(i)].push_back(got[static_cast<size_t>(i)]);
  }
  // The fused-argmax path: every row greedy, no logprobs.
  std::vector<SeqStep> batch(S);
  for (int i = 0; i < S; ++i)
    batch[static_cast<size_t>(i)] = SeqStep{std::span<const int32_t>(ids[static_cast<size_t>(i)]).subspan(static_cast<size_t>(done[static_cast<size_t>(i)])),
                                            done[static_cast<size_t>(i)], tables[static_cast<size_t>(i)], tables[static_cast<size_t>(i)], true};
  std::vector<float> logits(static_cast<size_t>(S) * V);
  host_side.execute(batch, logits);
  std::vector<DeviceSamplingRow> rows = {row_params(2, 0.0f, 0, 1.0f, 0.0f, 0), row_params(0, 0.0f, 0, 1.0f, 0.0f, 0)};
  std::vector<int32_t> got(2);
  device_side.execute_sample(batch, rows, got, {});
  auto am = [&](int r) { return static_cast<int32_t>(std::max_element(logits.begin() + r * V, logits.begin() + (r + 1) * V) - (logits.begin() + r * V)); };
  EXPECT_EQ(got[0], am(2));
  EXPECT_EQ(got[1], am(0));
}

}  // namespace
}  // namespace quench

