// tests/cuda/runner_test.cpp: the CUDA runner end to end on the golden tiny checkpoints
// (tests/data/golden/, logits recorded by transformers in fp32) and against the CPU runner:
// prefill then one-token decode steps, same argmax and logits within bf16 tolerance; the FP8 KV
// cache close to the bf16 one. Decode batches padded to their CUDA-graph bucket give the logits of
// the exact batch run eagerly, and graph replay across changing batch sizes equals eager steps.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <numeric>
#include <random>

#include <fstream>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include "backend/cpu/runner.h"
#include "backend/cuda/cuda_runner.h"
#include "backend/cuda/kernels.h"
#include "quant/synth.h"
#include "cuda_test_util.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "model/model.h"

namespace quench {
namespace {

namespace fs = std::filesystem;

fs::path golden(const std::string& name) { return fs::path(QUENCH_SOURCE_DIR) / "tests/data/golden" / name; }

int argmax(const float* v, int n) { return static_cast<int>(std::max_element(v, v + n) - v); }

/// Runs prefill of the first P tokens then one token per step; returns logits [N-P+1, V] for
/// positions P-1 .. N-1.
std::vector<float> run_decode(ModelRunner& r, const std::vector<int32_t>& ids, int P) {
  const int V = r.config().vocab_size;
  const KvCacheSpec spec = r.kv_cache_spec();
  const int nb = (static_cast<int>(ids.size()) + spec.block_size - 1) / spec.block_size;
  std::vector<int32_t> table(nb);
  std::iota(table.begin(), table.end(), 1);
  std::reverse(table.begin(), table.end());  // non-trivial physical order
  std::vector<float> out;
  std::vector<float> step(V);
  for (int end = P; end <= static_cast<int>(ids.size()); ++end) {
    const int start = end == P ? 0 : end - 1;
    SeqStep s;
    s.tokens = std::span<const int32_t>(ids.data() + start, end - start);
    s.start_pos = start;
    s.block_table_full = table;
    s.block_table_sliding = table;
    r.execute(std::span<const SeqStep>(&s, 1), step);
    out.insert(out.end(), step.begin(), step.end());
  }
  return out;
}

class CudaRunnerGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaRunnerGolden, MatchesTransformersAndCpu) {
  QUENCH_SKIP_WITHOUT_GPU();
  const fs::path dir = golden(GetParam());
  if (!fs::exists(dir / "reference.safetensors")) GTEST_SKIP() << "golden fixture missing: " << dir;
  std::shared_ptr<const Model> model = Model::load(dir);
  auto ref = SafetensorsFile::open(dir / "reference.safetensors");
  const TensorView& ids_t = ref->tensors().at("input_ids");
  const TensorView& logits_t = ref->tensors().at("logits");
  std::vector<int32_t> ids(ids_t.numel());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(ids_t.get_f32(static_cast<int64_t>(i)));
  const std::vector<float> ref_logits = logits_t.to_f32();
  const int V = model->config().vocab_size, N = static_cast<int>(ids.size()), P = N / 2;

  KvCacheConfig kv;
  kv.block_size = 4;
  kv.num_blocks_full = kv.num_blocks_sliding = (N + 3) / 4 + 2;
  cuda::CudaModelRunner gpu(model, kv);
  CpuModelRunner cpu(model, kv);
  const std::vector<float> g = run_decode(gpu, ids, P);
  const std::vector<float> c = run_decode(cpu, ids, P);
  int argmax_mismatch_ref = 0, argmax_mismatch_cpu = 0;
  double worst_ref = 0, worst_cpu = 0;
  for (int i = 0; i + P - 1 < N; ++i) {
    const float* gi = g.data() + static_cast<size_t>(i) * V;
    const float* ri = ref_logits.data() + static_cast<size_t>(i + P - 1) * V;
    const float* ci = c.data() + static_cast<size_t>(i) * V;
    worst_ref = std::max(worst_ref, testing::rel_l2(gi, ri, V));
    worst_cpu = std::max(worst_cpu, testing::rel_l2(gi, ci, V));
    argmax_mismatch_ref += argmax(gi, V) != argmax(ri, V);
    argmax_mismatch_cpu += argmax(gi, V) != argmax(ci, V);
  }
  std::printf("[ parity ] %s: GPU vs transformers worst rel L2 %.3e, vs CPU %.3e, argmax mismatches %d / %d\n",
              GetParam().c_str(), worst_ref, worst_cpu, argmax_mismatch_ref, argmax_mismatch_cpu);
  EXPECT_LT(worst_ref, 2e-2);
  EXPECT_LT(worst_cpu, 2e-2);
  EXPECT_EQ(argmax_mismatch_ref, 0);
  EXPECT_EQ(argmax_mismatch_cpu, 0);

  // FP8 E4M3 KV cache (scales 1.0 on this fixture): close to the bf16-cache logits.
  kv.dtype = KvCacheDtype::kFP8E4M3;
  cuda::CudaModelRunner gpu8(model, kv);
  const std::vector<float> g8 = run_decode(gpu8, ids, P);
  EXPECT_LT(testing::rel_l2(g8.data(), g.data(), g.size()), 0.1);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaRunnerGolden,
                         ::testing::Values("tiny-fp32", "tiny-bf16", "tiny-globalkeys"));

TEST(CudaRunner, RejectsBadBlockIds) {
  QUENCH_SKIP_WITHOUT_GPU();
  const fs::path dir = golden("tiny-bf16");
  if (!fs::exists(dir / "config.json")) GTEST_SKIP() << "golden fixture missing: " << dir;
  std::shared_ptr<const Model> model = Model::load(dir);
  KvCacheConfig kv;
  kv.block_size = 4;
  kv.num_blocks_full = kv.num_blocks_sliding = 4;
  cuda::CudaModelRunner gpu(model, kv);
  std::vector<int32_t> ids = {2, 5, 6}, table = {99};
  SeqStep s{ids, 0, table, table, true};
  std::vector<float> logits(model->config().vocab_size);
  EXPECT_THROW(gpu.execute(std::span<const SeqStep>(&s, 1), logits), InvalidArgument);
}

TEST(CudaRunner, DecodeBatchBuckets) {
  // Pure host arithmetic: runs without a GPU too.
  const std::vector<std::pair<int, int>> want = {{1, 1},   {2, 2},   {3, 4},    {4, 4},    {5, 8},    {8, 8},
                                                 {9, 16},  {16, 16}, {17, 24},  {24, 24},  {25, 32},  {33, 48},
                                                 {49, 64}, {65, 96}, {97, 128}, {129, 192}, {200, 256}, {300, 384}};
  for (const auto& [n, b] : want) EXPECT_EQ(cuda::decode_batch_bucket(n), b) << "n = " << n;
}

/// Sequences with their own prompts, positions and (scattered) block tables in one KV pool.
struct Seqs {
  std::vector<std::vector<int32_t>> ids, tables;
  std::vector<int> pos;  ///< next position to decode
};

Seqs make_seqs(int n, int len, int block_size, int vocab, std::mt19937& rng) {
  Seqs s;
  std::uniform_int_distribution<int> tok(3, vocab - 1);
  const int nb = (len + block_size - 1) / block_size;
  std::vector<int32_t> free(static_cast<size_t>(n) * nb);
  std::iota(free.begin(), free.end(), 0);
  std::shuffle(free.begin(), free.end(), rng);
  for (int i = 0; i < n; ++i) {
    s.ids.emplace_back(len);
    for (auto& t : s.ids.back()) t = tok(rng);
    s.tables.emplace_back(free.begin() + static_cast<long>(i) * nb, free.begin() + static_cast<long>(i + 1) * nb);
    s.pos.push_back(0);
  }
  return s;
}

/// Prefills sequence i up to `upto` tokens on every runner (eagerly: prefill steps never use graphs).
void prefill(std::vector<ModelRunner*> runners, Seqs& s, int i, int upto) {
  SeqStep st{std::span<const int32_t>(s.ids[i].data(), upto), 0, s.tables[i], s.tables[i], true};
  std::vector<float> logits(runners[0]->config().vocab_size);
  for (ModelRunner* r : runners) r->execute(std::span<const SeqStep>(&st, 1), logits);
  s.pos[i] = upto;
}

/// One decode step of the sequences `which` (each advances one position); returns the logits.
std::vector<float> decode(ModelRunner& r, const Seqs& s, const std::vector<int>& which) {
  std::vector<SeqStep> steps;
  for (int i : which)
    steps.push_back(SeqStep{std::span<const int32_t>(s.ids[i].data() + s.pos[i], 1), s.pos[i], s.tables[i],
                            s.tables[i], true});
  std::vector<float> logits(which.size() * static_cast<size_t>(r.config().vocab_size));
  r.execute(steps, logits);
  return logits;
}

/// Decode steps over a changing subset of sequences: graph runner (padded to its bucket, first
/// sight eager, then captured and replayed) vs eager runner at the exact batch size; logits
/// equal within float rounding of the GEMMs (a padded row leaking into a real one, or a stale
/// graph, is an O(1) error), argmax identical, greedy tokens equal.
TEST(CudaRunner, BucketedGraphReplayEqualsEagerExactBatch) {
  QUENCH_SKIP_WITHOUT_GPU();
  const fs::path dir = golden("tiny-globalkeys");
  if (!fs::exists(dir / "config.json")) GTEST_SKIP() << "golden fixture missing: " << dir;
  std::shared_ptr<const Model> model = Model::load(dir);
  const int V = model->config().vocab_size, n_seqs = 20, len = 64, bs = 4;
  std::mt19937 rng(2024);
  Seqs s = make_seqs(n_seqs, len, bs, V, rng);
  KvCacheConfig kv;
  kv.block_size = bs;
  kv.num_blocks_full = kv.num_blocks_sliding = n_seqs * (len / bs);
  cuda::CudaModelRunner graphed(model, kv), eager(model, kv);
  eager.set_use_cuda_graphs(false);
  for (int i = 0; i < n_seqs; ++i) prefill({&graphed, &eager}, s, i, 5 + i % 7);

  // Batch sizes that move between buckets (3 -> 4, 5 -> 8, 11 -> 16, 17 -> 24) and come back, so
  // layouts are seen for the first time (eager), the second time (capture) and later (replay).
  const std::vector<int> sizes = {1, 3, 3, 5, 3, 5, 11, 1, 3, 11, 17, 11, 17, 2, 17, 3, 20, 5, 20, 7, 6};
  double worst = 0;
  int mismatches = 0;
  for (size_t k = 0; k < sizes.size(); ++k) {
    std::vector<int> which(n_seqs);
    std::iota(which.begin(), which.end(), 0);
    std::shuffle(which.begin(), which.end(), rng);
    which.resize(sizes[k]);
    const std::vector<float> g = decode(graphed, s, which), e = decode(eager, s, which);
    for (size_t j = 0; j < which.size(); ++j) {
      const float* gj = g.data() + j * V;
      const float* ej = e.data() + j * V;
      for (int v = 0; v < V; ++v) ASSERT_TRUE(std::isfinite(gj[v])) << "step " << k << " row " << j;
      worst = std::max(worst, testing::rel_l2(gj, ej, V));
      mismatches += argmax(gj, V) != argmax(ej, V);
    }
    for (int i : which) ++s.pos[i];
  }
  std::printf("[ graphs ] %zu steps, %zu graphs held, %zu captures, worst rel L2 vs eager %.3e\n", sizes.size(),
              graphed.num_captured_graphs(), graphed.num_graph_captures(), worst);
  // Batches of <= 8 rows take the skinny GEMMs (rows independent); 16 and 24 may take another
  // GEMM tiling than the exact 11 or 17, so fp32 sums can differ in order: float rounding only.
  EXPECT_LT(worst, 1e-3);
  EXPECT_EQ(mismatches, 0);
  // Buckets 1, 2, 4, 8, 16, 24 with one block-width bucket (contexts <= 64 tokens): 5 layouts
  // recur (2 is seen once: eager only), each captured once however often it recurs (step buffers
  // are sized for 64 tokens from the start, so no growth drops a graph here).
  EXPECT_EQ(graphed.num_graph_captures(), 5u);
  EXPECT_EQ(graphed.num_captured_graphs(), 5u);

  // Greedy decoding on the GPU (argmax with the softcap fused, inside the graph) picks the argmax
  // of the eager runner's soft-capped logits, for a padded batch of 5 (bucket 8), replayed.
  for (int rep = 0; rep < 3; ++rep) {
    const std::vector<int> which = {4, 0, 13, 7, 19};
    std::vector<SeqStep> steps;
    for (int i : which)
      steps.push_back(SeqStep{std::span<const int32_t>(s.ids[i].data() + s.pos[i], 1), s.pos[i], s.tables[i],
                              s.tables[i], true});
    std::vector<int32_t> tokens(which.size(), -1);
    graphed.execute_greedy(steps, tokens);
    const std::vector<float> e = decode(eager, s, which);
    for (size_t j = 0; j < which.size(); ++j) EXPECT_EQ(tokens[j], argmax(e.data() + j * V, V)) << "rep " << rep;
    for (int i : which) ++s.pos[i];
  }
}

/// The per-op profile covers the whole eager step: every op kind that runs gets time, the sum is
/// positive, and the tokens equal execute_greedy's.
TEST(CudaRunner, ProfiledStepMatchesGreedy) {
  QUENCH_SKIP_WITHOUT_GPU();
  const fs::path dir = golden("tiny-bf16");
  if (!fs::exists(dir / "config.json")) GTEST_SKIP() << "golden fixture missing: " << dir;
  std::shared_ptr<const Model> model = Model::load(dir);
  const int V = model->config().vocab_size;
  std::mt19937 rng(99);
  Seqs s = make_seqs(3, 32, 4, V, rng);
  KvCacheConfig kv;
  kv.block_size = 4;
  kv.num_blocks_full = kv.num_blocks_sliding = 3 * 8;
  cuda::CudaModelRunner a(model, kv), b(model, kv);
  for (int i = 0; i < 3; ++i) prefill({&a, &b}, s, i, 9);
  std::vector<SeqStep> steps;
  for (int i = 0; i < 3; ++i)
    steps.push_back(SeqStep{std::span<const int32_t>(s.ids[i].data() + 9, 1), 9, s.tables[i], s.tables[i], true});
  std::vector<int32_t> ta(3, -1), tb(3, -2);
  cuda::StepProfile prof;
  a.execute_profiled(steps, ta, prof);
  b.execute_greedy(steps, tb);
  EXPECT_EQ(ta, tb);
  EXPECT_EQ(prof.steps, 1);
  EXPECT_GT(prof.total_ms(), 0.0);
  for (const cuda::StepOp op : {cuda::StepOp::kEmbed, cuda::StepOp::kQkvProj, cuda::StepOp::kAttention,
                                cuda::StepOp::kNorms, cuda::StepOp::kMlpDown, cuda::StepOp::kLmHead,
                                cuda::StepOp::kLogits})
    EXPECT_GT(prof.ms[static_cast<int>(op)], 0.0) << cuda::op_kind_name(op);
}

/// The graph-mode profile: every node of the step's graph belongs to exactly one op kind (the
/// alone-captures partition the whole capture), every op kind of a greedy decode step has nodes,
/// times are positive, and the garbage replays leave the sequences valid: the next decode steps
/// equal those of a runner that never profiled.
TEST(CudaRunner, GraphProfilePartitionsTheStepAndKeepsSequencesValid) {
  QUENCH_SKIP_WITHOUT_GPU();
  const fs::path dir = golden("tiny-globalkeys");
  if (!fs::exists(dir / "config.json")) GTEST_SKIP() << "golden fixture missing: " << dir;
  std::shared_ptr<const Model> model = Model::load(dir);
  const int V = model->config().vocab_size;
  std::mt19937 rng(77);
  Seqs s = make_seqs(3, 40, 4, V, rng);
  KvCacheConfig kv;
  kv.block_size = 4;
  kv.num_blocks_full = kv.num_blocks_sliding = 3 * 10;
  cuda::CudaModelRunner a(model, kv), b(model, kv);
  for (int i = 0; i < 3; ++i) prefill({&a, &b}, s, i, 7 + 3 * i);
  auto steps_at = [&](const Seqs& q) {
    std::vector<SeqStep> st;
    for (int i = 0; i < 3; ++i)
      st.push_back(SeqStep{std::span<const int32_t>(q.ids[i].data() + q.pos[i], 1), q.pos[i], q.tables[i],
                           q.tables[i], true});
    return st;
  };
  // Step 1 on both runners; `a` profiles it in graph mode (3 rows: bucket 4, one padding row).
  std::vector<int32_t> ta(3, -1), tb(3, -2);
  const std::vector<SeqStep> st = steps_at(s);
  const cuda::GraphProfile g = a.profile_graph(st, 3);
  b.execute_greedy(st, tb);
  for (int i = 0; i < 3; ++i) ++s.pos[i];
  EXPECT_EQ(g.rows, 4);
  EXPECT_GT(g.full_ms, 0.0);
  EXPECT_GT(g.step_wall_ms, 0.0);
  int sum = 0;
  for (int i = 0; i < cuda::GraphProfile::kOps; ++i) {
    const char* name = cuda::op_kind_name(static_cast<cuda::StepOp>(i));
    sum += g.nodes[i];
    if (static_cast<cuda::StepOp>(i) != cuda::StepOp::kQkvNormRope || g.nodes[i] > 0) {
      EXPECT_GT(g.nodes[i], 0) << name;
      EXPECT_GT(g.alone_ms[i], 0.0) << name;
    }
    EXPECT_GT(g.without_ms[i], 0.0) << name;
    EXPECT_GT(g.bytes[i], 0.0) << name;
  }
  EXPECT_EQ(sum, g.total_nodes);
  // The next three steps: the profiled runner's sequences are intact.
  for (int k = 0; k < 3; ++k) {
    const std::vector<SeqStep> next = steps_at(s);
    a.execute_greedy(next, ta);
    b.execute_greedy(next, tb);
    EXPECT_EQ(ta, tb) << "step " << k;
    for (int i = 0; i < 3; ++i) ++s.pos[i];
  }
  EXPECT_THROW(a.profile_graph(st, 0), InvalidArgument);
  std::vector<int32_t> two = {5, 6};
  SeqStep multi{two, s.pos[0], s.tables[0], s.tables[0], true};
  EXPECT_THROW(a.profile_graph(std::span<const SeqStep>(&multi, 1), 2), InvalidArgument);
}

/// A random Gemma 4 checkpoint with the 12B's attention shapes (sliding: 16 q heads x 256 over
/// 8 KV heads; global: 16 q heads x 512 over 1 KV head, k_eq_v) on a small hidden size and two
/// layers (one of each: few layers keep a random net from amplifying rounding differences into
/// large logit differences), written to `dir` by quench synth (the golden tiny models' head dims
/// are outside the single-launch decode kernels' shapes).
std::shared_ptr<const Model> attention_shaped_model(const fs::path& dir) {
  std::ifstream in(golden("tiny-globalkeys") / "config.json");
  nlohmann::ordered_json c = nlohmann::ordered_json::parse(in);
  auto& t = c["text_config"];
  t["hidden_size"] = 128;
  t["intermediate_size"] = 256;
  t["head_dim"] = 256;
  t["global_head_dim"] = 512;
  t["num_attention_heads"] = 16;
  t["num_key_value_heads"] = 8;
  t["num_global_key_value_heads"] = 1;
  t["num_hidden_layers"] = 2;
  t["layer_types"] = {"sliding_attention", "full_attention"};
  t["sliding_window"] = 64;
  t["max_position_embeddings"] = 1024;
  c["vision_config"] = nullptr;
  fs::remove_all(dir);
  fs::create_directories(dir);
  SynthOptions o;
  o.seed = 17;
  o.weight_std = 0.05f;
  o.multimodal = false;
  synth_checkpoint(c, dir, o);
  return Model::load(dir);
}

/// Decode steps on the 12B's attention shapes, step after step with contexts past the sliding
/// window (each step reads what the previous steps stored), through `path` (graph-replayed with a
/// padding row, decode_attention_fused on; `fold` = set_fold_decode_store) against the split
/// kernels (store, split partials, combine) run eagerly at the exact batch. Returns the worst
/// logits rel L2 over the steps; counts argmax mismatches into `mismatches`.
double decode_path_vs_split_kernels(bool fold, int& mismatches) {
  const fs::path dir = fs::temp_directory_path() /
                       ("quench-runner-attn-shapes-" + std::to_string(::getpid()) + (fold ? "-f" : "-s"));
  std::shared_ptr<const Model> model = attention_shaped_model(dir);
  const int V = model->config().vocab_size;
  std::mt19937 rng(808);
  Seqs s = make_seqs(3, 160, 16, V, rng);
  KvCacheConfig kv;
  kv.block_size = 16;
  kv.num_blocks_full = kv.num_blocks_sliding = 3 * 10;
  const bool fused_default = cuda::decode_attention_fused();
  cuda::CudaModelRunner split(model, kv), path(model, kv);
  split.set_use_cuda_graphs(false);
  path.set_fold_decode_store(fold);
  const int ctx[3] = {100, 70, 130};
  for (int i = 0; i < 3; ++i) prefill({&split, &path}, s, i, ctx[i]);
  double worst = 0;
  for (int step = 0; step < 8; ++step) {  // 3 rows: bucket 4 (a padding row); eager, capture, replays
    cuda::set_decode_attention_fused(false);
    const std::vector<float> ref = decode(split, s, {0, 1, 2});
    cuda::set_decode_attention_fused(true);
    const std::vector<float> a = decode(path, s, {0, 1, 2});
    double step_worst = 0;
    for (int j = 0; j < 3; ++j) {
      const float* r = ref.data() + size_t(j) * V;
      const float* g = a.data() + size_t(j) * V;
      for (int v = 0; v < V; ++v) EXPECT_TRUE(std::isfinite(g[v])) << "step " << step << " row " << j;
      step_worst = std::max(step_worst, testing::rel_l2(g, r, V));
      mismatches += argmax(g, V) != argmax(r, V);
    }
    std::printf("[ decode path ] %s step %d: rel L2 vs split kernels %.3e\n", fold ? "folded" : "single-launch", step,
                step_worst);
    worst = std::max(worst, step_worst);
    for (int i : {0, 1, 2}) ++s.pos[i];
  }
  cuda::set_decode_attention_fused(fused_default);
  fs::remove_all(dir);
  return worst;
}

/// The default decode path (qkv_norm_rope_store + the single-launch decode attention).
TEST(CudaRunner, DecodeAttentionEqualsTheSplitKernels) {
  if (!fs::exists(golden("tiny-globalkeys") / "config.json")) GTEST_SKIP() << "golden config missing";
  {
    const fs::path dir = fs::temp_directory_path() / ("quench-runner-attn-check-" + std::to_string(::getpid()));
    ASSERT_EQ(attention_shaped_model(dir)->config().layers.at(1).head_dim, 512);  // (checked without a GPU too)
    fs::remove_all(dir);
  }
  QUENCH_SKIP_WITHOUT_GPU();
  int mismatches = 0;
  // The paths may round fp32 sums in another order (a K/V element can land 1 bf16 ulp apart).
  EXPECT_LT(decode_path_vs_split_kernels(false, mismatches), 1e-2);
  EXPECT_EQ(mismatches, 0);
}

/// The folded path (set_fold_decode_store: the store inside the single-launch kernel; off by default).
TEST(CudaRunner, FoldedDecodeAttentionEqualsTheSplitKernels) {
  if (!fs::exists(golden("tiny-globalkeys") / "config.json")) GTEST_SKIP() << "golden config missing";
  QUENCH_SKIP_WITHOUT_GPU();
  int mismatches = 0;
  EXPECT_LT(decode_path_vs_split_kernels(true, mismatches), 1e-2);
  EXPECT_EQ(mismatches, 0);
}

/// Programmatic Dependent Launch of the norm/embedding/argmax kernels changes when they are
/// scheduled, never what they compute: eager and graph-replayed decode steps give bit-identical
/// logits with it on and off.
TEST(CudaRunner, ProgrammaticDependentLaunchGivesIdenticalLogits) {
  QUENCH_SKIP_WITHOUT_GPU();
  const fs::path dir = golden("tiny-bf16");
  if (!fs::exists(dir / "config.json")) GTEST_SKIP() << "golden fixture missing: " << dir;
  std::shared_ptr<const Model> model = Model::load(dir);
  const int V = model->config().vocab_size;
  KvCacheConfig kv;
  kv.block_size = 4;
  kv.num_blocks_full = kv.num_blocks_sliding = 4 * 8;
  const bool pdl_default = cuda::programmatic_dependent_launch();
  auto run = [&](bool pdl) {
    cuda::set_programmatic_dependent_launch(pdl);
    std::mt19937 rng(5);
    Seqs s = make_seqs(4, 32, 4, V, rng);
    cuda::CudaModelRunner r(model, kv);
    for (int i = 0; i < 4; ++i) prefill({&r}, s, i, 6 + i);
    std::vector<float> all;
    for (int step = 0; step < 6; ++step) {  // eager, capture, then replays (bucket 4 for 3 rows)
      const std::vector<float> l = decode(r, s, {0, 2, 3});
      all.insert(all.end(), l.begin(), l.end());
      for (int i : {0, 2, 3}) ++s.pos[i];
    }
    cuda::set_programmatic_dependent_launch(pdl_default);
    return all;
  };
  const std::vector<float> off = run(false), on = run(true);
  ASSERT_EQ(off.size(), on.size());
  EXPECT_EQ(std::memcmp(off.data(), on.data(), off.size() * sizeof(float)), 0);
}

/// With room for 2 graphs, cycling through 3 bucket layouts evicts the least recently used graph
/// and captures it again later; replayed and recaptured steps still equal eager exact batches.
TEST(CudaRunner, GraphLruEvictionKeepsResultsEqual) {
  QUENCH_SKIP_WITHOUT_GPU();
  const fs::path dir = golden("tiny-bf16");
  if (!fs::exists(dir / "config.json")) GTEST_SKIP() << "golden fixture missing: " << dir;
  std::shared_ptr<const Model> model = Model::load(dir);
  const int V = model->config().vocab_size, n_seqs = 6;
  std::mt19937 rng(31);
  Seqs s = make_seqs(n_seqs, 48, 4, V, rng);
  KvCacheConfig kv;
  kv.block_size = 4;
  kv.num_blocks_full = kv.num_blocks_sliding = n_seqs * 12;
  cuda::CudaModelRunner graphed(model, kv), eager(model, kv);
  eager.set_use_cuda_graphs(false);
  graphed.set_max_graphs(2);
  for (int i = 0; i < n_seqs; ++i) prefill({&graphed, &eager}, s, i, 4);
  double worst = 0;
  for (int round = 0; round < 4; ++round)
    for (const std::vector<int>& which : {std::vector<int>{0}, std::vector<int>{1, 2, 3}, std::vector<int>{0, 4, 5, 1, 2}}) {
      const std::vector<float> g = decode(graphed, s, which), e = decode(eager, s, which);
      worst = std::max(worst, testing::rel_l2(g.data(), e.data(), g.size()));
      for (int i : which) ++s.pos[i];
      EXPECT_LE(graphed.num_captured_graphs(), 2u);
    }
  // Buckets 1, 4, 8 cycled with room for 2: every round after the first recaptures.
  EXPECT_GT(graphed.num_graph_captures(), 3u);
  EXPECT_LT(worst, 1e-5);
}

}  // namespace
}  // namespace quench
