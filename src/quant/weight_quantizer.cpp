// quench/quant/weight_quantizer.cpp: device names and the factory of weight_quantizer.h.
#include "quant/weight_quantizer.h"

#include <fmt/format.h>

#include "core/error.h"  // InvalidArgument

#ifdef QUENCH_HAVE_CUDA
#include "backend/cuda/cuda_utils.h"  // cuda_device_available
#endif

namespace quench {

#ifdef QUENCH_HAVE_CUDA
std::unique_ptr<WeightQuantizer> make_cuda_weight_quantizer();  // weight_quantizer_cuda.cpp
#endif

std::string_view quant_device_name(QuantDevice d) {
  switch (d) {
    case QuantDevice::kAuto: return "auto";
    case QuantDevice::kCpu: return "cpu";
    case QuantDevice::kCuda: return "cuda";
  }
  return "?";
}

QuantDevice parse_quant_device(std::string_view s) {
  if (s == "auto") return QuantDevice::kAuto;
  if (s == "cpu") return QuantDevice::kCpu;
  if (s == "cuda") return QuantDevice::kCuda;
  throw InvalidArgument(fmt::format("--device '{}': expected auto, cpu or cuda", s));
}

bool cuda_quantizer_available() {
#ifdef QUENCH_HAVE_CUDA
  return cuda::cuda_device_available();
#else
  return false;
#endif
}

std::unique_ptr<WeightQuantizer> make_weight_quantizer(QuantDevice d) {
  if (d == QuantDevice::kAuto) d = cuda_quantizer_available() ? QuantDevice::kCuda : QuantDevice::kCpu;
  if (d == QuantDevice::kCpu) return make_cpu_weight_quantizer();
#ifdef QUENCH_HAVE_CUDA
  if (!cuda::cuda_device_available())
    throw InvalidArgument("--device cuda: no CUDA device is available (use --device cpu or auto)");
  return make_cuda_weight_quantizer();
#else
  throw InvalidArgument("--device cuda: this quench was built without the CUDA backend (use --device cpu or auto)");
#endif
}

}  // namespace quench
