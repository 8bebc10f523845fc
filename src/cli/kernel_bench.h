// quench/cli/kernel_bench.h: the registry behind `quench bench-kernels` — single GPU kernels timed
// on the 12B shapes against their physical bound, in seconds instead of the minutes a whole-model
// benchmark takes (METHOD.md: one kernel version, one measured figure, one prediction).
//
// Each domain (GEMV/GEMM, attention, norms/sampling ...) registers its cases from its own file
// src/cli/bench_kernels_<domain>.cpp at static-init time (cli sources are linked into the
// executable directly, so the registration is never dropped):
//
//   static const bool reg = quench::cli::register_kernel_bench("gemv", [](const KernelBenchEnv& env) {
//     std::vector<KernelCase> out; ... out.push_back({"gemv", "nvfp4 N=15360 K=3840 M=1", bytes, flops,
//     median_kernel_us([&] { gemv_nvfp4(...); }, env)}); return out; });
//
// Rules for a case: inputs are random (never zeros or constants: zeros run faster than real data);
// a case whose working set is smaller than ~4x the L2 (env.l2_bytes) must rotate over enough
// copies of its weights that each launch reads from DRAM; `bytes` counts the bytes the kernel
// must move at least (its bound is bytes / env.bandwidth), `flops` its useful FLOPs.
#pragma once

#ifdef QUENCH_HAVE_CUDA
#include <cuda_runtime.h>

#include <functional>
#include <string>
#include <vector>

namespace quench::cli {

/// One timed kernel configuration.
struct KernelCase {
  std::string group;   ///< registry group, e.g. "gemv"
  std::string name;    ///< shape and format, e.g. "nvfp4 N=15360 K=3840 M=1"
  double bytes = 0;    ///< minimum DRAM bytes moved per launch
  double flops = 0;    ///< useful FLOPs per launch
  double us = 0;       ///< median measured time per launch, microseconds
};

/// What a case gets: the stream to launch on and the measured ceilings (device_measure.h).
struct KernelBenchEnv {
  cudaStream_t stream = nullptr;
  double bandwidth = 0;   ///< measured copy bandwidth, bytes/s
  double bf16_peak = 0;   ///< measured cuBLAS bf16 GEMM rate, FLOP/s
  size_t l2_bytes = 0;    ///< L2 cache size of the device
  int iters = 50;         ///< timed launches per case
};

using KernelBenchFn = std::function<std::vector<KernelCase>(const KernelBenchEnv&)>;

/// Adds a group of cases; returns true so it can initialise a static.
bool register_kernel_bench(std::string group, KernelBenchFn fn);
/// All registered groups in registration order.
const std::vector<std::pair<std::string, KernelBenchFn>>& kernel_benches();

/// Microseconds per launch of `launch()`: env.iters launches captured into one CUDA graph (back to
/// back on the stream if capture fails) timed between two events, median of 7 repetitions, after
/// 3 untimed warm-up launches. `launch` must enqueue on env.stream only, without synchronising or
/// allocating; state it changes between calls (rotating weight copies) is baked into the graph in
/// call order.
double median_kernel_us(const std::function<void()>& launch, const KernelBenchEnv& env);

}  // namespace quench::cli
#endif  // QUENCH_HAVE_CUDA
