// quench/backend/cuda/gemv_variant.h: which decode-GEMV kernel gemv_multi / gemv_gate_up_gelu
// (kernels.h) run, so that tests and `quench bench-kernels` can check and time each one on the
// same shapes. Process-wide; the default (kAuto) is what the runner uses.
#pragma once

namespace quench::cuda {

/// kRegisters: gemv_kernels.cu's kernel (weights streamed through registers, 8 warps per block,
/// one block per 16-32 rows). kRing: gemv_ring.cu's persistent kernel (weights staged through a
/// per-warp shared-memory ring by cp.async, one 16-warp block per SM); shapes it does not take
/// (row bytes not a multiple of 128, unaligned pointers) run kRegisters. kAuto: kRing where
/// supported and measured faster, else kRegisters (the rule is in gemv_kernels.cu).
enum class GemvKernel { kAuto, kRegisters, kRing };

/// Sets the kernel for later launches (not thread-safe against concurrent launches).
void set_gemv_kernel(GemvKernel k);
GemvKernel gemv_kernel();

/// Register kernel, NVFP4: blocks per SM it is compiled for (2: <= 128 registers; 3: <= 80
/// registers with small spills; 0: the auto rule's choice, the default). For bench-kernels'
/// comparisons; throws InvalidArgument for any other value.
void set_gemv_register_blocks(int blocks);

/// Ring kernel: warps per tile group forced to `gw` (1, 2, 4, 8 or 16; 0 = picked per launch).
/// For bench-kernels' comparisons. Throws InvalidArgument for any other value.
void set_gemv_ring_group_warps(int gw);

}  // namespace quench::cuda
