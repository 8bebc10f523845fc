// quench/core/numeric.cpp: bit-exact scalar conversions (bf16, f16, FP8 E4M3FN, FP4 E2M1).
//
// Sources: IEEE 754 binary16/bfloat16 with round-to-nearest-even (what PyTorch's casts do);
// E4M3FN encode follows the bit algorithm of c10's fp8e4m3fn_from_fp32_value, i.e. RNE without
// saturation (../shared/reference/nvfp4-modelopt-format.md §1.2); E2M1 per §1.1 and §1.3.
#include "core/numeric.h"

#include <bit>
#include <cmath>
#include <cstring>

namespace quench {

namespace {

uint32_t f32_bits(float v) { return std::bit_cast<uint32_t>(v); }
float bits_f32(uint32_t b) { return std::bit_cast<float>(b); }

// E2M1 magnitudes by 3-bit code (§1.1).
constexpr float kE2M1[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};

}  // namespace

float bf16_to_f32(uint16_t bits) { return bits_f32(static_cast<uint32_t>(bits) << 16); }

uint16_t f32_to_bf16(float v) {
  uint32_t b = f32_bits(v);
  if (std::isnan(v)) {
    // Keep sign and the top payload bits; force the quiet bit so the result stays NaN.
    return static_cast<uint16_t>((b >> 16) | 0x0040u);
  }
  // RNE: add 0x7fff plus the lowest kept bit, then truncate. Overflow carries into the exponent,
  // which correctly rounds values past the bf16 max to infinity.
  uint32_t lsb = (b >> 16) & 1u;
  b += 0x7fffu + lsb;
  return static_cast<uint16_t>(b >> 16);
}

float round_bf16(float v) { return bf16_to_f32(f32_to_bf16(v)); }

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) {  // inf / NaN
    return bits_f32(sign | 0x7f800000u | (mant << 13));
  }
  if (exp == 0) {
    if (mant == 0) return bits_f32(sign);
    // Subnormal: value = mant * 2^-24, exact in fp32.
    float mag = static_cast<float>(mant) * 0x1p-24f;
    return sign ? -mag : mag;
  }
  return bits_f32(sign | ((exp + 127 - 15) << 23) | (mant << 13));
}

uint16_t f32_to_f16(float v) {
  const uint32_t b = f32_bits(v);
  const uint16_t sign = static_cast<uint16_t>((b >> 16) & 0x8000u);
  const uint32_t abs = b & 0x7fffffffu;
  if (abs > 0x7f800000u) {  // NaN: keep it quiet and non-zero
    return static_cast<uint16_t>(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
  }
  if (abs >= 0x477ff000u) {  // >= 65520 (half-way above the max 65504) rounds to inf
    return static_cast<uint16_t>(sign | 0x7c00u);
  }
  if (abs < 0x38800000u) {  // below 2^-14: result is subnormal (or zero)
    // Value in units of 2^-24, rounded to nearest even. Scaling by 2^24 is exact in fp32 and
    // nearbyint uses the default round-to-nearest-even mode.
    float mag = bits_f32(abs) * 0x1p24f;
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(std::nearbyint(mag)));
  }
  // Normal: rebias exponent, RNE on the 13 dropped mantissa bits (carry may bump the exponent).
  uint32_t h = ((abs >> 13) - ((127u - 15u) << 10));
  const uint32_t rem = abs & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

float fp8e4m3_to_f32(uint8_t bits) {
  const bool neg = bits & 0x80u;
  const int exp = (bits >> 3) & 0xf;
  const int mant = bits & 0x7;
  float mag;
  if (exp == 0xf && mant == 0x7) {
    mag = std::nanf("");
  } else if (exp == 0) {
    mag = static_cast<float>(mant) * 0x1p-9f;  // subnormal: m/8 * 2^-6
  } else {
    mag = std::ldexp(1.0f + static_cast<float>(mant) / 8.0f, exp - 7);
  }
  return neg ? -mag : mag;
}

uint8_t f32_to_fp8e4m3(float v, bool saturate) {
  uint32_t f = f32_bits(v);
  const uint32_t sign = f & 0x80000000u;
  f ^= sign;
  if (saturate && f <= 0x7f800000u && f > f32_bits(448.0f)) {
    f = f32_bits(448.0f);  // __NV_SATFINITE: finite overflow and inf clamp to the max
  }
  uint8_t result;
  if (f >= (1087u << 20)) {
    // >= 480 (the rounding point past 448 when the NaN code is excluded), inf or NaN -> NaN.
    result = 0x7f;
  } else if (f < (121u << 23)) {
    // Below 2^-6 (smallest normal): add 2^(141-127) = 2^14 so the fp32 adder does the RNE into the
    // subnormal grid (ulp 2^-9 at that magnitude), then read the code from the low bits.
    const uint32_t denorm_mask = 141u << 23;
    uint32_t r = f32_bits(bits_f32(f) + bits_f32(denorm_mask));
    result = static_cast<uint8_t>(r - denorm_mask);
  } else {
    // Normal: rebias exponent (127 -> 7) and round the 20 dropped mantissa bits to nearest even.
    const uint32_t mant_odd = (f >> 20) & 1u;
    f += (static_cast<uint32_t>(7 - 127) << 23) + 0x7ffffu + mant_odd;
    result = static_cast<uint8_t>(f >> 20);
  }
  return static_cast<uint8_t>(result | (sign >> 24));
}

float e2m1_to_f32(uint8_t nibble) {
  const float mag = kE2M1[nibble & 0x7u];
  return (nibble & 0x8u) ? -mag : mag;
}

uint8_t f32_to_e2m1(float v) {
  // §1.3: thresholds with ties to the even code; NaN is treated like +overflow (code 7), which is
  // what searchsorted over the bounds yields for a value comparing false to every bound.
  const uint8_t sign = (v < 0.0f) ? 0x8u : 0x0u;
  const float a = std::fabs(v);
  uint8_t code;
  if (std::isnan(v)) code = 7;
  else if (a <= 0.25f) code = 0;
  else if (a < 0.75f) code = 1;
  else if (a <= 1.25f) code = 2;
  else if (a < 1.75f) code = 3;
  else if (a <= 2.5f) code = 4;
  else if (a < 3.5f) code = 5;
  else if (a <= 5.0f) code = 6;
  else code = 7;
  return static_cast<uint8_t>(sign | code);
}

}  // namespace quench
