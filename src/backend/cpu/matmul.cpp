// quench/backend/cpu/matmul.cpp: per-format row decoders and the blocked fp32 GEMM (matmul.h).
#include "backend/cpu/matmul.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <vector>

#include "backend/cpu/threads.h"
#include "core/error.h"
#include "core/numeric.h"

namespace quench {
namespace {

/// fp32 value of every E4M3FN byte (exact, from core/numeric.h).
const std::array<float, 256>& fp8_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int i = 0; i < 256; ++i) t[i] = fp8e4m3_to_f32(static_cast<uint8_t>(i));
    return t;
  }();
  return table;
}

/// fp32 value of every E2M1 nibble.
const std::array<float, 16>& e2m1_table() {
  static const std::array<float, 16> table = [] {
    std::array<float, 16> t{};
    for (int i = 0; i < 16; ++i) t[i] = e2m1_to_f32(static_cast<uint8_t>(i));
    return t;
  }();
  return table;
}

/// bf16 bits -> fp32, exact (same as core/numeric.h bf16_to_f32, inlined so loops vectorize).
inline float bf16_bits_to_f32(uint16_t bits) { return std::bit_cast<float>(uint32_t(bits) << 16); }

constexpr int kRowBlock = 4;    // output rows reduced together by one dot4 call
constexpr int kBlockRows = 16;  // output rows per work unit (decoded together)

/// y_t[r0 .. r0+rows) for one token: four dot products sharing each load of x. Built for AVX2
/// and for the baseline ISA; the loader picks one at run time (GCC target_clones).
#define QUENCH_DOT4_BODY(LOAD)                                    \
  float a0 = 0.f, a1 = 0.f, a2 = 0.f, a3 = 0.f;                   \
  _Pragma("omp simd reduction(+ : a0, a1, a2, a3)")               \
  for (int64_t i = 0; i < in; ++i) {                              \
    const float xi = xt[i];                                       \
    a0 += xi * LOAD(w0[i]);                                       \
    a1 += xi * LOAD(w1[i]);                                       \
    a2 += xi * LOAD(w2[i]);                                       \
    a3 += xi * LOAD(w3[i]);                                       \
  }                                                               \
  const float acc[kRowBlock] = {a0, a1, a2, a3};                  \
  for (int r = 0; r < rows; ++r) yt[r] = acc[r];

#define QUENCH_F32(v) (v)
#define QUENCH_BF16(v) bf16_bits_to_f32(v)

__attribute__((target_clones("avx2", "default"))) void dot4_f32(const float* xt, const float* w0, const float* w1,
                                                               const float* w2, const float* w3, int64_t in,
                                                               int rows, float* yt) {
  QUENCH_DOT4_BODY(QUENCH_F32)
}

__attribute__((target_clones("avx2", "default"))) void dot4_bf16(const float* xt, const uint16_t* w0,
                                                                const uint16_t* w1, const uint16_t* w2,
                                                                const uint16_t* w3, int64_t in, int rows,
                                                                float* yt) {
  QUENCH_DOT4_BODY(QUENCH_BF16)
}

}  // namespace

void decode_weight_row(const LinearWeight& w, int64_t row, float* out) {
  const int64_t in = w.in_features;
  switch (w.format) {
    case WeightFormat::kBF16: {
      switch (w.weight.dtype) {
        case DType::kF32:
          std::memcpy(out, w.weight.data + row * in * 4, in * 4);
          return;
        case DType::kBF16: {
          const auto* src = reinterpret_cast<const uint16_t*>(w.weight.data) + row * in;
          for (int64_t i = 0; i < in; ++i) out[i] = bf16_bits_to_f32(src[i]);
          return;
        }
        case DType::kF16: {
          const auto* src = reinterpret_cast<const uint16_t*>(w.weight.data) + row * in;
          for (int64_t i = 0; i < in; ++i) out[i] = f16_to_f32(src[i]);
          return;
        }
        default:
          throw FormatError("Linear '" + w.name + "': unquantized weight must be BF16/F16/F32, got " +
                            std::string(dtype_name(w.weight.dtype)));
      }
    }
    case WeightFormat::kFP8: {
      const auto& lut = fp8_table();
      const auto* src = reinterpret_cast<const uint8_t*>(w.weight.data) + row * in;
      const float scale = w.weight_scale_2;
      for (int64_t i = 0; i < in; ++i) out[i] = lut[src[i]] * scale;
      return;
    }
    case WeightFormat::kNVFP4: {
      const auto& lut = fp8_table();
      const auto& e2m1 = e2m1_table();
      const auto* codes = reinterpret_cast<const uint8_t*>(w.weight.data) + row * (in / 2);
      const auto* scales = reinterpret_cast<const uint8_t*>(w.weight_scale.data) + row * (in / 16);
      for (int64_t b = 0; b < in / 16; ++b) {
        const float t = lut[scales[b]] * w.weight_scale_2;  // fl32(e4m3 · g), §4 order
        for (int i = 0; i < 8; ++i) {
          const uint8_t byte = codes[b * 8 + i];
          out[b * 16 + 2 * i] = e2m1[byte & 0xF] * t;
          out[b * 16 + 2 * i + 1] = e2m1[byte >> 4] * t;
        }
      }
      return;
    }
  }
}

void linear(const LinearWeight& w, const float* x, int n_tokens, float* y) {
  const int64_t in = w.in_features, out = w.out_features;
  if (n_tokens <= 0) return;
  const bool unquantized = w.format == WeightFormat::kBF16;
  const bool f32 = unquantized && w.weight.dtype == DType::kF32;
  // BF16 rows are read in place for a few tokens (decode); for more tokens a row block is decoded
  // once into fp32 and reused by every token.
  const bool bf16_direct = unquantized && w.weight.dtype == DType::kBF16 && n_tokens <= 2;
  const bool decode = !f32 && !bf16_direct;
  // Work unit: kBlockRows output rows (decoded once, kept in L2) against every token; each token
  // row of x is reused by kBlockRows / kRowBlock dot4 calls while it sits in L1.
  const int64_t n_blocks = (out + kBlockRows - 1) / kBlockRows;
  const int threads = n_blocks > 1 ? cpu_threads_for(int64_t(n_tokens) * out * in) : 1;
  const auto* f32_rows = reinterpret_cast<const float*>(w.weight.data);
  const auto* bf16_rows = reinterpret_cast<const uint16_t*>(w.weight.data);
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    std::vector<float> buf(decode ? kBlockRows * in : 0);
#pragma omp for schedule(static)
    for (int64_t blk = 0; blk < n_blocks; ++blk) {
      const int64_t b0 = blk * kBlockRows;
      const int block_rows = static_cast<int>(std::min<int64_t>(kBlockRows, out - b0));
      if (decode)
        for (int r = 0; r < block_rows; ++r) decode_weight_row(w, b0 + r, buf.data() + r * in);
      for (int t = 0; t < n_tokens; ++t) {
        const float* xt = x + int64_t(t) * in;
        for (int g = 0; g < block_rows; g += kRowBlock) {
          const int rows = std::min(kRowBlock, block_rows - g);
          int64_t rr[kRowBlock];  // rows of this group; a short group repeats its last row
          for (int r = 0; r < kRowBlock; ++r) rr[r] = g + std::min(r, rows - 1);
          float* yt = y + int64_t(t) * out + b0 + g;
          if (bf16_direct) {
            const uint16_t* base = bf16_rows + b0 * in;
            dot4_bf16(xt, base + rr[0] * in, base + rr[1] * in, base + rr[2] * in, base + rr[3] * in, in, rows, yt);
          } else {
            const float* base = decode ? buf.data() : f32_rows + b0 * in;
            dot4_f32(xt, base + rr[0] * in, base + rr[1] * in, base + rr[2] * in, base + rr[3] * in, in, rows, yt);
          }
        }
      }
    }
  }
}

}  // namespace quench
