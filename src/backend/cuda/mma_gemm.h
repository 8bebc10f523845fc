// quench/backend/cuda/mma_gemm.h: tensor-core weight-only GEMM for M > 8 activation rows,
// y[M, N] fp32 = x[M, K] bf16 · W[N, K]ᵀ with W read once in its stored format (bf16, FP8 E4M3
// per-tensor, NVFP4) and dequantized to bf16 in registers, never in memory — the Marlin idea
// (vLLM csrc/quantization/marlin/marlin_template.h) without its weight repacking.
//
// Kernel shape (mma_gemm.cu): W rows are the A operand of mma.sync m16n8k16 (rows = output
// features), x rows the B operand (tokens = the n dimension), fp32 accumulators. W, its block
// scales and x stream through a multi-stage cp.async shared-memory pipeline in 64-byte-per-row
// chunks of K; the grid is split along K (up to 8 ways) when rows × token tiles cannot fill the
// GPU, the parts summed inside a thread-block cluster through distributed shared memory
// (deterministic, no atomics, no workspace). Explicit tilings with more splits use `workspace`
// and a small reduction kernel.
//
// Every call is CUDA-graph capturable: it enqueues one kernel (two for split-K through memory) on
// `stream`, allocates nothing and never synchronises. The first call per kernel variant sets its shared-memory
// attribute and reads the SM count (do one eager call before capturing, as the runner does).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "backend/cuda/device_weights.h"

namespace quench::cuda {

/// Non-owning view of one Linear weight on the device, in the layouts of DeviceLinear:
/// bf16: `data` bf16 [N, K]; FP8: `data` E4M3 [N, K], `scale` per tensor; NVFP4: `data` U8
/// [N, K/2] (low nibble = even k), `block_scales` E4M3 [N, K/16], `scale` = weight_scale_2
/// (nvfp4-modelopt-format.md §1.4, §3).
struct GemmWeight {
  WeightFormat format = WeightFormat::kBF16;
  int N = 0, K = 0;
  const void* data = nullptr;
  const uint8_t* block_scales = nullptr;
  float scale = 1.0f;
};

/// The view of a resident DeviceLinear.
GemmWeight gemm_weight(const DeviceLinear& W);

/// Upper bound of mma_gemm_workspace_bytes for any shape (split-K partials are capped to it), so a
/// caller can allocate one fixed workspace once.
inline constexpr size_t kMmaGemmMaxWorkspace = size_t{16} << 20;

/// Bytes of workspace mma_gemm needs for this weight and M (0 with the default tilings, which
/// reduce split-K parts inside a cluster).
/// Always <= kMmaGemmMaxWorkspace. Reads the device's SM count on first use.
size_t mma_gemm_workspace_bytes(const GemmWeight& W, int M);
size_t mma_gemm_workspace_bytes(const DeviceLinear& W, int M);

/// True when mma_gemm should run this (weight, M) rather than dequantize + cuBLAS: the crossover
/// chosen from the H200 bench-kernels "gemm" group (see the comment at its definition).
bool mma_gemm_preferred(const GemmWeight& W, int M);
bool mma_gemm_preferred(const DeviceLinear& W, int M);

/// y fp32 [M, N] (row-major, fully overwritten) = x bf16 [M, K] (row-major, 16-byte aligned) · Wᵀ.
/// Any M >= 1 works (tuned for 9..128). Requires K % 16 == 0 and, for NVFP4, block scales.
/// `workspace` must hold mma_gemm_workspace_bytes(W, M) bytes. Throws InvalidArgument naming the
/// violated requirement; CudaError when a launch fails.
void mma_gemm(const GemmWeight& W, const bf16* x, int M, float* y, void* workspace, size_t workspace_bytes,
              cudaStream_t stream);
void mma_gemm(const DeviceLinear& W, const bf16* x, int M, float* y, void* workspace, size_t workspace_bytes,
              cudaStream_t stream);

/// One kernel configuration: `mt` tiles of 16 W rows per warp, `nt` tiles of 8 tokens per block,
/// `stages` cp.async pipeline stages, `splits` parts along K (0 = automatic), `sub` 64-byte pieces
/// of each W row per chunk, `warps` per block, `xperm`: x permuted into the unpack's k order once
/// per chunk in shared memory (FP8/NVFP4) instead of by every warp, `min_blocks`: registers
/// capped for this many blocks per SM (0: two 8-warp / three 4-warp blocks), `wk`: warps along K
/// inside a block (each owns one of the `sub` = wk sub-chunks; a block then holds warps / wk · mt
/// · 16 rows). For tuning sweeps (bench-kernels "gemm") and tests; mma_gemm picks its own by M.
struct MmaGemmTiling {
  int mt = 0, nt = 0, stages = 0, splits = 0, sub = 1, warps = 4;
  bool xperm = false;
  int min_blocks = 0;
  int wk = 1;
};
/// The compiled configurations (splits = 0).
std::vector<MmaGemmTiling> mma_gemm_tilings();
/// The configuration mma_gemm(W, x, M, ...) uses, with its split count resolved.
MmaGemmTiling mma_gemm_tiling(const GemmWeight& W, int M);
/// The configuration mma_gemm_multi(W, y, n, x, M, ...) uses, with its split count resolved.
MmaGemmTiling mma_gemm_multi_tiling(const GemmWeight* W, int n, int M);
/// `t` with its split count resolved as mma_gemm(W, t, x, M, ...) would.
MmaGemmTiling mma_gemm_tiling(const GemmWeight& W, int M, const MmaGemmTiling& t);
/// Workspace bytes of an explicit configuration: splits * M * N * 4 when splits exceeds the
/// cluster size (8) and partial sums go through memory, else 0.
size_t mma_gemm_workspace_bytes(const GemmWeight& W, int M, const MmaGemmTiling& t);
/// mma_gemm with an explicit configuration from mma_gemm_tilings() (splits clamped to the number
/// of K chunks). Throws InvalidArgument for a configuration that is not compiled.
void mma_gemm(const GemmWeight& W, const MmaGemmTiling& t, const bf16* x, int M, float* y, void* workspace,
              size_t workspace_bytes, cudaStream_t stream);

/// Several Linears of one format and K on the same x in one launch (q/k/v of a layer, gate/up):
/// y[j] fp32 [M, W[j].N] = x · W[j]ᵀ for j < n, 1 <= n <= 4. Their row tiles share one grid, so
/// small matrices (k/v: 2048 rows) ride along with large ones instead of paying their own launch
/// and tail. Same requirements and errors as mma_gemm, plus a common K and format.
void mma_gemm_multi(const GemmWeight* W, float* const* y, int n, const bf16* x, int M, void* workspace,
                    size_t workspace_bytes, cudaStream_t stream);
/// Workspace of mma_gemm_multi (0 with the default tilings).
size_t mma_gemm_multi_workspace_bytes(const GemmWeight* W, int n, int M);

}  // namespace quench::cuda
