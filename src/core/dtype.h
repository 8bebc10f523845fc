// quench/core/dtype.h: element types of tensors as safetensors names them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace quench {

/// Tensor element types (safetensors spelling in comments). F8_E4M3 is the "fn" variant (no inf,
/// 0x7f/0xff NaN, max 448). NVFP4 weights are stored as U8 (two E2M1 codes per byte).
enum class DType : uint8_t {
  kBF16,     // "BF16"
  kF16,      // "F16"
  kF32,      // "F32"
  kF64,      // "F64"
  kF8E4M3,   // "F8_E4M3"
  kU8,       // "U8"
  kI8,       // "I8"
  kI16,      // "I16"
  kI32,      // "I32"
  kI64,      // "I64"
  kBool,     // "BOOL"
};

/// Bytes per element.
std::size_t dtype_size(DType t);
/// The safetensors spelling, e.g. "F8_E4M3".
std::string_view dtype_name(DType t);
/// Parses the safetensors spelling; throws FormatError("unknown dtype 'X' (expected one of ...)").
DType parse_dtype(std::string_view name);

}  // namespace quench
