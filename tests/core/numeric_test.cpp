// Tests for core/numeric against independent references: brute-force nearest-value search with
// ties-to-even over each format's decoded value table, the compiler's _Float16 conversions, the
// E4M3/E2M1 definitions and the torch measurements of nvfp4-modelopt-format.md §1.2-§1.3.
#include "core/numeric.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace quench {
namespace {

uint32_t bits(float v) { return std::bit_cast<uint32_t>(v); }

// ---- bf16 -------------------------------------------------------------------------------------

// Independent RNE oracle: the two bf16 neighbours of v (truncation and the next code up) compared
// by exact distance in double; ties pick the even code.
uint16_t bf16_oracle(float v) {
  const uint16_t lo = static_cast<uint16_t>(bits(v) >> 16);
  const uint16_t hi = static_cast<uint16_t>(lo + 1);
  const double dlo = std::fabs(static_cast<double>(v) - bf16_to_f32(lo));
  const double dhi = std::fabs(static_cast<double>(v) - bf16_to_f32(hi));
  if (dlo < dhi) return lo;
  if (dhi < dlo) return hi;
  return (lo & 1) ? hi : lo;
}

TEST(Bf16, DecodeIsUpperHalf) {
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  EXPECT_EQ(bf16_to_f32(0xc000), -2.0f);
  EXPECT_EQ(bf16_to_f32(0x7f80), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(bf16_to_f32(0x7fc0)));
}

TEST(Bf16, RoundToNearestEvenMatchesOracle) {
  // Ties: 1 + 2^-8 lies halfway between 1.0 (even) and 1 + 2^-7 (odd) -> 1.0;
  // 1 + 3*2^-8 lies between 1 + 2^-7 (odd) and 1 + 2^-6 (even) -> 1 + 2^-6.
  EXPECT_EQ(f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);
  EXPECT_EQ(round_bf16(3.14159265f), 3.140625f);
  // Overflow past the max finite bf16 rounds to inf.
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);
  std::mt19937 rng(1234);
  for (int i = 0; i < 200000; ++i) {
    uint32_t b = rng();
    float v = std::bit_cast<float>(b);
    if (std::isnan(v) || std::isinf(v)) continue;
    if ((b & 0x7fffffffu) >= 0x7f7f8000u) continue;  // oracle's "next code" would be inf/NaN
    ASSERT_EQ(f32_to_bf16(v), bf16_oracle(v)) << std::hexfloat << v;
  }
}

TEST(Bf16, NanStaysNan) {
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
  // A signalling NaN whose payload lives only in the low 16 bits must not become inf.
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::bit_cast<float>(0x7f800001u)))));
}

// ---- f16 --------------------------------------------------------------------------------------

TEST(F16, AgreesWithCompilerFloat16) {
#if defined(__FLT16_MAX__)
  // Decode: every one of the 65536 codes.
  for (uint32_t h = 0; h < 65536; ++h) {
    const _Float16 ref = std::bit_cast<_Float16>(static_cast<uint16_t>(h));
    const float r = static_cast<float>(ref);
    const float got = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(r)) {
      ASSERT_TRUE(std::isnan(got)) << h;
    } else {
      ASSERT_EQ(bits(got), bits(r)) << h;
    }
  }
  // Encode: random fp32 bit patterns and the neighbourhood of every half-way point.
  std::mt19937 rng(99);
  auto check = [](float v) {
    const uint16_t ref = std::bit_cast<uint16_t>(static_cast<_Float16>(v));
    const uint16_t got = f32_to_f16(v);
    if (std::isnan(v)) {
      ASSERT_TRUE(std::isnan(f16_to_f32(got)));
    } else {
      ASSERT_EQ(got, ref) << std::hexfloat << v;
    }
  };
  for (int i = 0; i < 300000; ++i) check(std::bit_cast<float>(static_cast<uint32_t>(rng())));
  for (uint32_t h = 0; h < 0x7c00; ++h) {
    const float a = f16_to_f32(static_cast<uint16_t>(h));
    const float b = f16_to_f32(static_cast<uint16_t>(h + 1));
    const float mid = static_cast<float>((static_cast<double>(a) + b) / 2);
    check(mid);
    check(-mid);
    check(std::nextafter(mid, 0.0f));
    check(std::nextafter(mid, 1e9f));
  }
#else
  GTEST_SKIP() << "compiler has no _Float16 to compare against";
#endif
}

// ---- FP8 E4M3FN -------------------------------------------------------------------------------

// The E4M3FN definition (§1.2): sign, 4-bit exponent (bias 7), 3-bit mantissa, exponent 0 is
// subnormal m/8 * 2^-6, 0x7f / 0xff NaN, no infinities. Computed in double with pow().
double e4m3_formula(int code) {
  const int s = code >> 7, e = (code >> 3) & 15, m = code & 7;
  if (e == 15 && m == 7) return std::nan("");
  const double mag = e == 0 ? (m / 8.0) * std::pow(2.0, -6) : (1.0 + m / 8.0) * std::pow(2.0, e - 7);
  return s ? -mag : mag;
}

TEST(Fp8E4M3, DecodeAll256CodesMatchFormula) {
  for (int c = 0; c < 256; ++c) {
    const double ref = e4m3_formula(c);
    const float got = fp8e4m3_to_f32(static_cast<uint8_t>(c));
    if (std::isnan(ref)) {
      EXPECT_TRUE(std::isnan(got)) << c;
    } else {
      EXPECT_EQ(static_cast<double>(got), ref) << "code 0x" << std::hex << c;
      EXPECT_EQ(std::signbit(got), c >= 128) << c;
    }
  }
  // Landmarks named in §1.2 and §10.
  EXPECT_EQ(fp8e4m3_to_f32(0x7e), 448.0f);
  EXPECT_EQ(fp8e4m3_to_f32(0x08), 0x1p-6f);
  EXPECT_EQ(fp8e4m3_to_f32(0x01), 0x1p-9f);
  EXPECT_EQ(fp8e4m3_to_f32(0x61), 36.0f);
  EXPECT_EQ(fp8e4m3_to_f32(0x51), 9.0f);
}

TEST(Fp8E4M3, TorchCastCasesFromSpec) {
  // §1.2, measured with torch 2.11: RNE without saturation.
  EXPECT_EQ(f32_to_fp8e4m3(460.0f, false), 0x7e);   // -> 448
  EXPECT_EQ(f32_to_fp8e4m3(464.0f, false), 0x7e);   // tie -> even (448)
  EXPECT_EQ(f32_to_fp8e4m3(470.0f, false), 0x7f);   // NaN
  EXPECT_EQ(f32_to_fp8e4m3(480.0f, false), 0x7f);
  EXPECT_EQ(f32_to_fp8e4m3(1000.0f, false), 0x7f);
  EXPECT_EQ(f32_to_fp8e4m3(0x1p-10f, false), 0x00);         // tie between 0 and 2^-9 -> 0
  EXPECT_EQ(f32_to_fp8e4m3(1.5f * 0x1p-10f, false), 0x01);  // -> 2^-9
  EXPECT_EQ(f32_to_fp8e4m3(-1000.0f, false), 0xff);
  EXPECT_EQ(f32_to_fp8e4m3(std::numeric_limits<float>::infinity(), false), 0x7f);
  // Worked example (§10): s = 34.6666679 -> 36 = 0x61; 447.99997 -> 448; 8.541667 -> 9 = 0x51.
  EXPECT_EQ(f32_to_fp8e4m3(34.6666679f, false), 0x61);
  EXPECT_EQ(f32_to_fp8e4m3(447.99997f, false), 0x7e);
  EXPECT_EQ(f32_to_fp8e4m3(8.5416670f, false), 0x51);
}

TEST(Fp8E4M3, SaturatingCastClampsToMax) {
  EXPECT_EQ(f32_to_fp8e4m3(470.0f, true), 0x7e);
  EXPECT_EQ(f32_to_fp8e4m3(1e30f, true), 0x7e);
  EXPECT_EQ(f32_to_fp8e4m3(-1e30f, true), 0xfe);
  EXPECT_EQ(f32_to_fp8e4m3(std::numeric_limits<float>::infinity(), true), 0x7e);
  EXPECT_EQ(f32_to_fp8e4m3(std::nanf(""), true) & 0x7f, 0x7f);
  EXPECT_EQ(f32_to_fp8e4m3(3.0f, true), f32_to_fp8e4m3(3.0f, false));
}

// Brute force over the 127 non-negative finite values; ties pick the even code; beyond 464 the
// non-saturating cast gives NaN (the next grid point, 480, is the NaN code).
uint8_t e4m3_oracle(float v) {
  const double a = std::fabs(static_cast<double>(v));
  int best = 0;
  double bestd = std::numeric_limits<double>::infinity();
  for (int c = 0; c <= 0x7e; ++c) {
    const double d = std::fabs(a - e4m3_formula(c));
    if (d < bestd || (d == bestd && (c & 1) == 0)) {
      best = c;
      bestd = d;
    }
  }
  if (a > 464.0) best = 0x7f;
  return static_cast<uint8_t>(best | (std::signbit(v) ? 0x80 : 0));
}

TEST(Fp8E4M3, EncodeMatchesBruteForceOracle) {
  // Every code round-trips.
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7f) == 0x7f) continue;
    EXPECT_EQ(f32_to_fp8e4m3(fp8e4m3_to_f32(static_cast<uint8_t>(c)), false), c) << c;
  }
  // Exact midpoints between neighbours and their fp32 neighbours.
  for (int c = 0; c < 0x7e; ++c) {
    const float mid = static_cast<float>((e4m3_formula(c) + e4m3_formula(c + 1)) / 2);
    for (float v : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f)}) {
      EXPECT_EQ(f32_to_fp8e4m3(v, false), e4m3_oracle(v)) << std::hexfloat << v;
      EXPECT_EQ(f32_to_fp8e4m3(-v, false), e4m3_oracle(-v)) << std::hexfloat << -v;
    }
  }
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> logmag(-14.0f, 9.5f);
  for (int i = 0; i < 100000; ++i) {
    const float v = std::exp2(logmag(rng)) * ((rng() & 1) ? 1.0f : -1.0f);
    ASSERT_EQ(f32_to_fp8e4m3(v, false), e4m3_oracle(v)) << std::hexfloat << v;
  }
}

// ---- FP4 E2M1 ---------------------------------------------------------------------------------

TEST(E2M1, DecodeTable) {
  const float lut[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};  // §1.1
  for (int n = 0; n < 16; ++n) {
    const float expect = (n & 8) ? -lut[n & 7] : lut[n & 7];
    EXPECT_EQ(e2m1_to_f32(static_cast<uint8_t>(n)), expect) << n;
  }
  EXPECT_EQ(e2m1_to_f32(0x8), 0.0f);  // "-0" decodes to zero
  EXPECT_EQ(e2m1_to_f32(0xf7), 6.0f);  // only the low nibble (0x7) is read
}

TEST(E2M1, RoundingTableEveryBoundaryAndTie) {
  struct Case {
    float x;
    uint8_t code;
  };
  // §1.3 table and its ties (ties to the even code), plus values just either side of each bound.
  const Case cases[] = {
      {0.0f, 0x0},  {0.25f, 0x0}, {0.2500001f, 0x1}, {0.7499999f, 0x1}, {0.75f, 0x2}, {1.0f, 0x2},
      {1.25f, 0x2}, {1.2500001f, 0x3}, {1.7499999f, 0x3}, {1.75f, 0x4}, {2.5f, 0x4}, {2.5000002f, 0x5},
      {3.4999998f, 0x5}, {3.5f, 0x6}, {5.0f, 0x6}, {5.0000005f, 0x7}, {6.0f, 0x7}, {1e30f, 0x7},
      {0.5f, 0x1}, {1.5f, 0x3}, {3.0f, 0x5}, {4.0f, 0x6},
      {-0.25f, 0x8}, {-0.75f, 0xa}, {-1.25f, 0xa}, {-1.75f, 0xc}, {-2.5f, 0xc}, {-3.5f, 0xe},
      {-5.0f, 0xe}, {-7.0f, 0xf}, {-0.01f, 0x8}, {-0.0f, 0x0},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(f32_to_e2m1(c.x), c.code) << c.x;
  }
  EXPECT_EQ(f32_to_e2m1(std::numeric_limits<float>::infinity()), 0x7);
  EXPECT_EQ(f32_to_e2m1(-std::numeric_limits<float>::infinity()), 0xf);
}

TEST(E2M1, EncodeMatchesNearestEvenCodeOracle) {
  const double lut[8] = {0, 0.5, 1, 1.5, 2, 3, 4, 6};
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> dist(-8.0f, 8.0f);
  for (int i = 0; i < 200000; ++i) {
    const float x = i < 2048 ? static_cast<float>(i - 1024) / 128.0f : dist(rng);  // grid hits every tie
    const double a = std::fabs(static_cast<double>(x));
    int best = 0;
    for (int c = 1; c < 8; ++c) {
      const double d = std::fabs(a - lut[c]), db = std::fabs(a - lut[best]);
      if (d < db || (d == db && (c & 1) == 0)) best = c;
    }
    const uint8_t expect = static_cast<uint8_t>(best | (x < 0 ? 8 : 0));
    ASSERT_EQ(f32_to_e2m1(x), expect) << x;
  }
}

}  // namespace
}  // namespace quench
