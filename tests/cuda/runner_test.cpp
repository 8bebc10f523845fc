// tests/cuda/runner_test.cpp: the CUDA runner end to end on the golden tiny checkpoints
// (tests/data/golden/, logits recorded by transformers in fp32) and against the CPU runner:
// prefill then one-token decode steps, same argmax and logits within bf16 tolerance; the FP8 KV
// cache close to the bf16 one.
#include <gtest/gtest.h>

#include <filesystem>
#include <numeric>

#include "backend/cpu/runner.h"
#include "backend/cuda/cuda_runner.h"
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

}  // namespace
}  // namespace quench
