// quench/quant/nvfp4.cpp: NVFP4 quantization (see nvfp4.h for the formulas and their source).
#include "quant/nvfp4.h"

#include <array>
#include <cmath>

#include <fmt/format.h>

#include "core/error.h"    // InvalidArgument
#include "core/numeric.h"  // f32_to_fp8e4m3, fp8e4m3_to_f32, f32_to_e2m1, e2m1_to_f32

namespace quench {

namespace {

/// E2M1 code of |x| (no sign), ModelOpt's `_cast_fp4` form: the number of bounds
/// {0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5} below |x|, plus one when |x| equals 0.75, 1.75 or 3.5
/// (ties go to the even code); NaN gives 7 as searchsorted does. Branch-free so the block loop
/// vectorizes; tests/quant/nvfp4_test.cpp checks it against core/numeric.h f32_to_e2m1.
inline uint8_t e2m1_code(float x) {
  const float a = std::fabs(x);
  const int c = (a > 0.25f) + (a >= 0.75f) + (a > 1.25f) + (a >= 1.75f) + (a > 2.5f) + (a >= 3.5f) + (a > 5.0f);
  const int code = (a != a) ? 7 : c;
  return static_cast<uint8_t>(code | ((x < 0.0f) ? 8 : 0));
}

/// fp32 value of every E4M3 byte (decode table; built from core's exact decoder).
const float* e4m3_table() {
  static const auto table = [] {
    std::array<float, 256> t{};
    for (int i = 0; i < 256; ++i) t[i] = fp8e4m3_to_f32(static_cast<uint8_t>(i));
    return t;
  }();
  return table.data();
}

}  // namespace

uint8_t nvfp4_e2m1_code(float x) { return e2m1_code(x); }

float abs_max(std::span<const float> values) {
  float m = 0.0f;
  const auto n = static_cast<int64_t>(values.size());
  const float* v = values.data();
#pragma omp parallel for reduction(max : m) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float a = std::fabs(v[i]);
    m = a > m ? a : m;  // NaN compares false and is skipped
  }
  return m;
}

float nvfp4_global_scale(float amax) {
  // volatile-free exact fp32 division: amax / (6 * 448); 2688 is exact in fp32.
  return amax / (kE2M1Max * kE4M3Max);
}

uint8_t nvfp4_block_scale(float block_amax, float global_scale) {
  if (!(global_scale > 0.0f)) return f32_to_fp8e4m3(1.0f, false);
  const float denom = kE2M1Max * global_scale;  // fl32(6 * g)
  float s = block_amax / denom;                  // fl32(amax_b / fl32(6 g))
  if (s == 0.0f) s = 1.0f;                       // all-zero block
  const float kMin = std::ldexp(1.0f, -9);       // smallest E4M3 subnormal
  if (s < kMin) s = kMin;
  if (s > kE4M3Max) s = kE4M3Max;
  return f32_to_fp8e4m3(s, false);
}

static void check_sizes(int64_t rows, int64_t cols, std::size_t nw, std::size_t npacked,
                        std::size_t nscales) {
  if (rows < 0 || cols <= 0 || cols % kNvfp4BlockSize != 0)
    throw InvalidArgument(fmt::format(
        "nvfp4_quantize: shape [{}, {}]: the input dimension must be a positive multiple of {}",
        rows, cols, kNvfp4BlockSize));
  const auto n = static_cast<std::size_t>(rows * cols);
  if (nw != n || npacked != n / 2 || nscales != n / kNvfp4BlockSize)
    throw InvalidArgument(fmt::format(
        "nvfp4_quantize: shape [{}, {}] needs {} weights, {} packed bytes and {} scales; got {}, {}, {}",
        rows, cols, n, n / 2, n / kNvfp4BlockSize, nw, npacked, nscales));
}

void nvfp4_quantize(std::span<const float> w, int64_t rows, int64_t cols, float global_scale,
                    std::span<uint8_t> packed, std::span<uint8_t> scales) {
  check_sizes(rows, cols, w.size(), packed.size(), scales.size());
  const int64_t nblocks = cols / kNvfp4BlockSize;
  const float* e4m3 = e4m3_table();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* wr = w.data() + r * cols;
    uint8_t* pr = packed.data() + r * (cols / 2);
    uint8_t* sr = scales.data() + r * nblocks;
    for (int64_t b = 0; b < nblocks; ++b) {
      const float* blk = wr + b * kNvfp4BlockSize;
      float amax_b = 0.0f;
      for (int i = 0; i < kNvfp4BlockSize; ++i) amax_b = std::fmax(amax_b, std::fabs(blk[i]));
      const uint8_t sbyte = nvfp4_block_scale(amax_b, global_scale);
      sr[b] = sbyte;
      const float d = e4m3[sbyte] * global_scale;  // fl32(float(s) * g)
      uint8_t* pb = pr + b * (kNvfp4BlockSize / 2);
      if (!(d > 0.0f)) {  // g == 0 only for an all-zero tensor: every code is 0
        for (int i = 0; i < kNvfp4BlockSize / 2; ++i) pb[i] = 0;
        continue;
      }
      uint8_t codes[kNvfp4BlockSize];
      for (int i = 0; i < kNvfp4BlockSize; ++i) codes[i] = e2m1_code(blk[i] / d);  // fl32(w / d)
      for (int i = 0; i < kNvfp4BlockSize; i += 2)
        pb[i / 2] = static_cast<uint8_t>(codes[i] | (codes[i + 1] << 4));
    }
  }
}

Nvfp4Tensor nvfp4_quantize(std::span<const float> w, int64_t rows, int64_t cols, float global_scale) {
  Nvfp4Tensor t;
  t.rows = rows;
  t.cols = cols;
  t.global_scale = global_scale;
  const auto n = static_cast<std::size_t>(rows > 0 && cols > 0 ? rows * cols : 0);
  t.packed.resize(n / 2);
  t.scales.resize(n / kNvfp4BlockSize);
  nvfp4_quantize(w, rows, cols, global_scale, t.packed, t.scales);
  return t;
}

void nvfp4_dequantize_row(const uint8_t* packed_row, const uint8_t* scales_row, int64_t cols,
                          float global_scale, float* out) {
  const float* e4m3 = e4m3_table();
  for (int64_t b = 0; b < cols / kNvfp4BlockSize; ++b) {
    const float t = e4m3[scales_row[b]] * global_scale;
    for (int i = 0; i < kNvfp4BlockSize; ++i) {
      const int64_t k = b * kNvfp4BlockSize + i;
      const uint8_t byte = packed_row[k / 2];
      const uint8_t nib = (k % 2 == 0) ? (byte & 0xF) : (byte >> 4);
      out[k] = e2m1_to_f32(nib) * t;
    }
  }
}

}  // namespace quench
