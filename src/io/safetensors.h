// quench/io/safetensors.h: reading (mmap) and writing safetensors files and HF checkpoint dirs.
//
// Format: 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
// then the data region; offsets are relative to the data region. Every malformation (truncated
// file, N past EOF, bad JSON, unknown dtype, offsets out of range / overlapping / not matching
// shape x dtype size) throws FormatError naming the file and the tensor.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"

namespace quench {

/// Parses a safetensors header (the JSON bytes after the 8-byte length) against a data region of
/// `data_size` bytes. Pure function, no I/O: the fuzz target drives it. Returns views whose
/// `data` is offset from nullptr by the tensor's begin offset (callers rebase them).
/// `source` names the file in error messages.
std::map<std::string, TensorView> parse_safetensors_header(std::string_view header_json,
                                                           std::size_t data_size,
                                                           const std::string& source,
                                                           std::map<std::string, std::string>* metadata = nullptr);

/// One safetensors file, memory-mapped read-only.
class SafetensorsFile {
 public:
  /// Throws IoError (open/mmap) or FormatError (malformed).
  static std::unique_ptr<SafetensorsFile> open(const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;
  std::filesystem::path path_;
  void* map_ = nullptr;
  std::size_t map_size_ = 0;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

/// A Hugging Face checkpoint directory: `model.safetensors`, or shards listed by
/// `model.safetensors.index.json` ("weight_map": name -> shard file).
class Checkpoint {
 public:
  /// Throws IoError / FormatError (missing files, a tensor listed in the index but absent from
  /// its shard, a tensor present in two shards).
  static Checkpoint open(const std::filesystem::path& dir);

  const std::filesystem::path& dir() const { return dir_; }
  bool has(const std::string& name) const;
  /// Throws FormatError("<dir>: tensor '<name>' not found") when absent.
  const TensorView& get(const std::string& name) const;
  /// Pointer or nullptr.
  const TensorView* find(const std::string& name) const;
  /// All tensor names, sorted.
  std::vector<std::string> names() const;
  std::size_t total_bytes() const;

 private:
  std::filesystem::path dir_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*> index_;
};

/// Collects tensors (copied, or borrowed without a copy) and writes one safetensors file atomically.
class SafetensorsWriter {
 public:
  /// Copies `data` (nbytes must equal numel x dtype size; throws InvalidArgument otherwise).
  void add(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
           const void* data, std::size_t nbytes);
  void add(const TensorView& t) { add(t.name, t.dtype, t.shape, t.data, t.nbytes); }
  /// Like add() but without copying: `data` must stay valid and unchanged until write() returns
  /// (e.g. a view into an open SafetensorsFile's mmap). Same checks and errors as add().
  void add_borrowed(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                    const void* data, std::size_t nbytes);
  void add_borrowed(const TensorView& t) { add_borrowed(t.name, t.dtype, t.shape, t.data, t.nbytes); }
  void set_metadata(const std::string& key, const std::string& value);
  std::size_t bytes_pending() const;
  /// Writes to `<path>.tmp.<pid>` then renames to `path`; throws IoError. Clears the writer.
  void write(const std::filesystem::path& path);

 private:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<std::byte> bytes;       ///< owned copy (add)
    const std::byte* borrowed = nullptr;  ///< caller's bytes (add_borrowed); nbytes below
    std::size_t nbytes = 0;
    const std::byte* data() const { return borrowed ? borrowed : bytes.data(); }
  };
  void check_new(const std::string& name, DType dtype, const std::vector<int64_t>& shape, const void* data,
                 std::size_t nbytes) const;
  std::vector<Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

/// Writes `content` to `path` atomically (temp file in the same directory + rename).
void write_file_atomic(const std::filesystem::path& path, std::string_view content);

}  // namespace quench
