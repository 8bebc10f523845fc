// quench/io/dequant.cpp: NVFP4 and FP8 weight dequantization to fp32.
//
// Order of operations (../shared/reference/nvfp4-modelopt-format.md §4, as ModelOpt's
// NVFP4QTensor.dequantize and vLLM's emulation path do it): t = fl32(e4m3(scale) * g), then
// w = fl32(e2m1(code) * t). Packing §1.4: element 2j in the low nibble of byte j.
#include "io/dequant.h"

#include <string>

#include "core/error.h"
#include "core/numeric.h"

namespace quench {

namespace {

// Validates the NVFP4 pair of tensors; returns `in` (unpacked input features).
int64_t check_nvfp4(const TensorView& weight, const TensorView& weight_scale) {
  if (weight.dtype != DType::kU8 || weight.shape.size() != 2) {
    throw FormatError("tensor '" + weight.name + "': NVFP4 weight must be U8 [out, in/2], found " +
                      std::string(dtype_name(weight.dtype)) + " " + weight.shape_str());
  }
  const int64_t out = weight.shape[0];
  const int64_t in = weight.shape[1] * 2;
  if (in % 16 != 0) {
    throw FormatError("tensor '" + weight.name + "': NVFP4 input width " + std::to_string(in) +
                      " is not a multiple of 16");
  }
  weight_scale.expect(DType::kF8E4M3, {out, in / 16});
  if (weight.nbytes < static_cast<std::size_t>(out * in / 2) || weight_scale.nbytes < static_cast<std::size_t>(out * in / 16)) {
    throw FormatError("tensor '" + weight.name + "': data shorter than its shape");
  }
  return in;
}

}  // namespace

void dequant_nvfp4_row(const TensorView& weight, const TensorView& weight_scale, float weight_scale_2, int64_t row,
                       float* out) {
  const int64_t in = check_nvfp4(weight, weight_scale);
  if (row < 0 || row >= weight.shape[0]) {
    throw InvalidArgument("tensor '" + weight.name + "': row " + std::to_string(row) + " out of range [0, " +
                          std::to_string(weight.shape[0]) + ")");
  }
  const auto* codes = reinterpret_cast<const uint8_t*>(weight.data) + row * (in / 2);
  const auto* scales = reinterpret_cast<const uint8_t*>(weight_scale.data) + row * (in / 16);
  for (int64_t b = 0; b < in / 16; ++b) {
    const float t = fp8e4m3_to_f32(scales[b]) * weight_scale_2;  // fl32(scale * g)
    for (int64_t j = 0; j < 8; ++j) {
      const uint8_t byte = codes[b * 8 + j];
      out[b * 16 + 2 * j] = e2m1_to_f32(byte & 0x0f) * t;
      out[b * 16 + 2 * j + 1] = e2m1_to_f32(byte >> 4) * t;
    }
  }
}

std::vector<float> dequant_nvfp4(const TensorView& weight, const TensorView& weight_scale, float weight_scale_2) {
  const int64_t in = check_nvfp4(weight, weight_scale);
  const int64_t rows = weight.shape[0];
  std::vector<float> out(static_cast<std::size_t>(rows * in));
  for (int64_t r = 0; r < rows; ++r) dequant_nvfp4_row(weight, weight_scale, weight_scale_2, r, out.data() + r * in);
  return out;
}

std::vector<float> dequant_fp8(const TensorView& weight, float weight_scale) {
  if (weight.dtype != DType::kF8E4M3) {
    throw FormatError("tensor '" + weight.name + "': FP8 weight must be F8_E4M3, found " +
                      std::string(dtype_name(weight.dtype)));
  }
  const int64_t n = weight.numel();
  if (weight.nbytes < static_cast<std::size_t>(n)) {
    throw FormatError("tensor '" + weight.name + "': data shorter than its shape " + weight.shape_str());
  }
  const auto* codes = reinterpret_cast<const uint8_t*>(weight.data);
  std::vector<float> out(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[static_cast<std::size_t>(i)] = fp8e4m3_to_f32(codes[i]) * weight_scale;
  return out;
}

}  // namespace quench
