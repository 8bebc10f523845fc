// quench/quant/fp8.h: FP8 E4M3 per-tensor weight quantization as ModelOpt's FP8_DEFAULT_CFG
// exports it (../shared/reference/nvfp4-modelopt-format.md §7.1):
//   weight_scale = amax_W / 448 (fp32), code = e4m3_RNE(fl32(w / weight_scale)).
// ModelOpt's bf16-intermediate quotient (§7.1 "Quirk") is deliberately not reproduced: the spec
// advises one fp32 rounding, which is a valid checkpoint whose codes differ by at most one step.
#pragma once

#include <cstdint>
#include <span>

namespace quench {

/// FP8 per-tensor scale (`weight_scale`, `input_scale`, `k_scale`, `v_scale`): fl32(amax / 448).
/// amax == 0 (all-zero tensor) gives 1.0 so that dequantization stays 0 * 1 = 0.
float fp8_scale(float amax);

/// Quantizes `w` with `scale` (from fp8_scale): out[i] = e4m3(fl32(w[i] / scale)), torch's
/// non-saturating RNE cast. Throws InvalidArgument if out.size() != w.size() or scale <= 0.
void fp8_quantize(std::span<const float> w, float scale, std::span<uint8_t> out);

}  // namespace quench
