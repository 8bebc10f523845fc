// Tests for core/dtype: sizes and safetensors spellings (huggingface/safetensors Dtype names).
#include "core/dtype.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace quench {
namespace {

TEST(DType, SizesAndNamesRoundTrip) {
  struct Case {
    const char* name;
    std::size_t size;
  };
  // Element sizes from the safetensors spec's dtype table.
  const Case cases[] = {{"BF16", 2}, {"F16", 2}, {"F32", 4}, {"F64", 8}, {"F8_E4M3", 1}, {"U8", 1},
                        {"I8", 1},   {"I16", 2}, {"I32", 4}, {"I64", 8}, {"BOOL", 1}};
  for (const auto& c : cases) {
    const DType t = parse_dtype(c.name);
    EXPECT_EQ(dtype_name(t), c.name);
    EXPECT_EQ(dtype_size(t), c.size) << c.name;
  }
}

TEST(DType, UnknownNameIsFormatErrorNamingIt) {
  try {
    parse_dtype("F8_E5M2");
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("'F8_E5M2'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("BF16"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_dtype("bf16"), FormatError);  // case-sensitive, as safetensors
  EXPECT_THROW(parse_dtype(""), FormatError);
}

}  // namespace
}  // namespace quench
