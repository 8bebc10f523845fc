// quench/io/dequant.h: bit-exact dequantization of stored Linear weights to fp32
// (../shared/reference/nvfp4-modelopt-format.md §3: w = e2m1(code) * fp32(e4m3 scale) * weight_scale_2).
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace quench {

/// Dequantizes row `row` of an NVFP4 weight ([out, in/2] U8 codes, [out, in/16] E4M3 scales,
/// fp32 global scale) into out[0..in). Throws FormatError on shape mismatch.
void dequant_nvfp4_row(const TensorView& weight, const TensorView& weight_scale, float weight_scale_2,
                       int64_t row, float* out);
/// Whole tensor, [out, in] fp32 row-major.
std::vector<float> dequant_nvfp4(const TensorView& weight, const TensorView& weight_scale,
                                 float weight_scale_2);
/// FP8 E4M3 per-tensor: w = fp32(e4m3) * weight_scale.
std::vector<float> dequant_fp8(const TensorView& weight, float weight_scale);

}  // namespace quench
