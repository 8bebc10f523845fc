// quench/quant/fp8.cpp: FP8 E4M3 per-tensor quantization (see fp8.h).
#include "quant/fp8.h"

#include <fmt/format.h>

#include "core/error.h"    // InvalidArgument
#include "core/numeric.h"  // f32_to_fp8e4m3
#include "quant/nvfp4.h"   // kE4M3Max

namespace quench {

float fp8_scale(float amax) {
  if (!(amax > 0.0f)) return 1.0f;
  return amax / kE4M3Max;
}

void fp8_quantize(std::span<const float> w, float scale, std::span<uint8_t> out) {
  if (out.size() != w.size())
    throw InvalidArgument(fmt::format("fp8_quantize: {} weights but {} output bytes", w.size(), out.size()));
  if (!(scale > 0.0f))
    throw InvalidArgument(fmt::format("fp8_quantize: scale must be > 0, got {}", scale));
  const auto n = static_cast<int64_t>(w.size());
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = f32_to_fp8e4m3(w[i] / scale, false);
}

}  // namespace quench
