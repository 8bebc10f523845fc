// quench/quant/weight_quantizer.h: where `quench quantize` quantizes weights (CPU or CUDA GPU).
// Both devices write the same bytes (NVFP4: quant/nvfp4.h; FP8: quant/fp8.h; the GPU kernels are
// in backend/cuda/quantize_kernels.cu and tests/cuda/quantize_gpu_test.cpp compares them).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"  // TensorView

namespace quench {

/// `quench quantize --device`: auto = cuda when this build has CUDA and a device is present.
enum class QuantDevice { kAuto, kCpu, kCuda };

/// "auto", "cpu", "cuda".
std::string_view quant_device_name(QuantDevice d);
/// Parses "auto" / "cpu" / "cuda"; throws InvalidArgument naming `--device` otherwise.
QuantDevice parse_quant_device(std::string_view s);
/// True when this build has the CUDA backend and a CUDA device is usable.
bool cuda_quantizer_available();

/// Quantizes the members of one fused group (q/k/v, gate/up, or a single Linear) at a time:
/// load_group, then quantize_* per member with the group's shared scale.
class WeightQuantizer {
 public:
  virtual ~WeightQuantizer() = default;
  /// kCpu or kCuda.
  virtual QuantDevice device() const = 0;
  /// e.g. "cpu (16 threads)" or "cuda: NVIDIA H200 (sm_90, 132 SMs, 139.8 GiB)".
  virtual std::string description() const = 0;
  /// Reads the members (2-D [out, in], BF16 / F16 / F32, any host memory such as a checkpoint
  /// mmap), drops their mapped pages from RSS (quant/memory.h) and returns each member's exact
  /// max |w| (NaN ignored). Replaces the previous group. Throws InvalidArgument on another dtype
  /// or rank, CudaError on a failed CUDA call.
  virtual std::vector<float> load_group(const std::vector<const TensorView*>& members) = 0;
  /// NVFP4 of member `i` with global scale `g` (quant/nvfp4.h nvfp4_quantize): packed
  /// [out, in/2], scales [out, in/16]. Returns ||W - dequant(Q(W))|| / ||W|| (0 for W = 0).
  virtual double quantize_nvfp4(std::size_t i, float g, std::span<uint8_t> packed, std::span<uint8_t> scales) = 0;
  /// FP8 E4M3 of member `i` with per-tensor `scale` (quant/fp8.h fp8_quantize): out [out, in].
  /// Returns the relative L2 error as above.
  virtual double quantize_fp8(std::size_t i, float scale, std::span<uint8_t> out) = 0;
};

/// The quantizer for `d` (kAuto resolved by cuda_quantizer_available()). Throws InvalidArgument
/// for kCuda when this build has no CUDA backend or no device is present.
std::unique_ptr<WeightQuantizer> make_weight_quantizer(QuantDevice d);

/// The CPU (OpenMP) quantizer, always available.
std::unique_ptr<WeightQuantizer> make_cpu_weight_quantizer();

}  // namespace quench
