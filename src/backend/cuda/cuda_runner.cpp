// quench/backend/cuda/cuda_runner.cpp: one batched forward step on the GPU (see cuda_runner.h).
#include "backend/cuda/cuda_runner.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "backend/cpu/rope.h"
#include "core/numeric.h"
#include "io/model_config.h"
#include "model/model.h"
#include "model/weights.h"

namespace quench::cuda {
namespace {

size_t kv_elem_bytes(KvCacheDtype d) { return d == KvCacheDtype::kFP8E4M3 ? 1 : 2; }

}  // namespace

int require_cuda_device() {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess || n == 0)
    throw CudaError(fmt::format("no CUDA device is available ({}); use --device cpu",
                                err != cudaSuccess ? cudaGetErrorString(err) : "0 devices"));
  int d = 0;
  QUENCH_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

size_t CudaModelRunner::kv_block_bytes(const ModelConfig& cfg, int block_size, KvCacheDtype dtype, bool sliding) {
  size_t b = 0;
  for (const LayerConfig& l : cfg.layers)
    if ((l.type == LayerType::kSliding) == sliding)
      b += 2ull * block_size * l.num_kv_heads * l.head_dim * kv_elem_bytes(dtype);
  return b;
}

CudaModelRunner::CudaModelRunner(std::shared_ptr<const Model> model, const KvCacheConfig& kv_config)
    : model_(std::move(model)), kv_config_(kv_config) {
  if (kv_config_.block_size < 1) throw InvalidArgument("CUDA runner: block_size must be >= 1");
  if (kv_config_.dtype == KvCacheDtype::kFP32)
    throw UnsupportedError("CUDA runner: fp32 KV cache is not supported (use bf16 or fp8_e4m3)");
  QUENCH_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  linear_.set_stream(stream_);
  weights_ = DeviceWeights::upload(*model_);
  const ModelConfig& cfg = model_->config();
  const float s = static_cast<float>(std::sqrt(static_cast<double>(cfg.hidden_size)));
  switch (model_->weights().embed_tokens.dtype) {
    case DType::kBF16: embed_scale_ = round_bf16(s); break;
    case DType::kF16: embed_scale_ = f16_to_f32(f32_to_f16(s)); break;
    default: embed_scale_ = s; break;
  }
  const bool fp8 = kv_config_.dtype == KvCacheDtype::kFP8E4M3;
  for (size_t i = 0; i < cfg.layers.size(); ++i) {
    const LayerConfig& lc = cfg.layers[i];
    LayerCache c;
    c.sliding = lc.type == LayerType::kSliding;
    c.head_dim = lc.head_dim;
    c.num_heads = lc.num_heads;
    c.num_kv_heads = lc.num_kv_heads;
    c.window = c.sliding ? lc.sliding_window : 0;
    const int blocks = c.sliding ? kv_config_.num_blocks_sliding : kv_config_.num_blocks_full;
    const size_t bytes = static_cast<size_t>(blocks) * kv_config_.block_size * lc.num_kv_heads * lc.head_dim *
                         kv_elem_bytes(kv_config_.dtype);
    c.k.reset(std::max<size_t>(bytes, 16));
    c.v.reset(std::max<size_t>(bytes, 16));
    kv_bytes_ += 2 * bytes;
    const LayerWeights& lw = model_->weights().layers[i];
    c.view = KvLayerView{c.k.get(), c.v.get(), fp8, fp8 ? lw.k_scale.value_or(1.0f) : 1.0f,
                         fp8 ? lw.v_scale.value_or(1.0f) : 1.0f, kv_config_.block_size, lc.num_kv_heads,
                         lc.head_dim};
    const std::vector<float> inv = rope_inv_freq(lc.rope, lc.head_dim);
    c.inv_freq.reset(inv.size() * sizeof(float));
    QUENCH_CUDA_CHECK(cudaMemcpy(c.inv_freq.get(), inv.data(), inv.size() * sizeof(float), cudaMemcpyHostToDevice));
    caches_.push_back(std::move(c));
  }
}

CudaModelRunner::~CudaModelRunner() {
  clear_graphs();
  if (stream_) cudaStreamDestroy(stream_);
}

const ModelConfig& CudaModelRunner::config() const { return model_->config(); }

KvCacheSpec CudaModelRunner::kv_cache_spec() const {
  KvCacheSpec s;
  s.block_size = kv_config_.block_size;
  s.num_blocks_full = kv_config_.num_blocks_full;
  bool any_sliding = false;
  for (const auto& c : caches_) any_sliding |= c.sliding;
  s.num_blocks_sliding = any_sliding ? kv_config_.num_blocks_sliding : 0;
  s.sliding_window = model_->config().sliding_window;
  s.dtype = kv_config_.dtype;
  return s;
}

std::string CudaModelRunner::name() const { return "cuda:0 " + cuda_device_description(0); }

void CudaModelRunner::ensure_capacity(int T, int S, int max_blocks, int n_logits, int max_context) {
  const ModelConfig& cfg = model_->config();
  const bool grow = T > cap_T_ || n_logits > cap_logits_;
  if (grow) clear_graphs();
  if (T > cap_T_) {
    int qmax = 0, kvmax = 0;
    for (const auto& l : cfg.layers) {
      qmax = std::max(qmax, l.num_heads * l.head_dim);
      kvmax = std::max(kvmax, l.num_kv_heads * l.head_dim);
    }
    const size_t H = cfg.hidden_size, I = cfg.intermediate_size;
    const size_t wide = std::max({H, static_cast<size_t>(qmax)});
    x_.reset(T * H * 4);
    y_.reset(T * H * 4);
    qf_.reset(T * static_cast<size_t>(qmax) * 4);
    kf_.reset(T * static_cast<size_t>(kvmax) * 4);
    vf_.reset(T * static_cast<size_t>(kvmax) * 4);
    gate_.reset(T * I * 4);
    up_.reset(T * I * 4);
    hb_.reset(T * H * 2);
    qb_.reset(T * static_cast<size_t>(qmax) * 2);
    attnb_.reset(T * wide * 2);
    actb_.reset(T * I * 2);
    cap_T_ = T;
  }
  if (n_logits > cap_logits_) {
    logitsb_.reset(static_cast<size_t>(n_logits) * cfg.hidden_size * 2);
    logits_dev_.reset(static_cast<size_t>(n_logits) * cfg.vocab_size * 4);
    argmax_dev_.reset(static_cast<size_t>(n_logits) * 4);
    cap_logits_ = n_logits;
  }
  size_t scratch = 0;
  for (const auto& c : caches_)
    scratch = std::max(scratch, attention_scratch_bytes(T, c.num_heads, c.head_dim, max_context));
  if (scratch > cap_scratch_) {
    clear_graphs();
    attn_scratch_.reset(scratch);
    cap_scratch_ = scratch;
  }
  const size_t meta = static_cast<size_t>(T) * 3 + n_logits + 2ull * S * max_blocks;
  if (meta * 4 > meta_dev_.bytes()) {
    clear_graphs();
    meta_dev_.reset(meta * 4 * 2);
  }
  cap_S_ = std::max(cap_S_, S);
  cap_blocks_ = std::max(cap_blocks_, max_blocks);
}

namespace {
int round_up_pow2(int v) {
  int p = 1;
  while (p < v) p <<= 1;
  return p;
}
}  // namespace

void CudaModelRunner::clear_graphs() {
  for (auto& [k, g] : graphs_) cudaGraphExecDestroy(g);
  graphs_.clear();
  warmed_.clear();
}

CudaModelRunner::StepLayout CudaModelRunner::prepare(std::span<const SeqStep> batch, bool bucket) {
  const ModelConfig& cfg = model_->config();
  const int S = static_cast<int>(batch.size());
  int T = 0, n_logits = 0, max_blocks = 1, max_context = 1;
  const KvCacheSpec spec = kv_cache_spec();
  for (const SeqStep& s : batch) {
    if (s.tokens.empty()) throw InvalidArgument("CUDA runner: a SeqStep has no tokens");
    const int end = s.start_pos + static_cast<int>(s.tokens.size());
    if (cfg.max_position_embeddings > 0 && end > cfg.max_position_embeddings)
      throw InvalidArgument(fmt::format("CUDA runner: position {} beyond max_position_embeddings {}", end - 1,
                                        cfg.max_position_embeddings));
    const int need = (end + spec.block_size - 1) / spec.block_size;
    if (static_cast<int>(s.block_table_full.size()) < need ||
        (spec.num_blocks_sliding > 0 && static_cast<int>(s.block_table_sliding.size()) < need))
      throw InvalidArgument(fmt::format("CUDA runner: block table covers fewer than the {} blocks needed", need));
    T += static_cast<int>(s.tokens.size());
    n_logits += s.want_logits ? 1 : 0;
    max_blocks = std::max(max_blocks, need);
    max_context = std::max(max_context, end);
  }
  if (bucket) {
    max_blocks = std::max(16, round_up_pow2(max_blocks));
    max_context = max_blocks * spec.block_size;
  }
  ensure_capacity(T, S, max_blocks, std::max(n_logits, 1), max_context);

  // Host metadata: ids[T] pos[T] seq[T] logit_rows[n_logits] table_full[S*mb] table_sliding[S*mb].
  meta_host_.assign(static_cast<size_t>(T) * 3 + n_logits + 2ull * S * max_blocks, -1);
  int32_t* ids = meta_host_.data();
  int32_t* pos = ids + T;
  int32_t* seq = pos + T;
  int32_t* rows = seq + T;
  int32_t* tf = rows + n_logits;
  int32_t* ts = tf + static_cast<size_t>(S) * max_blocks;
  int t = 0, r = 0;
  for (int si = 0; si < S; ++si) {
    const SeqStep& s = batch[si];
    for (size_t i = 0; i < s.tokens.size(); ++i, ++t) {
      if (s.tokens[i] < 0 || s.tokens[i] >= cfg.vocab_size)
        throw InvalidArgument(fmt::format("CUDA runner: token id {} outside the vocabulary", s.tokens[i]));
      ids[t] = s.tokens[i];
      pos[t] = s.start_pos + static_cast<int>(i);
      seq[t] = si;
    }
    if (s.want_logits) rows[r++] = t - 1;
    const int need = (s.start_pos + static_cast<int>(s.tokens.size()) + spec.block_size - 1) / spec.block_size;
    for (int b = 0; b < need; ++b) {
      const int32_t f = s.block_table_full[b];
      if (f < 0 || f >= spec.num_blocks_full)
        throw InvalidArgument(fmt::format("CUDA runner: full-attention block id {} out of range", f));
      tf[static_cast<size_t>(si) * max_blocks + b] = f;
      if (spec.num_blocks_sliding > 0) {
        const int32_t sl = s.block_table_sliding[b];
        if (sl >= spec.num_blocks_sliding)
          throw InvalidArgument(fmt::format("CUDA runner: sliding block id {} out of range", sl));
        ts[static_cast<size_t>(si) * max_blocks + b] = sl;
      }
    }
  }
  QUENCH_CUDA_CHECK(cudaMemcpyAsync(meta_dev_.get(), meta_host_.data(), meta_host_.size() * 4,
                                    cudaMemcpyHostToDevice, stream_));
  return StepLayout{T, S, n_logits, max_blocks, max_context};
}

void CudaModelRunner::launch(const StepLayout& SL) {
  const ModelConfig& cfg = model_->config();
  const int T = SL.T, S = SL.S, n_logits = SL.n_logits, max_blocks = SL.max_blocks, max_context = SL.max_context;
  int32_t* dmeta = meta_dev_.get<int32_t>();
  const int32_t* d_ids = dmeta;
  TokenMeta meta{dmeta + T, dmeta + 2 * T};
  const int32_t* d_rows = dmeta + 3 * T;
  BlockTables full{dmeta + 3 * T + n_logits, max_blocks};
  BlockTables sliding{full.table + static_cast<size_t>(S) * max_blocks, max_blocks};
  const int H = cfg.hidden_size, I = cfg.intermediate_size;
  const float eps = static_cast<float>(cfg.rms_norm_eps);
  float* x = x_.get<float>();
  bf16* hb = hb_.get<bf16>();
  embed(d_ids, T, weights_.embed.get<bf16>(), H, embed_scale_, x, stream_);
  rmsnorm_to_bf16(x, H, weights_.layers[0].input_norm.get<float>(), T, H, eps, hb, stream_);
  for (size_t l = 0; l < weights_.layers.size(); ++l) {
    const DeviceLayer& L = weights_.layers[l];
    LayerCache& C = caches_[l];
    // Attention block (§2.4).
    linear_.run(L.q, hb, T, qf_.get<float>());
    linear_.run(L.k, hb, T, kf_.get<float>());
    const float* v_src = kf_.get<float>();
    if (!L.k_eq_v) {
      linear_.run(L.v, hb, T, vf_.get<float>());
      v_src = vf_.get<float>();
    }
    qkv_norm_rope_store(qf_.get<float>(), kf_.get<float>(), v_src, T, C.num_heads, C.num_kv_heads, C.head_dim,
                        L.q_norm.get<float>(), L.k_norm.get<float>(), C.inv_freq.get<float>(), eps, meta,
                        C.sliding ? sliding : full, C.view, qb_.get<bf16>(), stream_);
    paged_attention(qb_.get<bf16>(), T, C.num_heads, C.head_dim, C.window, meta, C.sliding ? sliding : full, C.view,
                    max_context, attnb_.get<bf16>(), attn_scratch_.get(), stream_);
    linear_.run(L.o, attnb_.get<bf16>(), T, y_.get<float>());
    residual_post_norm(x, y_.get<float>(), L.post_attn_norm.get<float>(), 1.0f, T, H, eps,
                       L.pre_ffn_norm.get<float>(), hb, stream_);
    // MLP block (§2.7).
    linear_.run(L.gate, hb, T, gate_.get<float>());
    linear_.run(L.up, hb, T, up_.get<float>());
    gelu_tanh_mul(gate_.get<float>(), I, up_.get<float>(), I, T, I, actb_.get<bf16>(), stream_);
    linear_.run(L.down, actb_.get<bf16>(), T, y_.get<float>());
    const float* next_norm =
        l + 1 < weights_.layers.size() ? weights_.layers[l + 1].input_norm.get<float>() : weights_.final_norm.get<float>();
    residual_post_norm(x, y_.get<float>(), L.post_ffn_norm.get<float>(), L.layer_scalar, T, H, eps, next_norm, hb,
                       stream_);
  }
  // hb now holds the final-normed hidden states (§2.8); LM head on the wanted rows only.
  if (n_logits > 0) {
    gather_rows_bf16(hb, d_rows, n_logits, H, logitsb_.get<bf16>(), stream_);
    linear_.run_bf16(weights_.embed.get<bf16>(), cfg.vocab_size, H, logitsb_.get<bf16>(), n_logits,
                     logits_dev_.get<float>());
    softcap(logits_dev_.get<float>(), static_cast<size_t>(n_logits) * cfg.vocab_size,
            static_cast<float>(cfg.final_logit_softcapping), stream_);
  }
}


int CudaModelRunner::run_step(std::span<const SeqStep> batch) {
  bool decode_only = use_graphs_;
  for (const SeqStep& s : batch) decode_only &= s.tokens.size() == 1 && s.want_logits;
  const StepLayout L = prepare(batch, decode_only);
  if (!decode_only) {
    launch(L);
    return L.n_logits;
  }
  auto it = graphs_.find(L);
  if (it == graphs_.end() && warmed_.insert(L).second) {
    // First sight of this layout: run eagerly (sizes scratch buffers, lets cuBLAS and the kernel
    // attributes initialise outside a capture); capture on the next occurrence.
    launch(L);
    return L.n_logits;
  }
  if (it == graphs_.end()) {
    // Capture once per layout; every buffer the kernels touch is sized already (prepare).
    cudaGraph_t graph;
    QUENCH_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    try {
      launch(L);
    } catch (...) {
      cudaStreamEndCapture(stream_, &graph);
      throw;
    }
    QUENCH_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
    cudaGraphExec_t exec;
    QUENCH_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    QUENCH_CUDA_CHECK(cudaGraphDestroy(graph));
    it = graphs_.emplace(L, exec).first;
  }
  QUENCH_CUDA_CHECK(cudaGraphLaunch(it->second, stream_));
  return L.n_logits;
}

void CudaModelRunner::execute(std::span<const SeqStep> batch, std::span<float> logits) {
  const size_t V = static_cast<size_t>(model_->config().vocab_size);
  size_t want = 0;
  for (const auto& s : batch) want += s.want_logits ? 1 : 0;
  if (logits.size() != want * V)
    throw InvalidArgument(fmt::format("CUDA runner: logits span has {} floats, expected {}", logits.size(), want * V));
  const int n = run_step(batch);
  if (n > 0)
    QUENCH_CUDA_CHECK(cudaMemcpyAsync(logits.data(), logits_dev_.get(), static_cast<size_t>(n) * V * 4,
                                      cudaMemcpyDeviceToHost, stream_));
  QUENCH_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaModelRunner::execute_greedy(std::span<const SeqStep> batch, std::span<int32_t> out_tokens) {
  size_t want = 0;
  for (const auto& s : batch) want += s.want_logits ? 1 : 0;
  if (out_tokens.size() != want) throw InvalidArgument("CUDA runner: out_tokens size != wanted logits rows");
  const int n = run_step(batch);
  if (n > 0) {
    argmax_rows(logits_dev_.get<float>(), n, model_->config().vocab_size, argmax_dev_.get<int32_t>(), stream_);
    QUENCH_CUDA_CHECK(
        cudaMemcpyAsync(out_tokens.data(), argmax_dev_.get(), static_cast<size_t>(n) * 4, cudaMemcpyDeviceToHost, stream_));
  }
  QUENCH_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

}  // namespace quench::cuda
