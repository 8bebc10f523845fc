// quench/backend/cuda/cuda_runner.h: the CUDA ModelRunner (backend/backend.h) for one GPU.
//
// Weights stay in their stored formats on the device (device_weights.h). The paged KV cache has
// one pool per KV-cache group (full attention / sliding window), laid out per layer as
// [num_blocks, block_size, num_kv_heads, head_dim] for K and for V, bf16 or FP8 E4M3 with the
// checkpoint's k_scale/v_scale (1.0 when absent). One step runs every token of the batch through
// all layers (embedding, per layer: norm, q/k/v GEMMs, norms+RoPE+cache write, paged attention,
// o GEMM, post-norm+residual, GeGLU MLP, post-norm+residual×layer_scalar; final norm; tied LM
// head; softcap) on one stream, then copies the wanted logits to the host.
//
// Decode-only steps (one token per sequence, all wanting logits) replay CUDA graphs: the batch is
// padded to decode_batch_bucket(n) with rows that write only the reserved scratch KV block, so a
// serving engine whose batch size changes every step replays a few graphs instead of capturing
// new ones; a layout is run eagerly the first time it is seen and captured the second time.
//
// Also here: FP8 checkpoints prefill with FP8 activations on the FP8 tensor cores
// (cuda_runner_fp8.cpp); profile_graph, the graph-mode breakdown of a decode step by subtraction
// (cuda_runner_profile.cpp); device sampling (cuda_runner_sampling.cpp).
#pragma once

#include <map>
#include <memory>
#include <set>
#include <tuple>
#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/device_weights.h"
#include "backend/cuda/fp8_gemm.h"
#include "backend/cuda/linear.h"

namespace quench {
class Model;
}

namespace quench::cuda {

/// Returns the current device index; throws CudaError("no CUDA device is available ...") when
/// there is none (checked before any CUDA library is initialised).
int require_cuda_device();

/// Kinds of work in one step, for StepProfile (the names of op_kind_name()).
enum class StepOp {
  kEmbed,        ///< embedding lookup (+ first input norm)
  kQkvProj,      ///< q/k/v projections
  kQkvNormRope,  ///< q/k/v norms, RoPE, KV-cache store (with set_fold_decode_store, pure decode
                 ///< steps of <= 64 rows fold it into the attention launch, counted there)
  kAttention,    ///< paged attention (+ the folded store: qkv_paged_attention_decode)
  kOProj,        ///< attention output projection
  kNorms,        ///< residual adds with post-norms (+ next pre-norm)
  kMlpGateUp,    ///< gate/up projections with GELU(gate) * up (LinearExecutor::run_gate_up_gelu)
  kMlpDown,      ///< down projection
  kLmHead,       ///< gather of the wanted rows + tied LM head
  kLogits,       ///< softcap (execute) or argmax with fused softcap (execute_greedy)
  kCount
};
/// Short name of an op kind ("embed", "qkv proj", ...).
const char* op_kind_name(StepOp op);

/// Device time per op kind accumulated over profiled steps (CudaModelRunner::execute_profiled).
struct StepProfile {
  double ms[static_cast<int>(StepOp::kCount)] = {};
  int steps = 0;
  double total_ms() const {
    double t = 0;
    for (double v : ms) t += v;
    return t;
  }
};

/// Graph-mode breakdown of one decode step (CudaModelRunner::profile_graph), by subtraction:
/// the step is captured as the normal path captures it (same bucket, same kernels, PDL as set)
/// and replayed back to back; then captured again with one op kind left out (`without_ms`: what
/// the rest costs, so full_ms - without_ms[i] is the time that op kind *removes* from the real
/// graphed step, launch gaps and overlap with its neighbours included), and with only that op
/// kind (`alone_ms`: its launches back to back, no neighbours). Replays that leave ops out compute
/// garbage (stale buffers) and are discarded; they only time. Times are medians over `replays`
/// replays of each variant, variants interleaved round-robin, in ms of device time per step
/// (event pairs around each replay, so each figure includes one graph-launch gap, which the
/// subtraction cancels). `bytes` is the fewest device-memory bytes each op kind must move in the
/// step (weights in their stored format, KV read/written, activations read/written), for a
/// bound = bytes / copy bandwidth next to removed_ms.
struct GraphProfile {
  static constexpr int kOps = static_cast<int>(StepOp::kCount);
  int replays = 0;
  int rows = 0;                   ///< token rows of the captured step (batch padded to its bucket)
  double full_ms = 0;             ///< median replay of the whole step
  double without_ms[kOps] = {};   ///< median replay with op kind i left out
  double alone_ms[kOps] = {};     ///< median replay of op kind i alone (0 when it has no nodes)
  int nodes[kOps] = {};           ///< graph nodes (kernels, memsets) of op kind i
  int total_nodes = 0;            ///< nodes of the whole step's graph
  double bytes[kOps] = {};        ///< fewest device-memory bytes op kind i moves per step
  /// Host side of the real path, measured on the same batch: median wall time of execute_greedy
  /// (prepare + metadata upload + graph launch + token copy + synchronise), and of prepare() alone.
  double step_wall_ms = 0;
  double prepare_ms = 0;
  /// Time op kind i removes from the graphed step.
  double removed_ms(int i) const { return full_ms - without_ms[i]; }
};

/// Decode batch-size buckets of the CUDA graphs: 1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192,
/// 256, ... (powers of two up to 8, then alternately x1.5 and x4/3). Returns the smallest bucket
/// >= n (n >= 1).
int decode_batch_bucket(int n);

class GpuSampler;  // gpu_sampler.h (device sampling, cuda_runner_sampling.cpp)
/// Set where CudaModelRunner declares execute_sample (cuda_runner_sampling.cpp compiles it then).
#define QUENCH_CUDA_RUNNER_HAS_DEVICE_SAMPLING 1

class CudaModelRunner : public ModelRunner {
 public:
  /// Uploads the weights and allocates the KV pools on the current device (each pool gets one
  /// extra block past the engine's, the scratch block padded decode rows write into). Throws
  /// CudaError (no device, out of memory) or UnsupportedError (shapes the kernels cannot take).
  CudaModelRunner(std::shared_ptr<const Model> model, const KvCacheConfig& kv_config);
  ~CudaModelRunner() override;

  const ModelConfig& config() const override;
  KvCacheSpec kv_cache_spec() const override;
  std::string name() const override;
  /// See ModelRunner::execute; throws InvalidArgument for bad block ids / sizes.
  void execute(std::span<const SeqStep> batch, std::span<float> logits) override;

  /// Like execute() but samples greedily on the GPU: out_tokens[i] = argmax of the i-th wanted
  /// (soft-capped) logits row; only token ids cross to the host. The argmax (softcap fused in) is
  /// part of the captured decode graph.
  void execute_greedy(std::span<const SeqStep> batch, std::span<int32_t> out_tokens);

  /// Device sampling (cuda_runner_sampling.cpp, gpu_sampler.h): see ModelRunner::execute_sample.
  bool supports_device_sampling() const override { return true; }
  void execute_sample(std::span<const SeqStep> batch, std::span<const DeviceSamplingRow> rows,
                      std::span<int32_t> out_tokens, std::span<float> out_logprobs) override;

  /// Runs execute_greedy's work eagerly (no CUDA graph) with a device event between consecutive
  /// ops and adds each op kind's device time to `profile` (steps += 1); out_tokens as in
  /// execute_greedy. The events cost ~1 us per op, so the total exceeds a graph-replayed step.
  void execute_profiled(std::span<const SeqStep> batch, std::span<int32_t> out_tokens, StepProfile& profile);

  /// Graph-mode profile of the decode step `batch` (every SeqStep one token, logits wanted;
  /// greedy output as execute_greedy): see GraphProfile. Captures 1 + 2 x op-kind graphs (held
  /// only during the call), replays each `replays` times (>= 1). The KV cache entries of the
  /// batch's positions are rewritten with the values execute_greedy writes (same tokens), so the
  /// caller's sequences stay valid. Throws InvalidArgument for a batch that is not decode-only or
  /// replays < 1.
  GraphProfile profile_graph(std::span<const SeqStep> batch, int replays);

  /// Bytes of weights resident on the GPU, and of the KV pools.
  size_t weight_bytes() const { return weights_.total_bytes; }
  size_t kv_cache_bytes() const { return kv_bytes_; }
  /// Bytes of the KV pools of one group (sliding-window or full-attention layers), the scratch
  /// block included.
  size_t kv_cache_bytes(bool sliding) const;
  /// Bytes of the step buffers held now (activations, metadata, logits, attention and argmax
  /// scratch; not the LinearExecutor's or cuBLAS's workspaces).
  size_t step_buffer_bytes() const;

  /// Bytes the KV cache needs per block of each group (sum over that group's layers of K and V).
  static size_t kv_block_bytes(const ModelConfig& cfg, int block_size, KvCacheDtype dtype, bool sliding);

  /// Turns CUDA-graph replay of decode steps on or off (on by default). Off: decode batches are
  /// run eagerly at their exact size (no padding).
  void set_use_cuda_graphs(bool on) {
    use_graphs_ = on;
    if (!on) clear_graphs();
  }
  /// FP8 weights with an input_scale at more than kFp8MinRows rows (prefill) run on the FP8
  /// tensor cores with FP8 activations (fp8_gemm.h), as vLLM runs FP8 checkpoints; off: those
  /// GEMMs take the LinearExecutor's path (W dequantized to bf16, cuBLAS bf16). On by default.
  void set_fp8_prefill(bool on) {
    fp8_prefill_ = on;
    clear_graphs();
  }
  bool fp8_prefill() const { return fp8_prefill_; }
  static constexpr int kFp8MinRows = 128;
  /// Pure decode steps (one token per sequence, <= 64 rows): fold the q/k norms, RoPE and KV store
  /// into the attention launch (qkv_paged_attention_decode) instead of qkv_norm_rope_store +
  /// paged_attention. Off by default: on the H200 (run 4) the folded kernel was slower than the two
  /// launches at B = 1, 16 and 64.
  void set_fold_decode_store(bool on) {
    fold_decode_store_ = on;
    clear_graphs();
  }
  bool fold_decode_store() const { return fold_decode_store_; }
  /// Rows per gate/up GEMM pair of the FP8 path (bounds its fp32 scratch).
  static constexpr int kFp8MlpChunkRows = 512;
  /// Graphs currently held (at most max_graphs(); the least recently used is dropped beyond).
  size_t num_captured_graphs() const { return graphs_.size(); }
  /// Bound on the graphs held (kMaxGraphs by default; >= 1).
  void set_max_graphs(size_t n) { max_graphs_ = n < 1 ? 1 : n; }
  size_t max_graphs() const { return max_graphs_; }
  /// Graph captures since construction (a capture is paid once per layout while it stays held).
  size_t num_graph_captures() const { return captures_; }
  static constexpr size_t kMaxGraphs = 64;
  /// Token rows (and logits rows) the step buffers hold at least; they grow by doubling.
  static constexpr int kMinStepRows = 64;

 protected:
  /// What a step leaves on the device: the soft-capped logits in logits_device() [n, V], or
  /// (kGreedy) the argmax token of each wanted row in argmax_device() [n] (logits not capped).
  enum class StepOutput { kLogits, kGreedy };
  /// Validates the batch, runs one step (through a captured graph for decode-only batches when
  /// graphs are on, padded to decode_batch_bucket) and returns n = the number of wanted rows of
  /// `batch` (rows 0..n-1 of the outputs, in batch order; padding rows come after). Does not
  /// synchronise.
  int run_step(std::span<const SeqStep> batch, StepOutput out);
  /// fp32 [rows, vocab] logits of the last step (soft-capped unless it ran with kGreedy).
  const float* logits_device() const { return logits_dev_.get<float>(); }
  /// int32 [rows] argmax tokens of the last kGreedy step.
  const int32_t* argmax_device() const { return argmax_dev_.get<int32_t>(); }
  cudaStream_t stream() const { return stream_; }
  /// Copies the first n argmax tokens of the last kGreedy step to out[0..n) (through page-locked
  /// memory: a pageable destination would make the copy synchronous and staged) and synchronises
  /// the stream. n <= out.size().
  void copy_tokens(int n, std::span<int32_t> out);

 private:
  std::shared_ptr<GpuSampler> gpu_sampler_;  ///< created by the first execute_sample (SAMPLING)
  /// Device-side shape of one step (what a captured CUDA graph depends on).
  struct StepLayout {
    int T = 0, S = 0, n_logits = 0, max_blocks = 0, max_context = 0;
    bool greedy = false;         ///< argmax (softcap fused) instead of the softcap pass
    bool identity_rows = false;  ///< every token wants logits: the LM head reads hb directly
    auto key() const { return std::tie(T, S, n_logits, max_blocks, max_context, greedy, identity_rows); }
    bool operator<(const StepLayout& o) const { return key() < o.key(); }
  };
  /// Validates the batch, fills and uploads the step metadata. `pad_to` > batch.size() appends
  /// decode rows (token 0 at position 0 of the scratch KV block, logits wanted) up to that many
  /// sequences; `bucket` also rounds the block-table width and context up to a power of two.
  StepLayout prepare(std::span<const SeqStep> batch, bool bucket, int pad_to, bool greedy);
  /// Enqueues every kernel of the step (leaves the logits in logits_dev_, or the argmax tokens
  /// in argmax_dev_).
  void launch(const StepLayout& L);
  /// The attention input projections q, k (and v) of layer l from hb_ into qf_/kf_/vf_ (one
  /// launch for decode: LinearExecutor::run_multi).
  void attention_in_proj(size_t l, int T);
  /// The MLP up half of layer l: actb_ = bf16(gelu(hb_ · gateᵀ) * (hb_ · upᵀ)) (one fused launch
  /// for decode: LinearExecutor::run_gate_up_gelu).
  void mlp_gate_up(size_t l, int T);
  /// Whether W at M rows takes the FP8 path (see set_fp8_prefill).
  bool use_fp8(const DeviceLinear& W, int M) const {
    return fp8_prefill_ && M > kFp8MinRows && W.format == WeightFormat::kFP8 && W.input_scale > 0.0f &&
           W.K % 16 == 0 && W.N % 4 == 0;
  }
  /// fp8_x_ = E4M3 of x bf16 [M, K] with `scale` (skipped when it already holds exactly that).
  void fp8_quantize(const bf16* x, int M, int K, float scale);
  /// y = x · Wᵀ: the FP8 path when use_fp8(W, M), else linear_.run (cuda_runner_fp8.cpp).
  void linear(const DeviceLinear& W, const bf16* x, int M, float* y);
  /// The FP8 path of attention_in_proj / mlp_gate_up (every Linear of the group use_fp8).
  void fp8_attention_in_proj(const DeviceLayer& L, int T);
  void fp8_gate_up_gelu(const DeviceLayer& L, int T);
  /// Sizes the step buffers for T token rows, block tables max_blocks wide, n_logits rows and
  /// contexts up to max_context; capacities grow geometrically, and any reallocation drops the
  /// captured graphs (they hold the old addresses).
  void ensure_capacity(int T, int max_blocks, int n_logits, int max_context);
  void clear_graphs();
  /// Records an event before `op` when profiling (never inside a graph capture).
  void mark(StepOp op);
  /// Opens op kind `op` in launch(): mark(op), then whether to enqueue it (false only for the
  /// op kinds profile_graph leaves out; always true on the normal path).
  bool begin_op(StepOp op) {
    mark(op);
    return (skip_ops_ & (1u << static_cast<unsigned>(op))) == 0;
  }
  /// Captures launch(L) on the stream into an instantiated graph (every buffer must be sized).
  /// With `num_nodes`, also returns the graph's node count, and nullptr when it has none.
  cudaGraphExec_t capture(const StepLayout& L, size_t* num_nodes = nullptr);
  /// Fewest device-memory bytes each op kind moves in step L of `batch` (GraphProfile::bytes).
  void op_bytes(const StepLayout& L, std::span<const SeqStep> batch, double* bytes) const;

  int device_ = require_cuda_device();  // first member: fails with a clear message before cuBLAS starts
  std::shared_ptr<const Model> model_;
  KvCacheConfig kv_config_;
  DeviceWeights weights_;
  LinearExecutor linear_;
  cudaStream_t stream_ = nullptr;
  float embed_scale_ = 1.0f;
  size_t kv_bytes_ = 0;

  struct LayerCache {
    DeviceBuffer k, v;
    KvLayerView view;
    bool sliding = false;
    DeviceBuffer inv_freq;  // fp32 [D/2]
    int head_dim = 0, num_heads = 0, num_kv_heads = 0, window = 0;
  };
  std::vector<LayerCache> caches_;

  // Step buffers (grown on demand).
  int cap_T_ = 0, cap_blocks_ = 0, cap_logits_ = 0;
  size_t cap_scratch_ = 0;
  std::tuple<int, int, int> scratch_key_{-1, -1, -1};  // (T, max_context, cap_T_) of the last sizing
  DeviceBuffer meta_dev_;       // ids | pos | seq | logit rows | table_full | table_sliding
  /// Page-locked host staging of the step metadata (async upload without a pageable bounce).
  struct PinnedInts {
    int32_t* data = nullptr;
    size_t capacity = 0;
    PinnedInts() = default;
    PinnedInts(const PinnedInts&) = delete;
    PinnedInts& operator=(const PinnedInts&) = delete;
    ~PinnedInts();
    /// Grows to at least n ints (contents not kept); throws CudaError.
    void reserve(size_t n);
  };
  PinnedInts meta_host_;
  cudaEvent_t meta_uploaded_ = nullptr;  // the last upload from meta_host_ finished reading it
  PinnedInts tokens_host_;               // page-locked landing of the argmax tokens (copy_tokens)
  DeviceBuffer x_, y_, qf_, kf_, vf_;  // fp32
  DeviceBuffer hb_, qb_, attnb_, actb_, logitsb_; // bf16
  DeviceBuffer logits_dev_, argmax_dev_, argmax_scratch_, attn_scratch_;

  // Decode steps replay CUDA graphs keyed by their layout (LRU beyond kMaxGraphs); any buffer
  // reallocation drops them.
  struct HeldGraph {
    cudaGraphExec_t exec = nullptr;
    uint64_t last_use = 0;
  };
  std::map<StepLayout, HeldGraph> graphs_;
  std::set<StepLayout> warmed_;
  uint64_t use_clock_ = 0;
  size_t captures_ = 0;
  size_t max_graphs_ = kMaxGraphs;
  bool use_graphs_ = true;

  // Profiling (execute_profiled): events recorded between ops, and the op each one opens.
  bool profiling_ = false;
  std::vector<cudaEvent_t> prof_events_;
  std::vector<StepOp> prof_ops_;
  size_t prof_used_ = 0;
  /// Op kinds launch() leaves out (bit i = StepOp i); set only inside profile_graph.
  uint32_t skip_ops_ = 0;

  // FP8 prefill (set_fp8_prefill): cuBLASLt, E4M3 activations [rows, max K], fp32 gate and up
  // [kFp8MlpChunkRows, I] each; sized in ensure_capacity (outside any capture).
  bool fold_decode_store_ = false;  // set_fold_decode_store
  bool fp8_prefill_ = true;
  bool has_fp8_linears_ = false;  // some Linear is FP8 with an input_scale
  std::unique_ptr<Fp8Gemm> fp8_gemm_;
  DeviceBuffer fp8_x_, fp8_mlp_;
  const bf16* fp8_x_src_ = nullptr;  // what fp8_x_ holds: source, rows, scale (within one op)
  int fp8_x_rows_ = 0;
  float fp8_x_scale_ = 0.0f;
};

}  // namespace quench::cuda
