// quench/core/dtype.cpp: sizes and safetensors spellings of the tensor element types.
#include "core/dtype.h"

#include <string>

#include "core/error.h"

namespace quench {

namespace {

struct DTypeInfo {
  DType type;
  std::string_view name;
  std::size_t size;
};

// The safetensors spelling of every type quench reads (safetensors `Dtype` enum names).
constexpr DTypeInfo kDTypes[] = {
    {DType::kBF16, "BF16", 2}, {DType::kF16, "F16", 2},  {DType::kF32, "F32", 4},
    {DType::kF64, "F64", 8},   {DType::kF8E4M3, "F8_E4M3", 1}, {DType::kU8, "U8", 1},
    {DType::kI8, "I8", 1},     {DType::kI16, "I16", 2},  {DType::kI32, "I32", 4},
    {DType::kI64, "I64", 8},   {DType::kBool, "BOOL", 1},
};

const DTypeInfo& info(DType t) {
  for (const auto& i : kDTypes) {
    if (i.type == t) return i;
  }
  throw InvalidArgument("dtype enum value " + std::to_string(static_cast<int>(t)) + " is not a DType");
}

}  // namespace

std::size_t dtype_size(DType t) { return info(t).size; }

std::string_view dtype_name(DType t) { return info(t).name; }

DType parse_dtype(std::string_view name) {
  for (const auto& i : kDTypes) {
    if (i.name == name) return i.type;
  }
  std::string expected;
  for (const auto& i : kDTypes) {
    if (!expected.empty()) expected += ", ";
    expected += i.name;
  }
  throw FormatError("unknown dtype '" + std::string(name) + "' (expected one of " + expected + ")");
}

}  // namespace quench
