// quench/backend/cuda/quantize_gpu.h: NVFP4 / FP8 weight quantization on the GPU, byte-identical
// to the CPU quantizer (src/quant/nvfp4.cpp, src/quant/fp8.cpp).
//
// Formulas: ../shared/reference/nvfp4-modelopt-format.md §3 (NVFP4, ModelOpt 0.45+ NVFP4QTensor)
// and §7.1 (FP8 per tensor). Every fp32 operation of the CPU path is reproduced with the same
// IEEE round-to-nearest operation (__fmul_rn, __fdiv_rn; no contraction, no flush to zero) and
// the E4M3 encode is the same bit algorithm as core/numeric.cpp f32_to_fp8e4m3 (c10's). The
// global scale itself (amax / 2688, amax / 448) is computed by the caller on the host with the
// CPU functions, from the exact GPU amax (a max is order-independent), so it is the same fp32.
//
// Host data moves through two pinned staging buffers (double-buffered: the CPU copy of one chunk,
// spread over up to 8 host threads, overlaps the DMA of the other), so a tensor can come straight from a read-only mmap and its
// results can go to any host memory; nothing is held on the host beyond the staging buffers.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "core/dtype.h"

namespace quench::cuda {

/// One weight matrix resident on the GPU as its source dtype, with its exact max |w|.
struct DeviceWeightInfo {
  int64_t rows = 0, cols = 0;
  DType dtype = DType::kBF16;  ///< BF16, F16 or F32 (converted to fp32 exactly in the kernels)
  float amax = 0.0f;           ///< max |w| (NaN ignored, as quant/nvfp4.h abs_max)
};

/// Error of one quantization: ||W - dequant(Q(W))||_2 / ||W||_2 with the dequantization of
/// nvfp4-modelopt-format.md §4 (fl32(E2M1 * fl32(float(scale) * g)), FP8: fl32(float(code) * s)),
/// sums in double (0 when W is all zero). Summation order differs from the CPU's, so the last
/// digits may differ; the quantized bytes never do.
struct QuantError {
  double rel_l2 = 0.0;
};

/// Streams weights to the GPU and quantizes them. One instance owns a CUDA stream, the pinned
/// staging buffers and a pool of device weights ("slots") reused across calls; not thread-safe.
/// All methods throw CudaError (backend/cuda/cuda_utils.h) on a failed CUDA call and
/// InvalidArgument on a bad shape, dtype, slot or output size.
class GpuWeightQuantizer {
 public:
  /// Uses CUDA device `device`. `staging_bytes` is the size of each of the two pinned buffers.
  /// Throws CudaError when no device is usable.
  explicit GpuWeightQuantizer(int device = 0, std::size_t staging_bytes = std::size_t{32} << 20);
  ~GpuWeightQuantizer();
  GpuWeightQuantizer(const GpuWeightQuantizer&) = delete;
  GpuWeightQuantizer& operator=(const GpuWeightQuantizer&) = delete;

  /// "NVIDIA H200 (sm_90, 132 SMs, 139.8 GiB)".
  std::string device_description() const;

  /// Copies the row-major [rows, cols] tensor at `host` (dtype BF16, F16 or F32; any host memory,
  /// e.g. a read-only mmap) into device slot `slot` (grown as needed) and reduces its amax on the
  /// GPU. Returns the slot's info. Synchronous: `host` may be released when it returns.
  DeviceWeightInfo upload(int slot, const void* host, DType dtype, int64_t rows, int64_t cols);

  /// NVFP4-quantizes slot `slot` with global scale `global_scale` (weight_scale_2; from
  /// quench::nvfp4_global_scale of the fused group's amax) and copies the results to the host:
  /// `packed` [rows, cols/2] (low nibble = even column), `scales` [rows, cols/16] E4M3 bytes.
  /// Same bytes as quench::nvfp4_quantize. Requires cols % 16 == 0.
  QuantError quantize_nvfp4(int slot, float global_scale, std::span<uint8_t> packed, std::span<uint8_t> scales);

  /// FP8 E4M3 per-tensor quantization of slot `slot`: out[i] = e4m3_RNE(fl32(w[i] / scale)),
  /// torch's non-saturating cast; same bytes as quench::fp8_quantize. Requires scale > 0.
  QuantError quantize_fp8(int slot, float scale, std::span<uint8_t> out);

  /// Info of a loaded slot (throws InvalidArgument for a slot never uploaded).
  const DeviceWeightInfo& info(int slot) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Running activation amax for calibration on the GPU (ModelOpt's `max` calibrator, spec §9: a
/// running max of max|x| over every batch): *amax_bits = max(*amax_bits, bits(max |x[i]|)) over the
/// n elements of the device array `x` (BF16, F16 or F32; NaN ignored). `amax_bits` is a device
/// uint32 holding the fp32 bits of a non-negative float (start it at 0 = +0.0f); non-negative
/// floats order like their bits, so the update is one atomicMax and exact in any order. Enqueued
/// on `stream`, never synchronises; for a forward pass hook (one slot per Linear input or K/V).
/// Throws InvalidArgument for another dtype, CudaError on a failed launch.
void accumulate_amax(const void* x, DType dtype, int64_t n, uint32_t* amax_bits, cudaStream_t stream);

}  // namespace quench::cuda
