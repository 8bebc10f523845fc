// quench/backend/cuda/cuda_runner.h: the CUDA ModelRunner (backend/backend.h) for one GPU.
//
// Weights stay in their stored formats on the device (device_weights.h). The paged KV cache has
// one pool per KV-cache group (full attention / sliding window), laid out per layer as
// [num_blocks, block_size, num_kv_heads, head_dim] for K and for V, bf16 or FP8 E4M3 with the
// checkpoint's k_scale/v_scale (1.0 when absent). One step runs every token of the batch through
// all layers (embedding, per layer: norm, q/k/v GEMMs, norms+RoPE+cache write, paged attention,
// o GEMM, post-norm+residual, GeGLU MLP, post-norm+residual×layer_scalar; final norm; tied LM
// head; softcap) on one stream, then copies the wanted logits to the host.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <tuple>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/device_weights.h"
#include "backend/cuda/linear.h"

namespace quench {
class Model;
}

namespace quench::cuda {

/// Returns the current device index; throws CudaError("no CUDA device is available ...") when
/// there is none (checked before any CUDA library is initialised).
int require_cuda_device();

class CudaModelRunner : public ModelRunner {
 public:
  /// Uploads the weights and allocates the KV pools on the current device. Throws CudaError
  /// (no device, out of memory) or UnsupportedError (shapes the kernels cannot take).
  CudaModelRunner(std::shared_ptr<const Model> model, const KvCacheConfig& kv_config);
  ~CudaModelRunner() override;

  const ModelConfig& config() const override;
  KvCacheSpec kv_cache_spec() const override;
  std::string name() const override;
  /// See ModelRunner::execute; throws InvalidArgument for bad block ids / sizes.
  void execute(std::span<const SeqStep> batch, std::span<float> logits) override;

  /// Like execute() but samples greedily on the GPU: out_tokens[i] = argmax of the i-th wanted
  /// logits row; only token ids cross to the host.
  void execute_greedy(std::span<const SeqStep> batch, std::span<int32_t> out_tokens);

  /// Bytes of weights resident on the GPU, and of the KV pools.
  size_t weight_bytes() const { return weights_.total_bytes; }
  size_t kv_cache_bytes() const { return kv_bytes_; }

  /// Bytes the KV cache needs per block of each group (sum over that group's layers of K and V).
  static size_t kv_block_bytes(const ModelConfig& cfg, int block_size, KvCacheDtype dtype, bool sliding);

 private:
  /// Device-side shape of one step (what a captured CUDA graph depends on).
  struct StepLayout {
    int T = 0, S = 0, n_logits = 0, max_blocks = 0, max_context = 0;
    bool operator<(const StepLayout& o) const {
      return std::tie(T, S, n_logits, max_blocks, max_context) < std::tie(o.T, o.S, o.n_logits, o.max_blocks, o.max_context);
    }
  };
  /// Validates the batch, fills and uploads the step metadata; `bucket` rounds the block-table
  /// width and context up to a power of two (decode steps replayed from CUDA graphs).
  StepLayout prepare(std::span<const SeqStep> batch, bool bucket);
  /// Enqueues every kernel of the step (leaves the logits in logits_dev_).
  void launch(const StepLayout& L);
  /// prepare + launch, through a captured graph for decode-only batches.
  int run_step(std::span<const SeqStep> batch);
  void ensure_capacity(int T, int S, int max_blocks, int n_logits, int max_context);

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
  int cap_T_ = 0, cap_S_ = 0, cap_blocks_ = 0, cap_logits_ = 0;
  size_t cap_scratch_ = 0;
  DeviceBuffer meta_dev_;       // ids | pos | seq | logit rows | table_full | table_sliding
  std::vector<int32_t> meta_host_;
  DeviceBuffer x_, y_, qf_, kf_, vf_, gate_, up_;  // fp32
  DeviceBuffer hb_, qb_, attnb_, actb_, logitsb_; // bf16
  DeviceBuffer logits_dev_, argmax_dev_, attn_scratch_;

  // Decode steps replay CUDA graphs keyed by their layout; any buffer reallocation drops them.
  std::map<StepLayout, cudaGraphExec_t> graphs_;
  std::set<StepLayout> warmed_;
  bool use_graphs_ = true;
  void clear_graphs();

 public:
  /// Turns CUDA-graph replay of decode steps on or off (on by default).
  void set_use_cuda_graphs(bool on) { use_graphs_ = on; if (!on) clear_graphs(); }
  size_t num_captured_graphs() const { return graphs_.size(); }
};

}  // namespace quench::cuda
