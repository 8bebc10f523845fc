// quench/core/tensor.h: a non-owning view of a tensor's bytes (usually inside an mmap).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace quench {

/// A named, typed, shaped view of contiguous row-major bytes. Does not own `data`; valid while the
/// object that produced it (a SafetensorsFile / Checkpoint) lives.
struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;        ///< empty = 0-dim scalar (numel 1)
  const std::byte* data = nullptr;
  std::size_t nbytes = 0;

  int64_t numel() const;
  /// "[4096, 3840]"
  std::string shape_str() const;
  /// Element i converted to fp32 (float types exactly; integer types and U8 by value).
  /// Throws InvalidArgument when i is out of range.
  float get_f32(int64_t i) const;
  /// The whole tensor converted to fp32 (NVFP4-packed U8 is NOT unpacked here; see io/dequant.h).
  std::vector<float> to_f32() const;
  /// Throws FormatError naming the tensor unless dtype and shape match exactly.
  void expect(DType dt, const std::vector<int64_t>& shp) const;
};

}  // namespace quench
