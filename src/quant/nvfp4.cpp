// quench/quant/nvfp4.cpp: NVFP4 quantization (see nvfp4.h for the formulas and their source).
#include "quant/nvfp4.h"

#include <cmath>

#include <fmt/format.h>

#include "core/error.h"    // InvalidArgument
#include "core/numeric.h"  // f32_to_fp8e4m3, fp8e4m3_to_f32, f32_to_e2m1, e2m1_to_f32

namespace quench {

float abs_max(std::span<const float> values) {
  float m = 0.0f;
  for (float v : values) {
    float a = std::fabs(v);
    if (a > m) m = a;  // NaN compares false and is skipped
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
      const float d = fp8e4m3_to_f32(sbyte) * global_scale;  // fl32(float(s) * g)
      uint8_t* pb = pr + b * (kNvfp4BlockSize / 2);
      for (int i = 0; i < kNvfp4BlockSize; i += 2) {
        // g == 0 only for an all-zero tensor: every code is then 0.
        const uint8_t lo = d > 0.0f ? f32_to_e2m1(blk[i] / d) : 0;
        const uint8_t hi = d > 0.0f ? f32_to_e2m1(blk[i + 1] / d) : 0;
        pb[i / 2] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
      }
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
  for (int64_t b = 0; b < cols / kNvfp4BlockSize; ++b) {
    const float t = fp8e4m3_to_f32(scales_row[b]) * global_scale;
    for (int i = 0; i < kNvfp4BlockSize; ++i) {
      const int64_t k = b * kNvfp4BlockSize + i;
      const uint8_t byte = packed_row[k / 2];
      const uint8_t nib = (k % 2 == 0) ? (byte & 0xF) : (byte >> 4);
      out[k] = e2m1_to_f32(nib) * t;
    }
  }
}

}  // namespace quench
