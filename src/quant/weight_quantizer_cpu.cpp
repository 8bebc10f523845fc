// quench/quant/weight_quantizer_cpu.cpp: the CPU (OpenMP) WeightQuantizer (see weight_quantizer.h).
#include <omp.h>

#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "core/error.h"          // InvalidArgument
#include "core/numeric.h"        // f16_to_f32, fp8e4m3_to_f32
#include "quant/fp8.h"           // fp8_quantize
#include "quant/memory.h"        // release_mapped_pages
#include "quant/nvfp4.h"         // nvfp4_quantize, nvfp4_dequantize_row, abs_max
#include "quant/weight_quantizer.h"

namespace quench {

namespace {

/// The whole weight as fp32 (exact for BF16/F16/F32), converted in parallel.
std::vector<float> weight_to_f32(const TensorView& t) {
  const int64_t n = t.numel();
  std::vector<float> out(static_cast<std::size_t>(n));
  if (t.dtype == DType::kBF16) {
    const auto* src = reinterpret_cast<const uint16_t*>(t.data);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t bits = static_cast<uint32_t>(src[i]) << 16;
      std::memcpy(&out[i], &bits, 4);
    }
  } else if (t.dtype == DType::kF16) {
    const auto* src = reinterpret_cast<const uint16_t*>(t.data);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(src[i]);
  } else {
    std::memcpy(out.data(), t.data, static_cast<std::size_t>(n) * 4);
  }
  return out;
}

class CpuWeightQuantizer final : public WeightQuantizer {
 public:
  QuantDevice device() const override { return QuantDevice::kCpu; }
  std::string description() const override { return fmt::format("cpu ({} threads)", omp_get_max_threads()); }

  std::vector<float> load_group(const std::vector<const TensorView*>& members) override {
    w32_.clear();
    shapes_.clear();
    std::vector<float> amax;
    for (const TensorView* t : members) {
      if (t->shape.size() != 2 || (t->dtype != DType::kBF16 && t->dtype != DType::kF16 && t->dtype != DType::kF32))
        throw InvalidArgument(fmt::format("weight quantizer: tensor '{}' is {} {}; expected a 2-D BF16, F16 or F32 "
                                          "weight", t->name, dtype_name(t->dtype), t->shape_str()));
      w32_.push_back(weight_to_f32(*t));
      release_mapped_pages(t->data, t->nbytes);
      shapes_.push_back({t->shape[0], t->shape[1]});
      amax.push_back(abs_max(w32_.back()));
    }
    return amax;
  }

  double quantize_nvfp4(std::size_t i, float g, std::span<uint8_t> packed, std::span<uint8_t> scales) override {
    const auto [rows, cols] = member(i);
    nvfp4_quantize(w32_[i], rows, cols, g, packed, scales);
    const std::vector<float>& w = w32_[i];
    double num = 0.0, den = 0.0;
#pragma omp parallel for reduction(+ : num, den) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<float> row(cols);
      nvfp4_dequantize_row(packed.data() + r * (cols / 2), scales.data() + r * (cols / kNvfp4BlockSize), cols, g,
                           row.data());
      for (int64_t c = 0; c < cols; ++c) {
        const double x = w[r * cols + c], d = x - row[c];
        num += d * d;
        den += x * x;
      }
    }
    return den > 0 ? std::sqrt(num / den) : 0.0;
  }

  double quantize_fp8(std::size_t i, float scale, std::span<uint8_t> out) override {
    member(i);
    const std::vector<float>& w = w32_[i];
    fp8_quantize(w, scale, out);
    double num = 0.0, den = 0.0;
    const auto n = static_cast<int64_t>(w.size());
    float table[256];
    for (int k = 0; k < 256; ++k) table[k] = fp8e4m3_to_f32(static_cast<uint8_t>(k));
#pragma omp parallel for reduction(+ : num, den) schedule(static)
    for (int64_t k = 0; k < n; ++k) {
      const double x = w[k], d = x - static_cast<double>(table[out[k]] * scale);
      num += d * d;
      den += x * x;
    }
    return den > 0 ? std::sqrt(num / den) : 0.0;
  }

 private:
  std::pair<int64_t, int64_t> member(std::size_t i) const {
    if (i >= w32_.size())
      throw InvalidArgument(fmt::format("weight quantizer: member {} of a group of {}", i, w32_.size()));
    return shapes_[i];
  }
  std::vector<std::vector<float>> w32_;
  std::vector<std::pair<int64_t, int64_t>> shapes_;
};

}  // namespace

std::unique_ptr<WeightQuantizer> make_cpu_weight_quantizer() { return std::make_unique<CpuWeightQuantizer>(); }

}  // namespace quench
