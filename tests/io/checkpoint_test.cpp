// Tests for io/safetensors Checkpoint (single file and sharded index) and SafetensorsWriter /
// write_file_atomic (round trip, atomic rename, failure leaves nothing behind).
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "core/error.h"
#include "io/safetensors.h"
#include "io/test_util.h"

namespace quench {
namespace {

namespace fs = std::filesystem;
using testing::st_bytes;
using testing::TempDir;
using testing::write_bytes;

std::string one_u8_tensor_file(const std::string& name, uint8_t value) {
  return st_bytes(R"({")" + name + R"(":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})",
                  std::string(1, static_cast<char>(value)));
}

TEST(Checkpoint, SingleFile) {
  TempDir dir;
  write_bytes(dir / "model.safetensors", one_u8_tensor_file("w", 7));
  auto ck = Checkpoint::open(dir.path());
  EXPECT_TRUE(ck.has("w"));
  EXPECT_FALSE(ck.has("v"));
  EXPECT_EQ(ck.get("w").get_f32(0), 7.0f);
  EXPECT_EQ(ck.find("v"), nullptr);
  EXPECT_EQ(ck.names(), std::vector<std::string>{"w"});
  EXPECT_EQ(ck.total_bytes(), 1u);
  try {
    ck.get("v");
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("'v' not found"), std::string::npos);
  }
}

TEST(Checkpoint, ShardedIndex) {
  TempDir dir;
  write_bytes(dir / "model-00001-of-00002.safetensors", one_u8_tensor_file("b", 2));
  write_bytes(dir / "model-00002-of-00002.safetensors", one_u8_tensor_file("a", 1));
  write_bytes(dir / "model.safetensors.index.json",
              R"({"metadata":{"total_size":2},"weight_map":{"b":"model-00001-of-00002.safetensors",)"
              R"("a":"model-00002-of-00002.safetensors"}})");
  auto moved = Checkpoint::open(dir.path());
  Checkpoint ck = std::move(moved);  // views must survive a move
  EXPECT_EQ(ck.names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(ck.get("a").get_f32(0), 1.0f);
  EXPECT_EQ(ck.get("b").get_f32(0), 2.0f);
  EXPECT_EQ(ck.total_bytes(), 2u);
}

TEST(Checkpoint, TensorListedButAbsentFromShard) {
  TempDir dir;
  write_bytes(dir / "s1.safetensors", one_u8_tensor_file("a", 1));
  write_bytes(dir / "model.safetensors.index.json", R"({"weight_map":{"a":"s1.safetensors","c":"s1.safetensors"}})");
  try {
    Checkpoint::open(dir.path());
    FAIL();
  } catch (const FormatError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("'c'"), std::string::npos) << m;
    EXPECT_NE(m.find("s1.safetensors"), std::string::npos) << m;
  }
}

TEST(Checkpoint, DuplicateTensorAcrossShards) {
  TempDir dir;
  write_bytes(dir / "s1.safetensors", one_u8_tensor_file("a", 1));
  write_bytes(dir / "s2.safetensors",
              st_bytes(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                       std::string(2, '\0')));
  write_bytes(dir / "model.safetensors.index.json", R"({"weight_map":{"a":"s1.safetensors","b":"s2.safetensors"}})");
  try {
    Checkpoint::open(dir.path());
    FAIL();
  } catch (const FormatError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("'a'"), std::string::npos) << m;
    EXPECT_NE(m.find("two shards"), std::string::npos) << m;
  }
}

TEST(Checkpoint, BadIndexAndMissingFiles) {
  TempDir dir;
  EXPECT_THROW(Checkpoint::open(dir.path()), IoError);           // nothing there
  EXPECT_THROW(Checkpoint::open(dir / "nope"), IoError);         // not a directory
  write_bytes(dir / "model.safetensors.index.json", R"({"weight_map":[]})");
  EXPECT_THROW(Checkpoint::open(dir.path()), FormatError);
  write_bytes(dir / "model.safetensors.index.json", R"({"weight_map":{"a":"../x.safetensors"}})");
  EXPECT_THROW(Checkpoint::open(dir.path()), FormatError);
  write_bytes(dir / "model.safetensors.index.json", R"({"weight_map":{"a":"missing.safetensors"}})");
  EXPECT_THROW(Checkpoint::open(dir.path()), IoError);
  write_bytes(dir / "model.safetensors.index.json", R"({"weight_map": )");
  EXPECT_THROW(Checkpoint::open(dir.path()), FormatError);
}

TEST(SafetensorsWriter, RoundTripAndLayout) {
  TempDir dir;
  SafetensorsWriter w;
  const float f[3] = {1.0f, -2.5f, 3.25f};
  const uint16_t bf[2] = {0x3f80, 0x4000};
  const float scalar = 0.00390625f;
  w.add("model.layers.0.mlp.up_proj.weight", DType::kF32, {3}, f, sizeof f);
  w.add("b", DType::kBF16, {1, 2}, bf, sizeof bf);
  w.add("s", DType::kF32, {}, &scalar, sizeof scalar);
  w.add("empty", DType::kU8, {0}, nullptr, 0);
  w.set_metadata("format", "pt");
  EXPECT_EQ(w.bytes_pending(), 12u + 4u + 4u);
  const auto path = dir / "out.safetensors";
  w.write(path);
  EXPECT_EQ(w.bytes_pending(), 0u);

  // Layout per the safetensors spec: data region starts at a multiple of 8.
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[i]);
  EXPECT_EQ((8 + n) % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + 20);

  auto r = SafetensorsFile::open(path);
  EXPECT_EQ(r->tensors().at("model.layers.0.mlp.up_proj.weight").to_f32(), (std::vector<float>{1.0f, -2.5f, 3.25f}));
  EXPECT_EQ(r->tensors().at("b").shape, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(r->tensors().at("b").get_f32(1), 2.0f);
  EXPECT_TRUE(r->tensors().at("s").shape.empty());
  EXPECT_EQ(r->tensors().at("s").get_f32(0), scalar);
  EXPECT_EQ(r->tensors().at("empty").nbytes, 0u);
  EXPECT_EQ(r->metadata().at("format"), "pt");
  // No temp file left behind.
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
}

TEST(SafetensorsWriter, BorrowedViewsFromAnOpenFile) {
  TempDir dir;
  SafetensorsWriter w;
  const int32_t v[4] = {1, -2, 3, -4};
  w.add("a", DType::kI32, {2, 2}, v, sizeof v);
  w.write(dir / "src.safetensors");
  auto src = SafetensorsFile::open(dir / "src.safetensors");
  SafetensorsWriter w2;
  w2.add_borrowed(src->tensors().at("a"));  // no copy: the mmap outlives write()
  const uint8_t b = 9;
  w2.add("b", DType::kU8, {}, &b, 1);
  EXPECT_EQ(w2.bytes_pending(), 17u);
  EXPECT_THROW(w2.add_borrowed("a", DType::kI32, {4}, v, sizeof v), InvalidArgument);  // duplicate
  EXPECT_THROW(w2.add_borrowed("c", DType::kI32, {3}, v, sizeof v), InvalidArgument);  // size
  w2.write(dir / "copy.safetensors");
  auto copy = SafetensorsFile::open(dir / "copy.safetensors");
  EXPECT_EQ(copy->tensors().at("a").to_f32(), (std::vector<float>{1, -2, 3, -4}));
  EXPECT_EQ(copy->tensors().at("b").get_f32(0), 9.0f);
}

TEST(SafetensorsWriter, RejectsBadInput) {
  SafetensorsWriter w;
  const float f[2] = {0, 0};
  EXPECT_THROW(w.add("x", DType::kF32, {3}, f, sizeof f), InvalidArgument);
  EXPECT_THROW(w.add("x", DType::kF32, {-2}, f, sizeof f), InvalidArgument);
  EXPECT_THROW(w.add("__metadata__", DType::kF32, {2}, f, sizeof f), InvalidArgument);
  w.add("x", DType::kF32, {2}, f, sizeof f);
  EXPECT_THROW(w.add("x", DType::kF32, {2}, f, sizeof f), InvalidArgument);
}

TEST(SafetensorsWriter, FailedWriteLeavesNothing) {
  TempDir dir;
  SafetensorsWriter w;
  const float f = 1;
  w.add("x", DType::kF32, {}, &f, 4);
  EXPECT_THROW(w.write(dir / "no_such_dir" / "out.safetensors"), IoError);
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(WriteFileAtomic, ReplacesContentAtomically) {
  TempDir dir;
  const auto p = dir / "config.json";
  write_file_atomic(p, "old");
  write_file_atomic(p, "{\"new\": true}");
  std::ifstream in(p);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(s, "{\"new\": true}");
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
  EXPECT_THROW(write_file_atomic(dir / "missing" / "x", "y"), IoError);
}

}  // namespace
}  // namespace quench
