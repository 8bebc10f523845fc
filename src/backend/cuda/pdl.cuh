// quench/backend/cuda/pdl.cuh: opt-in Programmatic Dependent Launch (PDL, sm_90) for the step's
// small kernels (norms, embedding, argmax, GeGLU, softcap).
//
// A kernel launched with cudaLaunchAttributeProgrammaticStreamSerialization may be scheduled
// before the previous kernel on the stream has finished (its blocks become resident and wait),
// hiding the launch latency between two kernels of a decode step; inside a CUDA graph the edge
// becomes a programmatic dependency. Every kernel launched this way calls pdl_wait() before it
// reads anything the previous kernel wrote (griddepcontrol.wait returns once that kernel has
// completed and flushed its memory), so results are identical with PDL on or off. On by
// default (set_programmatic_dependent_launch); bench-runner --no-pdl turns it off.
#pragma once

#include <cuda_runtime.h>

#include <utility>

#include "backend/cuda/cuda_utils.h"
#include "backend/cuda/kernels.h"

namespace quench::cuda {

/// Waits for the completion (and memory flush) of the kernel this one programmatically depends
/// on; returns at once when launched without PDL. Call before the first dependent read.
/// Read the previous kernel's output with ordinary (or volatile) loads after it, never through
/// __ldg / ld.global.nc: the compiler treats those as invariant loads and may move them above the
/// wait (H200 run 5: the GEMV register kernel's x loads did, and its results changed with PDL).
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

/// Launches kernel<<<grid, block, 0, stream>>>(args...) with the PDL attribute when
/// programmatic_dependent_launch() is on and `stream` is a created stream (never on the legacy or
/// per-thread default stream, whose implicit synchronisation PDL was not measured with); checks
/// the launch (throws CudaError).
template <typename... KArgs, typename... Args>
void launch_kernel(void (*kernel)(KArgs...), dim3 grid, dim3 block, cudaStream_t stream, Args&&... args) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = 0;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  const bool default_stream = stream == nullptr || stream == cudaStreamLegacy || stream == cudaStreamPerThread;
  cfg.numAttrs = programmatic_dependent_launch() && !default_stream ? 1 : 0;
  QUENCH_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...));
}

}  // namespace quench::cuda
