// quench/backend/cuda/device_measure.h: the two ceilings benchmarks are reported against
// (METHOD.md): device-to-device copy bandwidth (bytes read + written per second) and the bf16
// tensor-core GEMM rate through cuBLAS (FLOP/s), both measured on random data with events.
#pragma once

namespace quench::cuda {

/// Median of 10 timed 2 GiB device-to-device copies after warm-up; bytes read + written per second.
double measure_copy_bandwidth();
/// Median of 10 timed 8192^3 bf16 GEMMs (fp32 accumulate) on random data; FLOP/s.
double measure_bf16_gemm_peak();

}  // namespace quench::cuda
