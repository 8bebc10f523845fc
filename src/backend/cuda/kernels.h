// quench/backend/cuda/kernels.h: launchers of the CUDA kernels of one Gemma 4 forward step.
//
// Conventions: row-major; the residual stream and GEMM outputs are fp32, GEMM inputs and the KV
// cache are bf16 (or FP8 E4M3 for the cache); all reductions accumulate in fp32. Every launcher
// enqueues on `stream`, checks the launch and never synchronises. Formulas follow
// ../shared/reference/gemma4-architecture.md §2 (section numbers cited per function) and the CPU
// reference backend (src/backend/cpu), which the GPU results are tested against.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace quench::cuda {

using bf16 = __nv_bfloat16;

/// Programmatic Dependent Launch (pdl.cuh) for the kernels of norm_kernels.cu and
/// elementwise_kernels.cu: when on, each is launched so it may be scheduled before the previous
/// kernel on its stream completes (it waits on device before reading). On by default (H200:
/// 2.46 -> 2.03 us per residual_post_norm launch at T = 1); process-wide.
void set_programmatic_dependent_launch(bool on);
bool programmatic_dependent_launch();

// ---- embedding and norms (§2.1, §2.2, §2.3) -------------------------------------------------

/// x[t, :] = float(table[ids[t], :]) * scale.  ids int32 [T]; table bf16 [V, H]; x fp32 [T, H].
void embed(const int32_t* ids, int T, const bf16* table, int H, float scale, float* x, cudaStream_t stream);
/// embed() with the first layer's input norm fused in: also next = bf16(rmsnorm(x, w_next))
/// (next bf16 [T, H]; w_next fp32 [H]; w_next == nullptr: embed() alone).
void embed_rmsnorm(const int32_t* ids, int T, const bf16* table, int H, float scale, float* x, const float* w_next,
                   float eps, bf16* next, cudaStream_t stream);

/// out[t, :] = bf16(x[t,:] * (mean(x[t,:]^2) + eps)^-1/2 * w)  (w fp32 [H], or nullptr = no weight).
/// x fp32 [T, H] with row stride `x_stride` elements; out bf16 [T, H] dense.
void rmsnorm_to_bf16(const float* x, int x_stride, const float* w, int T, int H, float eps, bf16* out,
                     cudaStream_t stream);

/// The end of a residual branch (§2.3): x = (x + rmsnorm(y, w_post)) * scalar, then, when
/// w_next != nullptr, next = bf16(rmsnorm(x, w_next)) (the next norm fused in).
/// x fp32 [T, H] in/out; y fp32 [T, H]; scalar = layer_scalar (1 after attention).
void residual_post_norm(float* x, const float* y, const float* w_post, float scalar, int T, int H, float eps,
                        const float* w_next, bf16* next, cudaStream_t stream);

// ---- linear layers -----------------------------------------------------------------------

/// Skinny GEMM for decode, y[m, n] = sum_k x[m, k] * W[n, k], m < M <= 8.
/// W bf16 [N, K]; x bf16 [M, K]; y fp32 [M, N]. K % 8 == 0.
void gemv_bf16(const bf16* W, int N, int K, const bf16* x, int M, float* y, cudaStream_t stream);
/// Same with W FP8 E4M3 [N, K] and a per-tensor scale: W = fp32(code) * scale. K % 16 == 0.
void gemv_fp8(const uint8_t* W, float scale, int N, int K, const bf16* x, int M, float* y, cudaStream_t stream);
/// Same with NVFP4 W: packed E2M1 [N, K/2] (low nibble = even k), E4M3 block scales [N, K/16],
/// fp32 global scale: W[n,k] = e2m1 * fp32(scale[n, k/16]) * global (nvfp4-modelopt-format.md §3).
/// K % 16 == 0.
void gemv_nvfp4(const uint8_t* Wq, const uint8_t* scales, float global_scale, int N, int K, const bf16* x, int M,
                float* y, cudaStream_t stream);

/// Most activation rows the skinny GEMMs take (the MMA's 8 columns).
constexpr int kGemvMaxRows = 8;
/// Most Linears one gemv_multi launch takes.
constexpr int kGemvMaxJobs = 4;

/// Weight format of a skinny-GEMM job (the values of quench::WeightFormat, kept here so this
/// header needs no io/ include).
enum class GemvFormat { kBF16, kFP8, kNVFP4 };

/// One Linear of a skinny-GEMM launch: y fp32 [M, N] = x · Wᵀ with W [N, K] in `format`:
/// kBF16: W bf16 [N, K], `scales`/`scale` unused; kFP8: W E4M3 [N, K], `scale` per tensor;
/// kNVFP4: W packed E2M1 [N, K/2], `scales` E4M3 [N, K/16], `scale` = global (weight_scale_2).
struct GemvJob {
  GemvFormat format = GemvFormat::kBF16;
  const void* W = nullptr;
  const uint8_t* scales = nullptr;
  float scale = 1.0f;
  int N = 0;
  float* y = nullptr;
};

/// Several Linears of one format on the same input (q, k, v) in one launch: jobs[j].y = x · W_jᵀ.
/// x bf16 [M, K]; 1 <= M <= kGemvMaxRows; 1 <= njobs <= kGemvMaxJobs; K % 8 == 0 (bf16) or
/// K % 16 == 0 (FP8, NVFP4). Numerics as gemv_bf16 / gemv_fp8 / gemv_nvfp4 (which are this with
/// one job): fp32 accumulation on the tensor cores, NVFP4 applied as (e2m1 * scale) exact in bf16,
/// times the global scale in fp32. Throws InvalidArgument naming the job for any other shape.
void gemv_multi(const GemvJob* jobs, int njobs, int K, const bf16* x, int M, cudaStream_t stream);

/// The MLP's first half in one launch (§2.7): act[m, i] = bf16(gelu_tanh(g) * u) with
/// g = (x · gateᵀ)[m, i], u = (x · upᵀ)[m, i] computed as gemv_multi would (fp32, never stored).
/// gate and up: same format and shape [N, K]; act bf16 [M, N]; 1 <= M <= kGemvMaxRows.
void gemv_gate_up_gelu(const GemvJob& gate, const GemvJob& up, int K, const bf16* x, int M, bf16* act,
                       cudaStream_t stream);

/// NVFP4 -> bf16 [N, K] (for prefill GEMMs through cuBLAS; a per-layer scratch, never the model):
/// out = bf16(fl32(e2m1 * fl32(fp32(scale) * global))), the CPU dequant's rounding
/// (io/dequant.h). K % 16 == 0.
void dequant_nvfp4_to_bf16(const uint8_t* Wq, const uint8_t* scales, float global_scale, int N, int K, bf16* out,
                           cudaStream_t stream);
/// FP8 E4M3 -> bf16 [N, K]: out = bf16(fl32(fp32(code) * scale)).
void dequant_fp8_to_bf16(const uint8_t* W, float scale, int N, int K, bf16* out, cudaStream_t stream);

// ---- attention (§2.4-§2.6) ---------------------------------------------------------------

/// Per-token metadata of a batched step (device arrays).
struct TokenMeta {
  const int32_t* pos;      ///< [T] absolute position of each token
  const int32_t* seq;      ///< [T] index of its sequence in the batch
};

/// Paged KV cache of one layer: K and V pools [num_blocks, block_size, Hkv, D] of bf16 or FP8
/// (then stored = value / scale, RNE, saturating).
struct KvLayerView {
  void* k = nullptr;
  void* v = nullptr;
  bool fp8 = false;
  float k_scale = 1.0f, v_scale = 1.0f;
  int block_size = 16;
  int num_heads = 0;       ///< Hkv
  int head_dim = 0;        ///< D
};

/// Block tables of one KV-cache group: int32 [S, max_blocks] (physical block id or -1).
struct BlockTables {
  const int32_t* table = nullptr;
  int max_blocks = 0;
};

/// q/k/v post-processing of one layer, in place of the projections:
///   q fp32 [T, Hq*D]  -> q_out bf16 [T, Hq*D] = rope(rmsnorm(q, q_norm))
///   k fp32 [T, Hkv*D] -> cache K            = rope(rmsnorm(k, k_norm))
///   v fp32 [T, Hkv*D] (the raw k for k_eq_v layers) -> cache V = rmsnorm_noweight(v)
/// inv_freq fp32 [D/2] (zeros beyond the rotated pairs for proportional RoPE, §2.5); angles are
/// pos * inv_freq in fp32, NeoX pairing (j, j + D/2). Launched with PDL (pdl.cuh): meta.pos and
/// inv_freq are read before waiting on the previous kernel (they must not be its outputs).
void qkv_norm_rope_store(const float* q, const float* k, const float* v, int T, int Hq, int Hkv, int D,
                         const float* q_norm, const float* k_norm, const float* inv_freq, float eps, TokenMeta meta,
                         BlockTables tables, KvLayerView cache, bf16* q_out, cudaStream_t stream);

/// Paged attention for a batch of tokens (prefill chunks and decode alike): query token t of
/// sequence s at position p attends to keys at positions max(0, p - window + 1) .. p
/// (window = 0: all), scale 1.0, fp32 softmax; GQA head h reads KV head h / (Hq / Hkv).
/// q bf16 [T, Hq*D]; out bf16 [T, Hq*D]. `scratch` must hold attention_scratch_bytes(...).
/// Keys of blocks whose table entry is -1 are never read: such blocks must lie wholly before every
/// query's window. `max_context` bounds every position + 1 (a bucketed over-estimate is fine: the
/// kernels read each sequence's real key range from meta.pos, so work follows the real contexts). Head dims 32/64/128/256/512 with
/// any Hq / Hkv run on the tensor cores (attention_flash.cu), others on CUDA cores.
/// Throws InvalidArgument for Hq not a multiple of cache.num_heads or D != cache.head_dim.
void paged_attention(const bf16* q, int T, int Hq, int D, int window, TokenMeta meta, BlockTables tables,
                     KvLayerView cache, int max_context, bf16* out, void* scratch, cudaStream_t stream);
/// Bytes of scratch paged_attention needs for T tokens with contexts up to max_context.
size_t attention_scratch_bytes(int T, int Hq, int D, int max_context);

/// Decode-shaped calls (T <= 64) of layers with 16 query heads per KV head and head_dim 256/512
/// (tensor cores) or 1, 2, 4 query heads per KV head and head_dim 128/256 (CUDA cores) run as one
/// launch that splits each (token, KV head)'s keys over a thread-block cluster and merges the
/// splits in the kernel (no scratch used). Those kernels are launched with Programmatic Dependent
/// Launch under set_programmatic_dependent_launch's rule: they read meta.pos / meta.seq before
/// waiting on the previous kernel, so the kernel launched right before paged_attention must not
/// write them (the CUDA runner uploads them by a copy). On by default; off: the previous kernels
/// (split partials + a combine launch), kept for bench-kernels' comparison. Process-wide.
void set_decode_attention_fused(bool on);
bool decode_attention_fused();
/// Caps the cluster size (= key splits per (token, KV head)) of the single-launch decode kernels
/// (0: no cap, the default; otherwise 1..16); for bench-kernels' probes. Process-wide.
void set_decode_attention_max_cluster(int cap);
/// The split count of the last single-launch decode launch in this process (0 before any).
int decode_attention_last_splits();
/// Cluster sizes the device refused for those launches so far, with the CUDA error names
/// ("cluster 16: cudaErrorXxx; ..."); empty when none was refused.
std::string decode_attention_cluster_refusals();

/// qkv_norm_rope_store followed by paged_attention in one launch, for decode steps in which every
/// token belongs to a different sequence (each token's new K/V row is written and read inside
/// the launch; a step with two tokens of one sequence must use the two calls). Arguments as those
/// two functions (q/k/v fp32 projections, norms, inv_freq, eps; window, max_context, out);
/// q_out is not written. The cache receives the same K/V rows as qkv_norm_rope_store writes
/// (same formulas; fp32 sums may round in another order). Returns false, enqueuing nothing, when
/// there is no single-launch kernel for the shape (see set_decode_attention_fused), T > 64,
/// set_decode_attention_fused(false) or the device refuses thread-block clusters: the caller then
/// makes the two calls. Throws InvalidArgument
/// for Hq not a multiple of Hkv or Hkv / D not matching the cache. PDL as set_decode_attention_fused.
bool qkv_paged_attention_decode(const float* q, const float* k, const float* v, int T, int Hq, int Hkv, int D,
                                const float* q_norm, const float* k_norm, const float* inv_freq, float eps, int window,
                                TokenMeta meta, BlockTables tables, KvLayerView cache, int max_context, bf16* out,
                                cudaStream_t stream);

// ---- activations and logits ----------------------------------------------------------------

/// act[t, i] = bf16(gelu_tanh(gate[t, i]) * up[t, i]) (§2.7). gate/up fp32 [T, I] with row
/// strides gate_stride / up_stride.
void gelu_tanh_mul(const float* gate, int gate_stride, const float* up, int up_stride, int T, int I, bf16* act,
                   cudaStream_t stream);
/// logits = cap * tanh(logits / cap) in place (fp32 [n]); cap <= 0 does nothing (§2.8).
void softcap(float* logits, size_t n, float cap, cudaStream_t stream);
/// out[r] = argmax over v in logits[r, 0..V) of (cap > 0 ? cap * tanh(v / cap) : v), i.e. the
/// argmax of the soft-capped logits without writing them (§2.8); lowest index on ties, NaN never
/// wins (0 when a row is all NaN). logits fp32 [R, V]; out int32 [R]; `scratch` (device) must hold
/// argmax_scratch_bytes(R, V). Two launches: blocks of 4096 logits, then one block per row.
void argmax_rows(const float* logits, int R, int V, float cap, int32_t* out, void* scratch, cudaStream_t stream);
/// Bytes of scratch argmax_rows needs for R rows of V logits.
size_t argmax_scratch_bytes(int R, int V);

}  // namespace quench::cuda

namespace quench::cuda {
/// out[r, :] = in[rows[r], :] for r < R. in/out bf16 [*, H]; rows int32 device [R].
void gather_rows_bf16(const bf16* in, const int32_t* rows, int R, int H, bf16* out, cudaStream_t stream);
}  // namespace quench::cuda
