// quench/backend/cuda/gemv_ring.h: entry points of the shared-memory ring decode GEMV
// (gemv_ring.cu) for gemv_kernels.cu's dispatcher.
#pragma once

#include <cuda_runtime.h>

#include "backend/cuda/gemv_args.cuh"

namespace quench::cuda::gemv_detail {

/// Whether the ring kernel takes this launch: each weight row a whole number of 128-byte spans
/// (bf16 K % 64 == 0, FP8 K % 128 == 0, NVFP4 K % 256 == 0) and x, every W (and NVFP4 scale)
/// base pointer 16-byte aligned, on a device that gives a block 227 KB of shared memory (sm_90).
/// Shapes are otherwise as gemv_multi checks them.
bool ring_supports(GemvFormat f, int K, const LaunchArgs& a);

/// Whether the ring kernel stages x (M rows of K bf16, padded) in shared memory with >= 3 ring
/// stages left (NVFP4: M * K <= 8 * 3840 or so; beyond it reads x through L1 for every tile).
bool ring_stages_x(GemvFormat f, int K, int M);

/// Launches the ring kernel on `a` (jobs, K, M, x and, for gate/up, act set; fills row_end and
/// rows_total): plain launches write each job's y, gate_up (jobs 0 = gate, 1 = up) writes act.
/// Throws CudaError on a launch failure.
void launch_ring(GemvFormat f, bool gate_up, LaunchArgs& a, cudaStream_t stream);

}  // namespace quench::cuda::gemv_detail
