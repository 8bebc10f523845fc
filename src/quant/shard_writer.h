// quench/quant/shard_writer.h: streams a Hugging Face checkpoint's tensors to safetensors shards
// (`model.safetensors`, or `model-0000i-of-0000n.safetensors` + `model.safetensors.index.json`)
// without holding them in memory: every tensor's dtype and shape are planned first, so each shard's
// header is written up front and the bytes are appended as the caller produces them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace quench {

/// One tensor of the output, declared before any byte is written.
struct PlannedTensor {
  std::string name;
  DType dtype = DType::kBF16;
  std::vector<int64_t> shape;  ///< empty = 0-dim scalar
  std::size_t nbytes() const;
};

/// Writes planned tensors, in plan order, into shards of at most `max_shard_bytes` of data (a
/// tensor larger than that gets a shard of its own). Shard headers carry
/// `{"__metadata__": {"format": "pt", ...}}` as transformers requires; headers are padded with
/// spaces to a multiple of 8 bytes.
class ShardedSafetensorsWriter {
 public:
  /// Plans the shards; opens nothing yet. Throws InvalidArgument on duplicate names.
  ShardedSafetensorsWriter(std::filesystem::path dir, std::vector<PlannedTensor> plan,
                           std::size_t max_shard_bytes,
                           std::map<std::string, std::string> metadata = {});
  ~ShardedSafetensorsWriter();
  ShardedSafetensorsWriter(const ShardedSafetensorsWriter&) = delete;
  ShardedSafetensorsWriter& operator=(const ShardedSafetensorsWriter&) = delete;

  /// Appends bytes of the next planned tensor `name` (several calls may write one tensor in
  /// pieces). Throws InvalidArgument if `name` is not the tensor due next or the bytes overrun its
  /// size; IoError on write failure (naming the file).
  void append(const std::string& name, const void* data, std::size_t nbytes);
  /// Checks every tensor is complete, closes the shards and writes the index when sharded.
  /// Throws InvalidArgument naming the first incomplete tensor.
  void finish();

  std::size_t num_shards() const { return shard_files_.size(); }
  /// Sum of tensor bytes (the index's metadata.total_size).
  std::size_t total_bytes() const { return total_bytes_; }
  /// Output file names (relative to dir).
  const std::vector<std::string>& shard_files() const { return shard_files_; }

 private:
  void open_shard(std::size_t s);
  std::filesystem::path dir_;
  std::vector<PlannedTensor> plan_;
  std::vector<std::size_t> shard_of_;       ///< plan index -> shard
  std::vector<std::string> shard_files_;
  std::map<std::string, std::string> metadata_;
  std::size_t total_bytes_ = 0;
  std::size_t next_ = 0;                    ///< plan index being written
  std::size_t written_of_next_ = 0;         ///< bytes of plan_[next_] written so far
  std::FILE* file_ = nullptr;
  std::size_t open_shard_ = SIZE_MAX;
  bool finished_ = false;
};

}  // namespace quench
