// quench/backend/cuda/gemv_args.cuh: the device-side arguments of one decode-GEMV launch (M <= 8
// activation rows), shared by the register-streaming kernel (gemv_kernels.cu) and the
// shared-memory ring kernel (gemv_ring.cu).
#pragma once

#include "backend/cuda/gemv_common.cuh"
#include "backend/cuda/kernels.h"

namespace quench::cuda::gemv_detail {

/// One Linear of a launch, device view.
struct JobArgs {
  const uint8_t* w = nullptr;   ///< weight rows (format-specific bytes)
  const uint8_t* s = nullptr;   ///< NVFP4 block scales, else unused
  float out_scale = 1.0f;       ///< fp32 factor on the accumulated sums
  int N = 0;
  float* y = nullptr;           ///< fp32 [M, N] (plain launches)
};

/// Everything a launch needs (passed by value as a __grid_constant__ parameter).
struct LaunchArgs {
  JobArgs job[kGemvMaxJobs];
  int tile_end[kGemvMaxJobs] = {};  ///< register kernel: cumulative block count after each job
  int row_end[kGemvMaxJobs] = {};   ///< ring kernel: cumulative rows after each job (plain launches)
  int rows_total = 0;               ///< ring kernel: rows split over the blocks (sum of N; gate/up: N)
  int stages = 0;                   ///< ring kernel: stages per warp ring (2..6)
  int group_warps = 16;             ///< ring kernel: warps sharing one tile (1, 2, 4, 8 or 16)
  int group_warps_hint = 0;         ///< ring kernel: the dispatcher's choice of group_warps (0: picked)
  int njobs = 0;
  int K = 0, M = 0;
  const bf16* x = nullptr;          ///< bf16 [M, K]
  bf16* act = nullptr;              ///< gate/up launches: bf16 [M, N]
  E2m1Muls e2m1;                    ///< run-time E2M1 multipliers (gemv_common.cuh)
};

/// 16 bytes of the previous kernel's output (x) read after griddepcontrol.wait: through L2 only
/// (never a stale L1 line) and volatile, so the compiler cannot hoist it above the wait (an
/// __ldg / ld.global.nc is an invariant load it may move; H200 run 5 caught exactly that race).
__device__ __forceinline__ uint4 ld_dep16(const void* p) {
  uint4 v;
  asm volatile("ld.global.cg.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p)
               : "memory");
  return v;
}

/// griddepcontrol.launch_dependents: lets the next kernel on the stream (launched with PDL) be
/// scheduled once every block of this one has called it or exited; no-op without PDL. The next
/// kernel still waits (griddepcontrol.wait) for this one's completion before reading its output.
__device__ __forceinline__ void gemv_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

}  // namespace quench::cuda::gemv_detail
