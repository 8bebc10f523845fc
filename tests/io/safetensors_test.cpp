// Tests for io/safetensors: the reader on well-formed files and on every malformation named in
// issue 2 item 2; all files are built here, byte by byte.
#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>

#include "core/error.h"
#include "io/test_util.h"

namespace quench {
namespace {

using testing::st_bytes;
using testing::TempDir;
using testing::write_bytes;

// Opens `bytes` written to a file and expects FormatError whose message contains every needle.
void expect_format_error(const std::string& bytes, std::initializer_list<std::string> needles) {
  TempDir dir;
  const auto path = dir / "bad.safetensors";
  write_bytes(path, bytes);
  try {
    SafetensorsFile::open(path);
    ADD_FAILURE() << "no FormatError for " << bytes.substr(8, 200);
  } catch (const FormatError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(path.string()), std::string::npos) << "message does not name the file: " << m;
    for (const auto& n : needles) EXPECT_NE(m.find(n), std::string::npos) << "missing '" << n << "' in: " << m;
  }
}

TEST(Safetensors, ReadsTensorsAndMetadata) {
  TempDir dir;
  // Two F32 [2] and one BF16 [] tensor; header padded with spaces as safetensors writes it.
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"BF16","shape":[],"data_offsets":[8,10]},"z":{"dtype":"U8","shape":[0,3],"data_offsets":[10,10]}}   )";
  std::string data(10, '\0');
  const float a[2] = {1.5f, -2.0f};
  std::memcpy(data.data(), a, 8);
  data[8] = static_cast<char>(0x80);  // bf16 0x3f80 = 1.0, little-endian
  data[9] = 0x3f;
  write_bytes(dir / "m.safetensors", st_bytes(header, data));
  auto f = SafetensorsFile::open(dir / "m.safetensors");
  ASSERT_EQ(f->tensors().size(), 3u);
  const auto& ta = f->tensors().at("a");
  EXPECT_EQ(ta.dtype, DType::kF32);
  EXPECT_EQ(ta.shape, (std::vector<int64_t>{2}));
  EXPECT_EQ(ta.to_f32(), (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(f->tensors().at("b").get_f32(0), 1.0f);
  EXPECT_EQ(f->tensors().at("b").numel(), 1);
  EXPECT_EQ(f->tensors().at("z").nbytes, 0u);
  EXPECT_EQ(f->metadata().at("format"), "pt");
}

TEST(Safetensors, PureHeaderParserOffsetsFromNull) {
  const std::string header = R"({"x":{"dtype":"I32","shape":[3],"data_offsets":[4,16]}})";
  auto m = parse_safetensors_header(header, 16, "mem");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(m.at("x").data), 4u);
  EXPECT_EQ(m.at("x").nbytes, 12u);
}

TEST(Safetensors, TruncatedFile) {
  expect_format_error(std::string("\x10\x00\x00", 3), {"truncated"});
  expect_format_error("", {"truncated"});
}

TEST(Safetensors, HeaderLengthPastEof) {
  std::string b = st_bytes("{}", "");
  b[0] = 100;  // claims a 100-byte header in a 10-byte file
  expect_format_error(b, {"header length 100"});
  std::string huge(8, '\xff');
  expect_format_error(huge + "{}", {"past the end"});
}

TEST(Safetensors, BadJson) {
  expect_format_error(st_bytes("{\"a\": ", ""), {"not valid JSON"});
  expect_format_error(st_bytes("[1,2]", ""), {"expected an object"});
  expect_format_error(st_bytes("", ""), {"not valid JSON"});
}

TEST(Safetensors, NonObjectEntry) {
  expect_format_error(st_bytes(R"({"w":[1,2]})", ""), {"'w'", "not a JSON object"});
  expect_format_error(st_bytes(R"({"__metadata__":[1]})", ""), {"__metadata__"});
  expect_format_error(st_bytes(R"({"__metadata__":{"k":1}})", ""), {"__metadata__.k"});
  EXPECT_TRUE(parse_safetensors_header(R"({"__metadata__":null})", 0, "mem").empty());
}

TEST(Safetensors, MissingOrExtraFields) {
  expect_format_error(st_bytes(R"({"w":{"dtype":"F32","shape":[1]}})", std::string(4, '\0')),
                      {"'w'", "data_offsets"});
  expect_format_error(st_bytes(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}})", std::string(4, '\0')),
                      {"'w'", "unexpected key"});
}

TEST(Safetensors, UnknownDtype) {
  expect_format_error(st_bytes(R"({"w":{"dtype":"F4","shape":[1],"data_offsets":[0,1]}})", std::string(1, '\0')),
                      {"'w'", "unknown dtype 'F4'"});
  expect_format_error(st_bytes(R"({"w":{"dtype":7,"shape":[1],"data_offsets":[0,1]}})", std::string(1, '\0')),
                      {"'w'", "dtype"});
}

TEST(Safetensors, NegativeOrOverflowingShape) {
  expect_format_error(st_bytes(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", std::string(4, '\0')),
                      {"'w'", "shape[0]", "negative"});
  expect_format_error(
      st_bytes(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", std::string(4, '\0')),
      {"'w'", "overflows"});
  expect_format_error(st_bytes(R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", std::string(4, '\0')),
                      {"'w'", "shape[0]"});
  expect_format_error(st_bytes(R"({"w":{"dtype":"F32","shape":3,"data_offsets":[0,4]}})", std::string(4, '\0')),
                      {"'w'", "shape"});
}

TEST(Safetensors, OffsetsOutOfRange) {
  expect_format_error(st_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", std::string(4, '\0')),
                      {"'w'", "past the end", "4-byte data region"});
  expect_format_error(st_bytes(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", std::string(4, '\0')),
                      {"'w'", "negative"});
  expect_format_error(st_bytes(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", std::string(4, '\0')),
                      {"'w'", "[begin, end]"});
}

TEST(Safetensors, BeginAfterEnd) {
  expect_format_error(st_bytes(R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[4,2]}})", std::string(4, '\0')),
                      {"'w'", "begin 4 > end 2"});
}

TEST(Safetensors, SizeNotNumelTimesDtype) {
  expect_format_error(st_bytes(R"({"w":{"dtype":"BF16","shape":[3,4],"data_offsets":[0,20]}})", std::string(24, '\0')),
                      {"'w'", "[3, 4]", "needs 24 bytes", "give 20"});
}

TEST(Safetensors, OverlappingOffsets) {
  expect_format_error(st_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                               R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                               std::string(8, '\0')),
                      {"'b'", "overlap", "'a'"});
}

TEST(Safetensors, DuplicateTensorInHeader) {
  expect_format_error(st_bytes(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                               R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                               std::string(2, '\0')),
                      {"'a'", "twice"});
}

TEST(Safetensors, MissingFileIsIoError) {
  TempDir dir;
  EXPECT_THROW(SafetensorsFile::open(dir / "absent.safetensors"), IoError);
  EXPECT_THROW(SafetensorsFile::open(dir.path()), IoError);  // a directory
}

}  // namespace
}  // namespace quench
