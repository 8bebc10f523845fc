// quench/io/safetensors.cpp: safetensors header parsing, mmap reader, checkpoint dirs, atomic writer.
//
// Format reference: huggingface/safetensors README ("Format" section): u64 little-endian header
// size N, N bytes of UTF-8 JSON (may be space-padded), then the byte buffer; data_offsets are
// [begin, end) relative to the buffer.
#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/text_file.h"

namespace quench {

namespace {

using json = nlohmann::json;

// Headers larger than this are rejected before parsing (safetensors uses the same 100 MB cap).
constexpr std::size_t kMaxHeaderBytes = 100u * 1000u * 1000u;

std::string errno_text() { return std::strerror(errno); }

std::string tensor_ctx(const std::string& source, const std::string& name) {
  return source + ": tensor '" + name + "': ";
}

// Parses JSON, rejecting duplicate keys in the top-level object (nlohmann would keep the last).
json parse_header_json(std::string_view text, const std::string& source) {
  std::set<std::string> seen;
  std::string duplicate;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1) {
      const auto& k = parsed.get_ref<const std::string&>();
      if (!seen.insert(k).second && duplicate.empty()) duplicate = k;
    }
    return true;
  };
  json j;
  try {
    j = json::parse(text.begin(), text.end(), cb);
  } catch (const json::exception& e) {
    throw FormatError(source + ": header is not valid JSON (" + e.what() + ")");
  }
  if (!duplicate.empty()) {
    throw FormatError(source + ": header lists tensor '" + duplicate + "' twice");
  }
  return j;
}

uint64_t as_u64(const json& v, const std::string& what) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer()) {
    const int64_t x = v.get<int64_t>();
    if (x < 0) throw FormatError(what + " is negative (" + std::to_string(x) + ")");
    return static_cast<uint64_t>(x);
  }
  throw FormatError(what + " is not a non-negative integer (found " + v.dump() + ")");
}

TensorView parse_entry(const std::string& name, const json& e, std::size_t data_size,
                       const std::string& source) {
  const std::string ctx = tensor_ctx(source, name);
  if (!e.is_object()) throw FormatError(ctx + "entry is not a JSON object (found " + std::string(e.type_name()) + ")");
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!e.contains(key)) throw FormatError(ctx + "missing \"" + key + "\"");
  }
  for (const auto& [k, v] : e.items()) {
    if (k != "dtype" && k != "shape" && k != "data_offsets") {
      throw FormatError(ctx + "unexpected key \"" + k + "\" (expected dtype, shape, data_offsets)");
    }
  }
  TensorView t;
  t.name = name;
  const json& dt = e["dtype"];
  if (!dt.is_string()) throw FormatError(ctx + "\"dtype\" is not a string");
  try {
    t.dtype = parse_dtype(dt.get<std::string>());
  } catch (const FormatError& err) {
    throw FormatError(ctx + err.what());
  }
  const json& shape = e["shape"];
  if (!shape.is_array()) throw FormatError(ctx + "\"shape\" is not an array");
  // numel x element size, checked for overflow at every step.
  uint64_t bytes = dtype_size(t.dtype);
  for (std::size_t i = 0; i < shape.size(); ++i) {
    const uint64_t d = as_u64(shape[i], ctx + "shape[" + std::to_string(i) + "]");
    if (d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      throw FormatError(ctx + "shape[" + std::to_string(i) + "] = " + std::to_string(d) + " overflows int64");
    }
    if (d != 0 && bytes > std::numeric_limits<uint64_t>::max() / d) {
      throw FormatError(ctx + "shape " + shape.dump() + " x " + std::string(dtype_name(t.dtype)) +
                        " overflows 64-bit byte count");
    }
    bytes *= d;
    t.shape.push_back(static_cast<int64_t>(d));
  }
  const json& off = e["data_offsets"];
  if (!off.is_array() || off.size() != 2) {
    throw FormatError(ctx + "\"data_offsets\" must be an array [begin, end] (found " + off.dump() + ")");
  }
  const uint64_t begin = as_u64(off[0], ctx + "data_offsets[0]");
  const uint64_t end = as_u64(off[1], ctx + "data_offsets[1]");
  if (begin > end) {
    throw FormatError(ctx + "data_offsets begin " + std::to_string(begin) + " > end " + std::to_string(end));
  }
  if (end > data_size) {
    throw FormatError(ctx + "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                      "] past the end of the " + std::to_string(data_size) + "-byte data region");
  }
  if (end - begin != bytes) {
    throw FormatError(ctx + "shape " + t.shape_str() + " x " + std::string(dtype_name(t.dtype)) + " needs " +
                      std::to_string(bytes) + " bytes, data_offsets give " + std::to_string(end - begin));
  }
  t.nbytes = static_cast<std::size_t>(bytes);
  t.data = reinterpret_cast<const std::byte*>(static_cast<uintptr_t>(begin));
  return t;
}

}  // namespace

std::map<std::string, TensorView> parse_safetensors_header(std::string_view header_json, std::size_t data_size,
                                                           const std::string& source,
                                                           std::map<std::string, std::string>* metadata) {
  if (header_json.size() > kMaxHeaderBytes) {
    throw FormatError(source + ": header of " + std::to_string(header_json.size()) + " bytes exceeds the " +
                      std::to_string(kMaxHeaderBytes) + "-byte limit");
  }
  const json j = parse_header_json(header_json, source);
  if (!j.is_object()) {
    throw FormatError(source + ": header is a JSON " + std::string(j.type_name()) + ", expected an object");
  }
  std::map<std::string, TensorView> tensors;
  for (const auto& [name, entry] : j.items()) {
    if (name == "__metadata__") {
      if (entry.is_null()) continue;  // the Rust reader's Option<HashMap> accepts null
      if (!entry.is_object()) throw FormatError(source + ": \"__metadata__\" is not an object of strings");
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) {
          throw FormatError(source + ": __metadata__." + k + " is not a string (found " + v.dump() + ")");
        }
        if (metadata) (*metadata)[k] = v.get<std::string>();
      }
      continue;
    }
    tensors.emplace(name, parse_entry(name, entry, data_size, source));
  }
  // Overlap check over non-empty ranges, sorted by begin.
  std::vector<std::pair<uintptr_t, const TensorView*>> ranges;
  for (const auto& [name, t] : tensors) {
    if (t.nbytes) ranges.emplace_back(reinterpret_cast<uintptr_t>(t.data), &t);
  }
  std::sort(ranges.begin(), ranges.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (std::size_t i = 1; i < ranges.size(); ++i) {
    const auto& [pb, prev] = ranges[i - 1];
    const auto& [cb, cur] = ranges[i];
    if (cb < pb + prev->nbytes) {
      throw FormatError(tensor_ctx(source, cur->name) + "data_offsets [" + std::to_string(cb) + ", " +
                        std::to_string(cb + cur->nbytes) + "] overlap tensor '" + prev->name + "' [" +
                        std::to_string(pb) + ", " + std::to_string(pb + prev->nbytes) + "]");
    }
  }
  return tensors;
}

// ---- SafetensorsFile --------------------------------------------------------------------------

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::filesystem::path& path) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  const std::string src = path.string();
  const int fd = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError(src + ": cannot open: " + errno_text());
  struct stat st{};
  if (::fstat(fd, &st) != 0) {
    const std::string e = errno_text();
    ::close(fd);
    throw IoError(src + ": cannot stat: " + e);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw IoError(src + ": not a regular file");
  }
  const std::size_t size = static_cast<std::size_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    throw FormatError(src + ": truncated: " + std::to_string(size) +
                      " bytes, a safetensors file needs at least the 8-byte header length");
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const std::string map_err = map == MAP_FAILED ? errno_text() : "";
  ::close(fd);
  if (map == MAP_FAILED) throw IoError(src + ": cannot mmap " + std::to_string(size) + " bytes: " + map_err);
  f->map_ = map;
  f->map_size_ = size;  // from here the destructor unmaps on any throw

  const auto* base = static_cast<const std::byte*>(map);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(base[i]);
  if (n > size - 8) {
    throw FormatError(src + ": header length " + std::to_string(n) + " runs past the end of the file (" +
                      std::to_string(size) + " bytes)");
  }
  const std::string_view header(reinterpret_cast<const char*>(base + 8), static_cast<std::size_t>(n));
  const std::size_t data_start = 8 + static_cast<std::size_t>(n);
  f->tensors_ = parse_safetensors_header(header, size - data_start, src, &f->metadata_);
  for (auto& [name, t] : f->tensors_) {
    t.data = base + data_start + reinterpret_cast<uintptr_t>(t.data);
  }
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, map_size_);
}

// ---- Checkpoint -------------------------------------------------------------------------------

Checkpoint Checkpoint::open(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  Checkpoint ck;
  ck.dir_ = dir;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw IoError(dir.string() + ": not a directory");
  const fs::path index_path = dir / "model.safetensors.index.json";
  const fs::path single_path = dir / "model.safetensors";
  if (fs::exists(index_path, ec)) {
    const std::string isrc = index_path.string();
    const json idx = read_json_file(index_path);
    if (!idx.is_object() || !idx.contains("weight_map") || !idx["weight_map"].is_object()) {
      throw FormatError(isrc + ": expected an object with a \"weight_map\" object");
    }
    std::map<std::string, std::shared_ptr<SafetensorsFile>> shards;
    for (const auto& [name, file] : idx["weight_map"].items()) {
      if (!file.is_string()) {
        throw FormatError(isrc + ": weight_map." + name + " is not a file name string");
      }
      const std::string shard = file.get<std::string>();
      if (shard.empty() || shard.find('/') != std::string::npos || shard == "..") {
        throw FormatError(isrc + ": weight_map." + name + " names '" + shard +
                          "', expected a file name inside the checkpoint directory");
      }
      if (!shards.count(shard)) {
        shards[shard] = std::shared_ptr<SafetensorsFile>(SafetensorsFile::open(dir / shard).release());
        ck.files_.push_back(shards[shard]);
      }
    }
    // Every tensor of every shard, with the shard that holds it: duplicates are an error.
    std::map<std::string, std::string> owner;
    for (const auto& [shard, file] : shards) {
      for (const auto& [name, t] : file->tensors()) {
        auto [it, inserted] = owner.emplace(name, shard);
        if (!inserted) {
          throw FormatError(dir.string() + ": tensor '" + name + "' is present in two shards: " + it->second +
                            " and " + shard);
        }
        ck.index_[name] = &t;
      }
    }
    for (const auto& [name, file] : idx["weight_map"].items()) {
      const std::string shard = file.get<std::string>();
      auto it = owner.find(name);
      if (it == owner.end()) {
        throw FormatError(isrc + ": tensor '" + name + "' is listed in shard " + shard + " but absent from it");
      }
      if (it->second != shard) {
        throw FormatError(isrc + ": tensor '" + name + "' is listed in shard " + shard + " but stored in " +
                          it->second);
      }
    }
  } else if (fs::exists(single_path, ec)) {
    ck.files_.push_back(std::shared_ptr<SafetensorsFile>(SafetensorsFile::open(single_path).release()));
    for (const auto& [name, t] : ck.files_.back()->tensors()) ck.index_[name] = &t;
  } else {
    throw IoError(dir.string() + ": no model.safetensors or model.safetensors.index.json");
  }
  return ck;
}

bool Checkpoint::has(const std::string& name) const { return index_.count(name) != 0; }

const TensorView& Checkpoint::get(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) throw FormatError(dir_.string() + ": tensor '" + name + "' not found");
  return *it->second;
}

const TensorView* Checkpoint::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  out.reserve(index_.size());
  for (const auto& [name, t] : index_) out.push_back(name);
  return out;
}

std::size_t Checkpoint::total_bytes() const {
  std::size_t n = 0;
  for (const auto& [name, t] : index_) n += t->nbytes;
  return n;
}

}  // namespace quench
