// quench/core/tensor.cpp: TensorView element access and shape checks.
#include "core/tensor.h"

#include <cstring>

#include "core/error.h"
#include "core/numeric.h"

namespace quench {

namespace {

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

template <typename T>
T load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string TensorView::shape_str() const { return shape_string(shape); }

float TensorView::get_f32(int64_t i) const {
  const int64_t n = numel();
  if (i < 0 || i >= n) {
    throw InvalidArgument("tensor '" + name + "': element index " + std::to_string(i) +
                          " out of range [0, " + std::to_string(n) + ")");
  }
  const std::size_t es = dtype_size(dtype);
  if ((static_cast<std::size_t>(i) + 1) * es > nbytes || data == nullptr) {
    throw InvalidArgument("tensor '" + name + "': element " + std::to_string(i) + " lies past its " +
                          std::to_string(nbytes) + " data bytes");
  }
  const std::byte* p = data + static_cast<std::size_t>(i) * es;
  switch (dtype) {
    case DType::kBF16: return bf16_to_f32(load<uint16_t>(p));
    case DType::kF16: return f16_to_f32(load<uint16_t>(p));
    case DType::kF32: return load<float>(p);
    case DType::kF64: return static_cast<float>(load<double>(p));
    case DType::kF8E4M3: return fp8e4m3_to_f32(load<uint8_t>(p));
    case DType::kU8: return static_cast<float>(load<uint8_t>(p));
    case DType::kI8: return static_cast<float>(load<int8_t>(p));
    case DType::kI16: return static_cast<float>(load<int16_t>(p));
    case DType::kI32: return static_cast<float>(load<int32_t>(p));
    case DType::kI64: return static_cast<float>(load<int64_t>(p));
    case DType::kBool: return load<uint8_t>(p) ? 1.0f : 0.0f;
  }
  throw InvalidArgument("tensor '" + name + "': invalid dtype");
}

std::vector<float> TensorView::to_f32() const {
  const int64_t n = numel();
  if (n < 0 || static_cast<std::size_t>(n) * dtype_size(dtype) > nbytes) {
    throw InvalidArgument("tensor '" + name + "': shape " + shape_str() + " x " +
                          std::string(dtype_name(dtype)) + " needs more than its " +
                          std::to_string(nbytes) + " bytes");
  }
  std::vector<float> out(static_cast<std::size_t>(n));
  if (dtype == DType::kF32 && n > 0) {
    std::memcpy(out.data(), data, out.size() * sizeof(float));
    return out;
  }
  for (int64_t i = 0; i < n; ++i) out[static_cast<std::size_t>(i)] = get_f32(i);
  return out;
}

void TensorView::expect(DType dt, const std::vector<int64_t>& shp) const {
  if (dtype != dt || shape != shp) {
    throw FormatError("tensor '" + name + "': expected " + std::string(dtype_name(dt)) + " " +
                      shape_string(shp) + ", found " + std::string(dtype_name(dtype)) + " " +
                      shape_str());
  }
}

}  // namespace quench
