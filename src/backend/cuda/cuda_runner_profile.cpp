// quench/backend/cuda/cuda_runner_profile.cpp: CudaModelRunner::profile_graph, the graph-mode
// breakdown of a decode step by subtraction (see GraphProfile in cuda_runner.h).
//
// Why subtraction: events between ops inside a graph would themselves become graph nodes that
// break the programmatic (PDL) edges between kernels and add their own gaps, and an eager step
// pays a host launch per kernel that the replayed graph does not. Leaving one op kind out of an
// otherwise identical capture measures what that op kind costs in the step as it really runs
// (its kernels, the gaps they add, minus whatever it overlapped with its neighbours).
#include "backend/cuda/cuda_runner.h"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "io/model_config.h"
#include "model/model.h"

namespace quench::cuda {
namespace {

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

/// Instantiated graphs and timing events of one profile, released on every exit path.
struct ProfileResources {
  std::vector<cudaGraphExec_t> execs;
  std::vector<cudaEvent_t> events;
  ~ProfileResources() {
    for (cudaGraphExec_t e : execs)
      if (e) cudaGraphExecDestroy(e);
    for (cudaEvent_t e : events) cudaEventDestroy(e);
  }
};

/// Restores the runner's skip mask when a capture throws.
struct SkipGuard {
  uint32_t& mask;
  ~SkipGuard() { mask = 0; }
};

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

}  // namespace

void CudaModelRunner::op_bytes(const StepLayout& L, std::span<const SeqStep> batch, double* b) const {
  const ModelConfig& cfg = model_->config();
  const double T = L.T, H = cfg.hidden_size, I = cfg.intermediate_size, V = cfg.vocab_size, n = L.n_logits;
  const double elem = kv_config_.dtype == KvCacheDtype::kFP8E4M3 ? 1.0 : 2.0;
  std::fill(b, b + GraphProfile::kOps, 0.0);
  auto at = [&](StepOp op) -> double& { return b[static_cast<int>(op)]; };
  // Embedding: table rows (bf16) in, x (fp32) and the first normed row (bf16) out, norm weight.
  at(StepOp::kEmbed) = T * H * 2 + T * H * 4 + T * H * 2 + H * 4;
  for (size_t l = 0; l < weights_.layers.size(); ++l) {
    const DeviceLayer& W = weights_.layers[l];
    const LayerCache& C = caches_[l];
    const double q = double(C.num_heads) * C.head_dim, kv = double(C.num_kv_heads) * C.head_dim;
    const double nkv = W.k_eq_v ? 1 : 2;  // k (and v) projections
    at(StepOp::kQkvProj) += double(W.q.bytes() + W.k.bytes() + W.v.bytes()) + T * H * 2 + T * (q + nkv * kv) * 4;
    // fp32 q/k/v in, bf16 q out, K and V rows into the cache.
    at(StepOp::kQkvNormRope) += T * (q + nkv * kv) * 4 + T * q * 2 + T * 2 * kv * elem;
    // Each query reads the K and V rows of its sequence's visible keys (padding rows: 1 key).
    double keys = static_cast<double>(L.S) - static_cast<double>(batch.size());
    for (const SeqStep& s : batch) {
      const double ctx = s.start_pos + static_cast<double>(s.tokens.size());
      keys += C.window > 0 ? std::min<double>(ctx, C.window) : ctx;
    }
    at(StepOp::kAttention) += keys * 2 * kv * elem + T * q * 2 * 2;
    at(StepOp::kOProj) += double(W.o.bytes()) + T * q * 2 + T * H * 4;
    // Two residual ends: x read + written, y read (fp32), next norm out (bf16), two weights.
    at(StepOp::kNorms) += 2 * (T * H * 4 * 3 + T * H * 2 + 2 * H * 4);
    at(StepOp::kMlpGateUp) += double(W.gate.bytes() + W.up.bytes()) + T * H * 2 + T * I * 2;
    at(StepOp::kMlpDown) += double(W.down.bytes()) + T * I * 2 + T * H * 4;
  }
  if (n > 0) {
    at(StepOp::kLmHead) = V * H * 2 + n * H * 2 + n * V * 4;
    at(StepOp::kLogits) = n * V * 4 + n * 4;
  }
}

GraphProfile CudaModelRunner::profile_graph(std::span<const SeqStep> batch, int replays) {
  if (replays < 1) throw InvalidArgument(fmt::format("profile_graph: replays must be >= 1, got {}", replays));
  if (batch.empty()) throw InvalidArgument("profile_graph: the batch is empty");
  for (size_t i = 0; i < batch.size(); ++i)
    if (batch[i].tokens.size() != 1 || !batch[i].want_logits)
      throw InvalidArgument(fmt::format("profile_graph: SeqStep {} has {} tokens (want_logits {}); a decode step has "
                                        "one token per sequence, logits wanted",
                                        i, batch[i].tokens.size(), batch[i].want_logits));
  GraphProfile P;
  P.replays = replays;

  // The real path first (its graph is captured and replayed as in serving): wall time per step.
  std::vector<int32_t> out(batch.size());
  std::vector<double> wall;
  for (int i = 0; i < replays + 2; ++i) {
    const auto t0 = Clock::now();
    execute_greedy(batch, out);
    if (i >= 2) wall.push_back(ms_since(t0));
  }
  P.step_wall_ms = median(wall);

  // prepare() alone (validation, metadata, upload): what the host adds before each replay.
  const int pad_to = use_graphs_ ? decode_batch_bucket(static_cast<int>(batch.size())) : 0;
  StepLayout L;
  std::vector<double> prep;
  for (int i = 0; i < replays; ++i) {
    const auto t0 = Clock::now();
    L = prepare(batch, use_graphs_, pad_to, /*greedy=*/true);
    prep.push_back(ms_since(t0));
  }
  P.prepare_ms = median(prep);
  P.rows = L.T;
  launch(L);  // eager once at this layout: any lazily sized buffer is sized before the captures
  QUENCH_CUDA_CHECK(cudaStreamSynchronize(stream_));
  op_bytes(L, batch, P.bytes);

  // Variants: 0 = whole step; 1 + i = without op kind i; 1 + kOps + i = op kind i alone.
  constexpr int kOps = GraphProfile::kOps;
  const uint32_t all = (1u << kOps) - 1;
  std::vector<uint32_t> masks = {0};
  for (int i = 0; i < kOps; ++i) masks.push_back(1u << i);
  for (int i = 0; i < kOps; ++i) masks.push_back(all & ~(1u << i));
  ProfileResources res;
  {
    SkipGuard guard{skip_ops_};
    for (size_t v = 0; v < masks.size(); ++v) {
      skip_ops_ = masks[v];
      size_t nodes = 0;
      res.execs.push_back(capture(L, &nodes));
      if (v == 0) P.total_nodes = static_cast<int>(nodes);
      if (v > kOps) P.nodes[v - 1 - kOps] = static_cast<int>(nodes);
    }
  }
  res.events.resize(2 * masks.size(), nullptr);
  for (cudaEvent_t& e : res.events) QUENCH_CUDA_CHECK(cudaEventCreate(&e));
  std::vector<std::vector<double>> times(masks.size());
  for (int round = -1; round < replays; ++round) {  // round -1 warms every graph up, untimed
    for (size_t v = 0; v < masks.size(); ++v) {
      if (!res.execs[v]) continue;  // no nodes (an op kind absent from this step)
      QUENCH_CUDA_CHECK(cudaEventRecord(res.events[2 * v], stream_));
      QUENCH_CUDA_CHECK(cudaGraphLaunch(res.execs[v], stream_));
      QUENCH_CUDA_CHECK(cudaEventRecord(res.events[2 * v + 1], stream_));
    }
    QUENCH_CUDA_CHECK(cudaStreamSynchronize(stream_));
    if (round < 0) continue;
    for (size_t v = 0; v < masks.size(); ++v) {
      if (!res.execs[v]) continue;
      float ms = 0;
      QUENCH_CUDA_CHECK(cudaEventElapsedTime(&ms, res.events[2 * v], res.events[2 * v + 1]));
      times[v].push_back(ms);
    }
  }
  P.full_ms = median(times[0]);
  for (int i = 0; i < kOps; ++i) {
    P.without_ms[i] = res.execs[1 + i] ? median(times[1 + i]) : P.full_ms;
    P.alone_ms[i] = median(times[1 + kOps + i]);
  }
  // The garbage replays left the KV slots of this batch's positions and the step buffers
  // stale: one real step rewrites the slots with the values execute_greedy writes.
  execute_greedy(batch, out);
  return P;
}

}  // namespace quench::cuda
