// quench/quant/weight_quantizer_cuda.cpp: the CUDA WeightQuantizer (backend/cuda/quantize_gpu.h),
// compiled only when the build has the CUDA backend. Each member of a fused group goes to its own
// device slot through pinned staging (no host copy of the weights); results come back to the
// caller's buffers. Same bytes as the CPU quantizer.
#ifdef QUENCH_HAVE_CUDA

#include <fmt/format.h>

#include "backend/cuda/quantize_gpu.h"  // GpuWeightQuantizer
#include "core/error.h"                 // InvalidArgument
#include "quant/memory.h"               // release_mapped_pages
#include "quant/weight_quantizer.h"

namespace quench {

namespace {

class CudaWeightQuantizer final : public WeightQuantizer {
 public:
  QuantDevice device() const override { return QuantDevice::kCuda; }
  std::string description() const override { return "cuda: " + gpu_.device_description(); }

  std::vector<float> load_group(const std::vector<const TensorView*>& members) override {
    members_ = 0;
    std::vector<float> amax;
    for (std::size_t i = 0; i < members.size(); ++i) {
      const TensorView* t = members[i];
      if (t->shape.size() != 2 || (t->dtype != DType::kBF16 && t->dtype != DType::kF16 && t->dtype != DType::kF32))
        throw InvalidArgument(fmt::format("weight quantizer: tensor '{}' is {} {}; expected a 2-D BF16, F16 or F32 "
                                          "weight", t->name, dtype_name(t->dtype), t->shape_str()));
      const cuda::DeviceWeightInfo info =
          gpu_.upload(static_cast<int>(i), t->data, t->dtype, t->shape[0], t->shape[1]);
      release_mapped_pages(t->data, t->nbytes);
      amax.push_back(info.amax);
    }
    members_ = members.size();
    return amax;
  }

  double quantize_nvfp4(std::size_t i, float g, std::span<uint8_t> packed, std::span<uint8_t> scales) override {
    check(i);
    return gpu_.quantize_nvfp4(static_cast<int>(i), g, packed, scales).rel_l2;
  }

  double quantize_fp8(std::size_t i, float scale, std::span<uint8_t> out) override {
    check(i);
    return gpu_.quantize_fp8(static_cast<int>(i), scale, out).rel_l2;
  }

 private:
  void check(std::size_t i) const {
    if (i >= members_)
      throw InvalidArgument(fmt::format("weight quantizer: member {} of a group of {}", i, members_));
  }
  cuda::GpuWeightQuantizer gpu_;
  std::size_t members_ = 0;
};

}  // namespace

std::unique_ptr<WeightQuantizer> make_cuda_weight_quantizer() { return std::make_unique<CudaWeightQuantizer>(); }

}  // namespace quench

#endif  // QUENCH_HAVE_CUDA
