// quench/backend/cpu/matmul.cpp: per-format row decoders and the blocked fp32 GEMM (matmul.h).
#include "backend/cpu/matmul.h"

#include <algorithm>
#include <array>
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

inline float bf16_bits_to_f32(uint16_t bits) {
  uint32_t u = uint32_t(bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

constexpr int kRowBlock = 4;     // output rows decoded and reduced together
constexpr int kTokenBlock = 64;  // tokens per pass over a decoded row block

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
  const bool direct = w.format == WeightFormat::kBF16 && w.weight.dtype == DType::kF32;
  const int64_t n_blocks = (out + kRowBlock - 1) / kRowBlock;
  const int threads = n_blocks > 1 ? cpu_threads_for(int64_t(n_tokens) * out * in) : 1;
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    std::vector<float> buf(direct ? 0 : kRowBlock * in);
#pragma omp for schedule(static)
    for (int64_t blk = 0; blk < n_blocks; ++blk) {
      const int64_t r0 = blk * kRowBlock;
      const int rows = static_cast<int>(std::min<int64_t>(kRowBlock, out - r0));
      const float* wr[kRowBlock];
      for (int r = 0; r < kRowBlock; ++r) {
        const int64_t rr = r0 + std::min(r, rows - 1);
        if (direct) {
          wr[r] = reinterpret_cast<const float*>(w.weight.data) + rr * in;
        } else {
          if (r < rows) decode_weight_row(w, rr, buf.data() + r * in);
          wr[r] = buf.data() + std::min(r, rows - 1) * in;
        }
      }
      for (int t0 = 0; t0 < n_tokens; t0 += kTokenBlock) {
        const int t1 = std::min(n_tokens, t0 + kTokenBlock);
        for (int t = t0; t < t1; ++t) {
          const float* xt = x + int64_t(t) * in;
          float a0 = 0.f, a1 = 0.f, a2 = 0.f, a3 = 0.f;
          const float *w0 = wr[0], *w1 = wr[1], *w2 = wr[2], *w3 = wr[3];
#pragma omp simd reduction(+ : a0, a1, a2, a3)
          for (int64_t i = 0; i < in; ++i) {
            const float xi = xt[i];
            a0 += xi * w0[i];
            a1 += xi * w1[i];
            a2 += xi * w2[i];
            a3 += xi * w3[i];
          }
          float* yt = y + int64_t(t) * out + r0;
          const float acc[kRowBlock] = {a0, a1, a2, a3};
          for (int r = 0; r < rows; ++r) yt[r] = acc[r];
        }
      }
    }
  }
}

}  // namespace quench
