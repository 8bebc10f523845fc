// quench/core/numeric.h: scalar conversions between fp32 and the storage formats quench reads and
// writes. Bit-exact with ../shared/reference/nvfp4-modelopt-format.md §1 (E2M1 table and
// ties-to-even-code rounding, E4M3FN) and with PyTorch's bf16 / f16 casts (round to nearest even).
#pragma once

#include <cstdint>

namespace quench {

/// bf16 bits -> fp32 (exact).
float bf16_to_f32(uint16_t bits);
/// fp32 -> bf16 bits, round to nearest even; NaN stays NaN (quiet).
uint16_t f32_to_bf16(float v);
/// Rounds an fp32 to the nearest bf16 value and returns it as fp32 ("a bf16 op").
float round_bf16(float v);
/// IEEE half bits -> fp32 (exact), and back (RNE).
float f16_to_f32(uint16_t bits);
uint16_t f32_to_f16(float v);
/// FP8 E4M3FN byte -> fp32 (exact; 0x7f/0xff -> NaN).
float fp8e4m3_to_f32(uint8_t bits);
/// fp32 -> FP8 E4M3FN, round to nearest even. saturate=false reproduces torch's cast (values
/// past 464 become NaN 0x7f); saturate=true clamps to +-448 as CUDA's __NV_SATFINITE does.
uint8_t f32_to_fp8e4m3(float v, bool saturate);
/// One E2M1 nibble (low 4 bits; bit3 = sign) -> fp32: {0,0.5,1,1.5,2,3,4,6} x sign.
float e2m1_to_f32(uint8_t nibble);
/// fp32 -> E2M1 nibble with ModelOpt's rounding (ties to the even code, saturate at 6, negative
/// values that round to zero keep the sign bit: 0x8).
uint8_t f32_to_e2m1(float v);

}  // namespace quench
