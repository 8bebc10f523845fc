// quench/backend/cuda/cuda_runner.cpp: one batched forward step on the GPU (see cuda_runner.h).
#include "backend/cuda/cuda_runner.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "backend/cpu/rope.h"
#include "core/log.h"
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
  if (kv_config_.num_blocks_full < 1 || kv_config_.num_blocks_sliding < 0)
    throw InvalidArgument(fmt::format("CUDA runner: KV pools of {} full / {} sliding blocks (need >= 1 / >= 0)",
                                      kv_config_.num_blocks_full, kv_config_.num_blocks_sliding));
  QUENCH_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  QUENCH_CUDA_CHECK(cudaEventCreateWithFlags(&meta_uploaded_, cudaEventDisableTiming));
  linear_.set_stream(stream_);
  weights_ = DeviceWeights::upload(*model_);
  for (const DeviceLayer& l : weights_.layers)
    for (const DeviceLinear* w : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down})
      has_fp8_linears_ |= w->format == WeightFormat::kFP8 && w->input_scale > 0.0f;
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
    // One block past the engine's pool: the scratch block padded decode rows write into.
    const int blocks = (c.sliding ? kv_config_.num_blocks_sliding : kv_config_.num_blocks_full) + 1;
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
  for (cudaEvent_t e : prof_events_) cudaEventDestroy(e);
  if (meta_uploaded_) cudaEventDestroy(meta_uploaded_);
  if (stream_) cudaStreamDestroy(stream_);
}

CudaModelRunner::PinnedInts::~PinnedInts() {
  if (data) cudaFreeHost(data);
}

void CudaModelRunner::PinnedInts::reserve(size_t n) {
  if (n <= capacity) return;
  if (data) cudaFreeHost(data);
  data = nullptr;
  capacity = 0;
  void* p = nullptr;
  QUENCH_CUDA_CHECK(cudaMallocHost(&p, n * sizeof(int32_t)));
  data = static_cast<int32_t*>(p);
  capacity = n;
}

size_t CudaModelRunner::kv_cache_bytes(bool sliding) const {
  size_t b = 0;
  for (const LayerCache& c : caches_)
    if (c.sliding == sliding) b += c.k.bytes() + c.v.bytes();
  return b;
}

size_t CudaModelRunner::step_buffer_bytes() const {
  size_t b = meta_dev_.bytes() + fp8_x_.bytes() + fp8_mlp_.bytes();
  for (const DeviceBuffer* d : {&x_, &y_, &qf_, &kf_, &vf_, &hb_, &qb_, &attnb_, &actb_, &logitsb_, &logits_dev_,
                                &argmax_dev_, &argmax_scratch_, &attn_scratch_})
    b += d->bytes();
  return b;
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

void CudaModelRunner::ensure_capacity(int T, int max_blocks, int n_logits, int max_context) {
  const ModelConfig& cfg = model_->config();
  // Buffers grow geometrically from kMinStepRows, so a serving engine whose batch grows step by
  // step reallocates (and drops its captured graphs) a few times, not at every new size.
  const bool grow = T > cap_T_ || n_logits > cap_logits_;
  if (grow) clear_graphs();
  if (T > cap_T_) T = std::max({T, 2 * cap_T_, kMinStepRows});
  if (n_logits > cap_logits_) n_logits = std::max({n_logits, 2 * cap_logits_, kMinStepRows});
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
    linear_.reserve_mlp_scratch(T, static_cast<int>(I));  // fp32 gate/up for M > 8 (never grown in a capture)
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
    argmax_scratch_.reset(argmax_scratch_bytes(n_logits, cfg.vocab_size));
    cap_logits_ = n_logits;
  }
  // Attention scratch for any decode bucket up to the row capacity at this context (its plan
  // depends on T), so batch-size changes within a context bucket never regrow it.
  // Computed once per (T, context, capacity): decode steps repeat the same key.
  const std::tuple<int, int, int> key{T, max_context, cap_T_};
  size_t scratch = 0;
  if (key != scratch_key_) {
    std::set<std::pair<int, int>> shapes;  // (Hq, D): two kinds of layer in Gemma 4
    for (const auto& c : caches_) shapes.emplace(c.num_heads, c.head_dim);
    for (const auto& [hq, d] : shapes) {
      scratch = std::max(scratch, attention_scratch_bytes(T, hq, d, max_context));
      for (int b = 1; b <= cap_T_; b = decode_batch_bucket(b + 1))
        scratch = std::max(scratch, attention_scratch_bytes(b, hq, d, max_context));
    }
    scratch_key_ = key;
  }
  if (scratch > cap_scratch_) {
    clear_graphs();
    scratch = std::max(scratch, 2 * cap_scratch_);
    attn_scratch_.reset(scratch);
    cap_scratch_ = scratch;
  }
  // FP8 prefill buffers (set_fp8_prefill) for up to cap_T_ rows: E4M3 activations of the widest
  // input (hidden, intermediate or attention width) and one chunk of fp32 gate/up.
  if (has_fp8_linears_ && fp8_prefill_ && cap_T_ > kFp8MinRows) {
    size_t max_k = 0;
    for (const DeviceLayer& l : weights_.layers)
      for (const DeviceLinear* w : {&l.q, &l.o, &l.down}) max_k = std::max(max_k, static_cast<size_t>(w->K));
    const size_t need_x = static_cast<size_t>(cap_T_) * max_k;
    const size_t need_mlp = 2ull * kFp8MlpChunkRows * cfg.intermediate_size * sizeof(float);
    if (fp8_x_.bytes() < need_x || fp8_mlp_.bytes() < need_mlp) {
      clear_graphs();
      if (fp8_x_.bytes() < need_x) fp8_x_.reset(need_x);
      if (fp8_mlp_.bytes() < need_mlp) fp8_mlp_.reset(need_mlp);
    }
    if (!fp8_gemm_) {
      fp8_gemm_ = std::make_unique<Fp8Gemm>();
      // One small GEMM of the path's type combination before any capture: a cuBLASLt without an
      // E4M3 x E4M3 -> fp32 kernel turns the FP8 path off (with a warning) instead of failing steps.
      try {
        fp8_gemm_->run(fp8_x_.get<uint8_t>(), 1.0f, 16, 16, fp8_x_.get<uint8_t>(), 1.0f, kFp8MinRows + 16,
                       fp8_mlp_.get<float>(), stream_);
        QUENCH_CUDA_CHECK(cudaStreamSynchronize(stream_));
      } catch (const CudaError& e) {
        quench::log().warn("CUDA runner: FP8 prefill GEMMs unavailable ({}); FP8 weights are dequantized to bf16 "
                           "for prefill",
                           e.what());
        fp8_prefill_ = false;
      }
    }
  }
  // Step metadata for the capacities (S <= T: every sequence has a token): ids, pos, seq [T],
  // logit rows, and two block tables [S, max_blocks].
  if (max_blocks > cap_blocks_) cap_blocks_ = std::max({max_blocks, 2 * cap_blocks_, 16});
  const size_t meta = static_cast<size_t>(cap_T_) * 3 + cap_logits_ + 2ull * cap_T_ * cap_blocks_;
  if (meta * 4 > meta_dev_.bytes()) {
    clear_graphs();
    meta_dev_.reset(meta * 4);
  }
}

namespace {
int round_up_pow2(int v) {
  int p = 1;
  while (p < v) p <<= 1;
  return p;
}
}  // namespace

int decode_batch_bucket(int n) {
  if (n <= 8) return round_up_pow2(std::max(n, 1));
  int b = 16;
  while (b < n) b = (b & (b - 1)) == 0 ? b + b / 2 : b / 3 * 4;  // 16, 24, 32, 48, 64, 96, ...
  return b;
}

const char* op_kind_name(StepOp op) {
  switch (op) {
    case StepOp::kEmbed: return "embed";
    case StepOp::kQkvProj: return "qkv proj";
    case StepOp::kQkvNormRope: return "qkv norm/rope/store";
    case StepOp::kAttention: return "attention";
    case StepOp::kOProj: return "o proj";
    case StepOp::kNorms: return "residual norms";
    case StepOp::kMlpGateUp: return "mlp gate/up+gelu";
    case StepOp::kMlpDown: return "mlp down";
    case StepOp::kLmHead: return "lm head";
    case StepOp::kLogits: return "softcap/argmax";
    case StepOp::kCount: break;
  }
  return "?";
}

void CudaModelRunner::clear_graphs() {
  for (auto& [k, g] : graphs_) cudaGraphExecDestroy(g.exec);
  graphs_.clear();
  warmed_.clear();
}

void CudaModelRunner::mark(StepOp op) {
  if (!profiling_) return;
  if (prof_used_ == prof_events_.size()) {
    cudaEvent_t e;
    QUENCH_CUDA_CHECK(cudaEventCreate(&e));
    prof_events_.push_back(e);
    prof_ops_.push_back(op);
  }
  prof_ops_[prof_used_] = op;
  QUENCH_CUDA_CHECK(cudaEventRecord(prof_events_[prof_used_], stream_));
  ++prof_used_;
}

CudaModelRunner::StepLayout CudaModelRunner::prepare(std::span<const SeqStep> batch, bool bucket, int pad_to,
                                                     bool greedy) {
  const ModelConfig& cfg = model_->config();
  const int S_real = static_cast<int>(batch.size());
  const int S = std::max(S_real, pad_to), pad = S - S_real;
  int T = pad, n_logits = pad, max_blocks = 1, max_context = 1;
  const KvCacheSpec spec = kv_cache_spec();
  for (const SeqStep& s : batch) {
    if (s.tokens.empty()) throw InvalidArgument("CUDA runner: a SeqStep has no tokens");
    if (s.start_pos < 0) throw InvalidArgument(fmt::format("CUDA runner: start_pos {} is negative", s.start_pos));
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
  ensure_capacity(T, max_blocks, std::max(n_logits, 1), max_context);

  // Host metadata: ids[T] pos[T] seq[T] logit_rows[n_logits] table_full[S*mb] table_sliding[S*mb].
  const size_t meta_n = static_cast<size_t>(T) * 3 + n_logits + 2ull * S * max_blocks;
  QUENCH_CUDA_CHECK(cudaEventSynchronize(meta_uploaded_));  // the previous upload has read the buffer
  meta_host_.reserve(meta_n);
  std::fill(meta_host_.data, meta_host_.data + meta_n, -1);
  int32_t* ids = meta_host_.data;
  int32_t* pos = ids + T;
  int32_t* seq = pos + T;
  int32_t* rows = seq + T;
  int32_t* tf = rows + n_logits;
  int32_t* ts = tf + static_cast<size_t>(S) * max_blocks;
  int t = 0, r = 0;
  for (int si = 0; si < S_real; ++si) {
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
  // Padding rows: token 0 at position 0, cached in the scratch block (id = pool size) of each
  // group, logits wanted (rows after the real ones, never copied out).
  for (int si = S_real; si < S; ++si, ++t) {
    ids[t] = 0;
    pos[t] = 0;
    seq[t] = si;
    rows[r++] = t;
    tf[static_cast<size_t>(si) * max_blocks] = kv_config_.num_blocks_full;
    ts[static_cast<size_t>(si) * max_blocks] = kv_config_.num_blocks_sliding;
  }
  bool identity = n_logits == T;
  for (int i = 0; identity && i < n_logits; ++i) identity = rows[i] == i;
  QUENCH_CUDA_CHECK(cudaMemcpyAsync(meta_dev_.get(), meta_host_.data, meta_n * 4, cudaMemcpyHostToDevice, stream_));
  QUENCH_CUDA_CHECK(cudaEventRecord(meta_uploaded_, stream_));
  StepLayout L;
  L.T = T;
  L.S = S;
  L.n_logits = n_logits;
  L.max_blocks = max_blocks;
  L.max_context = max_context;
  L.greedy = greedy;
  L.identity_rows = identity;
  return L;
}

void CudaModelRunner::attention_in_proj(size_t l, int T) {
  const DeviceLayer& L = weights_.layers[l];
  if (use_fp8(L.q, T) && use_fp8(L.k, T) && (L.k_eq_v || use_fp8(L.v, T))) {
    fp8_attention_in_proj(L, T);
    return;
  }
  LinearJob jobs[3] = {{&L.q, qf_.get<float>()}, {&L.k, kf_.get<float>()}, {&L.v, vf_.get<float>()}};
  linear_.run_multi(std::span<const LinearJob>(jobs, L.k_eq_v ? 2 : 3), hb_.get<bf16>(), T);
}

void CudaModelRunner::mlp_gate_up(size_t l, int T) {
  const DeviceLayer& L = weights_.layers[l];
  if (use_fp8(L.gate, T) && use_fp8(L.up, T)) {
    fp8_gate_up_gelu(L, T);
    return;
  }
  linear_.run_gate_up_gelu(L.gate, L.up, hb_.get<bf16>(), T, actb_.get<bf16>());
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
  const int H = cfg.hidden_size;
  const float eps = static_cast<float>(cfg.rms_norm_eps);
  float* x = x_.get<float>();
  bf16* hb = hb_.get<bf16>();
  const size_t n_layers = weights_.layers.size();
  auto input_norm = [&](size_t l) {
    return l < n_layers ? weights_.layers[l].input_norm.get<float>() : weights_.final_norm.get<float>();
  };
  // One token per sequence (pure decode, as far as the fused decode kernels go), when asked for
  // (set_fold_decode_store): see the store below.
  const bool fold_store = fold_decode_store_ && T == S && T <= 64 && decode_attention_fused();
  if (begin_op(StepOp::kEmbed))
    embed_rmsnorm(d_ids, T, weights_.embed.get<bf16>(), H, embed_scale_, x, input_norm(0), eps, hb, stream_);
  for (size_t l = 0; l < n_layers; ++l) {
    const DeviceLayer& L = weights_.layers[l];
    LayerCache& C = caches_[l];
    // Attention block (§2.4).
    if (begin_op(StepOp::kQkvProj)) attention_in_proj(l, T);
    const float* v_src = L.k_eq_v ? kf_.get<float>() : vf_.get<float>();
    const BlockTables& tables = C.sliding ? sliding : full;
    auto store = [&] {
      qkv_norm_rope_store(qf_.get<float>(), kf_.get<float>(), v_src, T, C.num_heads, C.num_kv_heads, C.head_dim,
                          L.q_norm.get<float>(), L.k_norm.get<float>(), C.inv_freq.get<float>(), eps, meta, tables,
                          C.view, qb_.get<bf16>(), stream_);
    };
    // With fold_store the q/k norms, RoPE and KV store go into the attention launch
    // (qkv_paged_attention_decode): the store is then part of the attention op (the profiles show
    // no separate store), also when the fused kernel does not take the shape and the two calls
    // run in its place.
    if (begin_op(StepOp::kQkvNormRope) && !fold_store) store();
    if (begin_op(StepOp::kAttention)) {
      const bool folded =
          fold_store && qkv_paged_attention_decode(qf_.get<float>(), kf_.get<float>(), v_src, T, C.num_heads,
                                                   C.num_kv_heads, C.head_dim, L.q_norm.get<float>(),
                                                   L.k_norm.get<float>(), C.inv_freq.get<float>(), eps, C.window,
                                                   meta, tables, C.view, max_context, attnb_.get<bf16>(), stream_);
      if (fold_store && !folded) store();
      if (!folded)
        paged_attention(qb_.get<bf16>(), T, C.num_heads, C.head_dim, C.window, meta, tables, C.view, max_context,
                        attnb_.get<bf16>(), attn_scratch_.get(), stream_);
    }
    if (begin_op(StepOp::kOProj)) linear(L.o, attnb_.get<bf16>(), T, y_.get<float>());
    if (begin_op(StepOp::kNorms))
      residual_post_norm(x, y_.get<float>(), L.post_attn_norm.get<float>(), 1.0f, T, H, eps,
                         L.pre_ffn_norm.get<float>(), hb, stream_);
    // MLP block (§2.7).
    if (begin_op(StepOp::kMlpGateUp)) mlp_gate_up(l, T);
    if (begin_op(StepOp::kMlpDown)) linear(L.down, actb_.get<bf16>(), T, y_.get<float>());
    if (begin_op(StepOp::kNorms))
      residual_post_norm(x, y_.get<float>(), L.post_ffn_norm.get<float>(), L.layer_scalar, T, H, eps,
                         input_norm(l + 1), hb, stream_);
  }
  // hb now holds the final-normed hidden states (§2.8); LM head on the wanted rows only.
  if (n_logits > 0) {
    if (begin_op(StepOp::kLmHead)) {
      const bf16* head_in = hb;
      if (!SL.identity_rows) {
        gather_rows_bf16(hb, d_rows, n_logits, H, logitsb_.get<bf16>(), stream_);
        head_in = logitsb_.get<bf16>();
      }
      linear_.run_bf16(weights_.embed.get<bf16>(), cfg.vocab_size, H, head_in, n_logits, logits_dev_.get<float>());
    }
    const float cap = static_cast<float>(cfg.final_logit_softcapping);
    if (begin_op(StepOp::kLogits)) {
      if (SL.greedy)
        argmax_rows(logits_dev_.get<float>(), n_logits, cfg.vocab_size, cap, argmax_dev_.get<int32_t>(),
                    argmax_scratch_.get(), stream_);
      else
        softcap(logits_dev_.get<float>(), static_cast<size_t>(n_logits) * cfg.vocab_size, cap, stream_);
    }
  }
  mark(StepOp::kCount);  // closes the last op
}

cudaGraphExec_t CudaModelRunner::capture(const StepLayout& L, size_t* num_nodes) {
  cudaGraph_t graph = nullptr;
  QUENCH_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
  try {
    launch(L);
  } catch (...) {
    cudaStreamEndCapture(stream_, &graph);
    if (graph) cudaGraphDestroy(graph);
    throw;
  }
  QUENCH_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
  if (num_nodes) {
    const cudaError_t e = cudaGraphGetNodes(graph, nullptr, num_nodes);
    if (e != cudaSuccess || *num_nodes == 0) cudaGraphDestroy(graph);
    QUENCH_CUDA_CHECK(e);
    if (*num_nodes == 0) return nullptr;  // nothing to replay
  }
  cudaGraphExec_t exec = nullptr;
  const cudaError_t inst = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  QUENCH_CUDA_CHECK(inst);
  return exec;
}

int CudaModelRunner::run_step(std::span<const SeqStep> batch, StepOutput out) {
  const bool greedy = out == StepOutput::kGreedy;
  bool decode_only = use_graphs_ && !profiling_ && !batch.empty();
  int wanted = 0;
  for (const SeqStep& s : batch) {
    decode_only &= s.tokens.size() == 1 && s.want_logits;
    wanted += s.want_logits ? 1 : 0;
  }
  const int pad_to = decode_only ? decode_batch_bucket(static_cast<int>(batch.size())) : 0;
  const StepLayout L = prepare(batch, decode_only, pad_to, greedy);
  if (!decode_only) {
    launch(L);
    return wanted;
  }
  auto it = graphs_.find(L);
  if (it == graphs_.end() && warmed_.insert(L).second) {
    // First sight of this layout: run eagerly (sizes scratch buffers, lets cuBLAS and the kernel
    // attributes initialise outside a capture); capture on the next occurrence.
    launch(L);
    return wanted;
  }
  if (it == graphs_.end()) {
    while (graphs_.size() >= max_graphs_) {  // drop the least recently used
      auto lru = std::min_element(graphs_.begin(), graphs_.end(),
                                  [](const auto& a, const auto& b) { return a.second.last_use < b.second.last_use; });
      cudaGraphExecDestroy(lru->second.exec);
      graphs_.erase(lru);
    }
    // Capture once per layout; every buffer the kernels touch is sized already (prepare).
    it = graphs_.emplace(L, HeldGraph{capture(L), 0}).first;
    ++captures_;
  }
  it->second.last_use = ++use_clock_;
  QUENCH_CUDA_CHECK(cudaGraphLaunch(it->second.exec, stream_));
  return wanted;
}

void CudaModelRunner::execute(std::span<const SeqStep> batch, std::span<float> logits) {
  const size_t V = static_cast<size_t>(model_->config().vocab_size);
  size_t want = 0;
  for (const auto& s : batch) want += s.want_logits ? 1 : 0;
  if (logits.size() != want * V)
    throw InvalidArgument(fmt::format("CUDA runner: logits span has {} floats, expected {}", logits.size(), want * V));
  const int n = run_step(batch, StepOutput::kLogits);
  if (n > 0)
    QUENCH_CUDA_CHECK(cudaMemcpyAsync(logits.data(), logits_dev_.get(), static_cast<size_t>(n) * V * 4,
                                      cudaMemcpyDeviceToHost, stream_));
  QUENCH_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaModelRunner::execute_greedy(std::span<const SeqStep> batch, std::span<int32_t> out_tokens) {
  size_t want = 0;
  for (const auto& s : batch) want += s.want_logits ? 1 : 0;
  if (out_tokens.size() != want)
    throw InvalidArgument(fmt::format("CUDA runner: out_tokens has {} entries, the batch wants {} logits rows",
                                      out_tokens.size(), want));
  const int n = run_step(batch, StepOutput::kGreedy);
  copy_tokens(n, out_tokens);
}

void CudaModelRunner::copy_tokens(int n, std::span<int32_t> out) {
  if (n > static_cast<int>(out.size()))
    throw InvalidArgument(fmt::format("CUDA runner: {} tokens do not fit an output of {}", n, out.size()));
  if (n > 0) {
    tokens_host_.reserve(static_cast<size_t>(n));
    QUENCH_CUDA_CHECK(cudaMemcpyAsync(tokens_host_.data, argmax_dev_.get(), static_cast<size_t>(n) * sizeof(int32_t),
                                      cudaMemcpyDeviceToHost, stream_));
  }
  QUENCH_CUDA_CHECK(cudaStreamSynchronize(stream_));
  std::copy(tokens_host_.data, tokens_host_.data + std::max(n, 0), out.begin());
}

void CudaModelRunner::execute_profiled(std::span<const SeqStep> batch, std::span<int32_t> out_tokens,
                                       StepProfile& profile) {
  profiling_ = true;
  prof_used_ = 0;
  try {
    execute_greedy(batch, out_tokens);  // eager: run_step never replays a graph while profiling_
  } catch (...) {
    profiling_ = false;
    throw;
  }
  profiling_ = false;
  for (size_t i = 0; i + 1 < prof_used_; ++i) {
    float ms = 0;
    QUENCH_CUDA_CHECK(cudaEventElapsedTime(&ms, prof_events_[i], prof_events_[i + 1]));
    profile.ms[static_cast<int>(prof_ops_[i])] += ms;
  }
  profile.steps += 1;
}

}  // namespace quench::cuda
