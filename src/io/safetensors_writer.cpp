// quench/io/safetensors_writer.cpp: SafetensorsWriter and write_file_atomic.
//
// Output layout follows huggingface/safetensors: header JSON padded with spaces to a multiple of
// 8 bytes (so the data region is 8-byte aligned), tensors stored back to back in the order added.
#include "io/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace quench {

namespace {

std::string errno_text() { return std::strerror(errno); }

// Writes all of [p, p+n) to fd, retrying short writes and EINTR.
void write_all(int fd, const void* p, std::size_t n, const std::string& path) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t w = ::write(fd, c, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw IoError(path + ": write failed: " + errno_text());
    }
    c += w;
    n -= static_cast<std::size_t>(w);
  }
}

// Temp file in the target's directory, written by `fill`, fsynced, renamed over `path`, and the
// directory fsynced so the rename survives a crash. The temp file is removed on any failure.
template <typename Fill>
void write_atomically(const std::filesystem::path& path, Fill&& fill) {
  const std::string target = path.string();
  const std::string tmp = target + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError(tmp + ": cannot create: " + errno_text());
  try {
    fill(fd, tmp);
    if (::fsync(fd) != 0) throw IoError(tmp + ": fsync failed: " + errno_text());
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    const std::string e = errno_text();
    ::unlink(tmp.c_str());
    throw IoError(tmp + ": close failed: " + e);
  }
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    const std::string e = errno_text();
    ::unlink(tmp.c_str());
    throw IoError(target + ": cannot rename " + tmp + " into place: " + e);
  }
  std::filesystem::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);  // best effort: some filesystems refuse fsync on directories
    ::close(dfd);
  }
}

}  // namespace

void SafetensorsWriter::check_new(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                                  const void* data, std::size_t nbytes) const {
  if (name.empty() || name == "__metadata__") {
    throw InvalidArgument("safetensors writer: invalid tensor name '" + name + "'");
  }
  for (const auto& e : entries_) {
    if (e.name == name) throw InvalidArgument("safetensors writer: tensor '" + name + "' added twice");
  }
  std::size_t need = dtype_size(dtype);
  for (int64_t d : shape) {
    if (d < 0) {
      throw InvalidArgument("safetensors writer: tensor '" + name + "' has negative dimension " +
                            std::to_string(d));
    }
    need *= static_cast<std::size_t>(d);
  }
  if (need != nbytes) {
    TensorView v;
    v.shape = shape;
    throw InvalidArgument("safetensors writer: tensor '" + name + "': shape " + v.shape_str() + " x " +
                          std::string(dtype_name(dtype)) + " needs " + std::to_string(need) +
                          " bytes, got " + std::to_string(nbytes));
  }
  if (nbytes && data == nullptr) {
    throw InvalidArgument("safetensors writer: tensor '" + name + "': null data for " +
                          std::to_string(nbytes) + " bytes");
  }
}

void SafetensorsWriter::add(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                            const void* data, std::size_t nbytes) {
  check_new(name, dtype, shape, data, nbytes);
  Entry e{name, dtype, shape, std::vector<std::byte>(nbytes), nullptr, nbytes};
  if (nbytes) std::memcpy(e.bytes.data(), data, nbytes);
  entries_.push_back(std::move(e));
}

void SafetensorsWriter::add_borrowed(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                                     const void* data, std::size_t nbytes) {
  check_new(name, dtype, shape, data, nbytes);
  entries_.push_back(Entry{name, dtype, shape, {}, static_cast<const std::byte*>(data), nbytes});
}

void SafetensorsWriter::set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

std::size_t SafetensorsWriter::bytes_pending() const {
  std::size_t n = 0;
  for (const auto& e : entries_) n += e.nbytes;
  return n;
}

void SafetensorsWriter::write(const std::filesystem::path& path) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  std::size_t offset = 0;
  for (const auto& e : entries_) {
    header[e.name] = {{"dtype", std::string(dtype_name(e.dtype))},
                      {"shape", e.shape},
                      {"data_offsets", {offset, offset + e.nbytes}}};
    offset += e.nbytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  write_atomically(path, [&](int fd, const std::string& tmp) {
    unsigned char len[8];
    uint64_t n = text.size();
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));
    write_all(fd, len, 8, tmp);
    write_all(fd, text.data(), text.size(), tmp);
    for (const auto& e : entries_) write_all(fd, e.data(), e.nbytes, tmp);
  });
  entries_.clear();
  metadata_.clear();
}

void write_file_atomic(const std::filesystem::path& path, std::string_view content) {
  write_atomically(path, [&](int fd, const std::string& tmp) { write_all(fd, content.data(), content.size(), tmp); });
}

}  // namespace quench
