// quench/quant/shard_writer.cpp: see shard_writer.h.
#include "quant/shard_writer.h"

#include <cerrno>
#include <cstring>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"          // InvalidArgument, IoError
#include "io/safetensors.h"      // write_file_atomic

namespace quench {

std::size_t PlannedTensor::nbytes() const {
  std::size_t n = 1;
  for (int64_t d : shape) n *= static_cast<std::size_t>(d);
  return n * dtype_size(dtype);
}

ShardedSafetensorsWriter::ShardedSafetensorsWriter(std::filesystem::path dir,
                                                   std::vector<PlannedTensor> plan,
                                                   std::size_t max_shard_bytes,
                                                   std::map<std::string, std::string> metadata)
    : dir_(std::move(dir)), plan_(std::move(plan)), metadata_(std::move(metadata)) {
  std::set<std::string> seen;
  std::size_t shard = 0, in_shard = 0;
  for (const auto& t : plan_) {
    if (!seen.insert(t.name).second)
      throw InvalidArgument(fmt::format("{}: tensor '{}' planned twice", dir_.string(), t.name));
    const std::size_t n = t.nbytes();
    if (in_shard > 0 && in_shard + n > max_shard_bytes) {
      ++shard;
      in_shard = 0;
    }
    shard_of_.push_back(shard);
    in_shard += n;
    total_bytes_ += n;
  }
  const std::size_t nshards = plan_.empty() ? 1 : shard + 1;
  for (std::size_t s = 0; s < nshards; ++s)
    shard_files_.push_back(nshards == 1 ? std::string("model.safetensors")
                                        : fmt::format("model-{:05d}-of-{:05d}.safetensors", s + 1, nshards));
  metadata_["format"] = "pt";
}

ShardedSafetensorsWriter::~ShardedSafetensorsWriter() {
  if (file_) std::fclose(file_);
}

void ShardedSafetensorsWriter::open_shard(std::size_t s) {
  if (file_) {
    if (std::fclose(file_) != 0)
      throw IoError(fmt::format("{}: close failed: {}", shard_files_[open_shard_], std::strerror(errno)));
    file_ = nullptr;
  }
  nlohmann::ordered_json header;
  header["__metadata__"] = metadata_;
  std::size_t off = 0;
  for (std::size_t i = 0; i < plan_.size(); ++i) {
    if (shard_of_[i] != s) continue;
    const auto& t = plan_[i];
    header[t.name] = {{"dtype", std::string(dtype_name(t.dtype))},
                      {"shape", t.shape},
                      {"data_offsets", {off, off + t.nbytes()}}};
    off += t.nbytes();
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');
  const auto path = dir_ / shard_files_[s];
  file_ = std::fopen(path.c_str(), "wb");
  if (!file_) throw IoError(fmt::format("{}: cannot create: {}", path.string(), std::strerror(errno)));
  std::setvbuf(file_, nullptr, _IOFBF, 1 << 22);
  const uint64_t len = h.size();
  unsigned char le[8];
  for (int i = 0; i < 8; ++i) le[i] = static_cast<unsigned char>(len >> (8 * i));
  if (std::fwrite(le, 1, 8, file_) != 8 || std::fwrite(h.data(), 1, h.size(), file_) != h.size())
    throw IoError(fmt::format("{}: write failed: {}", path.string(), std::strerror(errno)));
  open_shard_ = s;
}

void ShardedSafetensorsWriter::append(const std::string& name, const void* data, std::size_t nbytes) {
  while (next_ < plan_.size() && written_of_next_ == plan_[next_].nbytes() && plan_[next_].name != name) {
    ++next_;
    written_of_next_ = 0;
  }
  if (next_ >= plan_.size() || plan_[next_].name != name)
    throw InvalidArgument(fmt::format("{}: tensor '{}' written out of plan order (expected '{}')",
                                      dir_.string(), name,
                                      next_ < plan_.size() ? plan_[next_].name : "<end>"));
  const auto& t = plan_[next_];
  if (written_of_next_ + nbytes > t.nbytes())
    throw InvalidArgument(fmt::format("{}: tensor '{}' {} {}: {} bytes written, expected {}",
                                      dir_.string(), name, dtype_name(t.dtype), fmt::join(t.shape, "x"),
                                      written_of_next_ + nbytes, t.nbytes()));
  if (shard_of_[next_] != open_shard_) open_shard(shard_of_[next_]);
  if (nbytes > 0 && std::fwrite(data, 1, nbytes, file_) != nbytes)
    throw IoError(fmt::format("{}: write failed: {}", (dir_ / shard_files_[open_shard_]).string(),
                              std::strerror(errno)));
  written_of_next_ += nbytes;
}

void ShardedSafetensorsWriter::finish() {
  if (finished_) return;
  // Zero-byte tensors need no append; skip past complete ones.
  for (std::size_t i = next_; i < plan_.size(); ++i) {
    const std::size_t done = (i == next_) ? written_of_next_ : 0;
    if (done != plan_[i].nbytes())
      throw InvalidArgument(fmt::format("{}: tensor '{}' incomplete: {} of {} bytes written",
                                        dir_.string(), plan_[i].name, done, plan_[i].nbytes()));
  }
  // Shards that received no append (all tensors empty) still need their header.
  for (std::size_t s = 0; s < shard_files_.size(); ++s)
    if (!std::filesystem::exists(dir_ / shard_files_[s]) && s != open_shard_) open_shard(s);
  if (file_) {
    if (std::fclose(file_) != 0)
      throw IoError(fmt::format("{}: close failed: {}", shard_files_[open_shard_], std::strerror(errno)));
    file_ = nullptr;
  }
  if (shard_files_.size() > 1) {
    nlohmann::ordered_json index;
    index["metadata"] = {{"total_size", total_bytes_}};
    nlohmann::json wm = nlohmann::json::object();
    for (std::size_t i = 0; i < plan_.size(); ++i) wm[plan_[i].name] = shard_files_[shard_of_[i]];
    index["weight_map"] = wm;
    write_file_atomic(dir_ / "model.safetensors.index.json", index.dump(2) + "\n");
  }
  finished_ = true;
}

}  // namespace quench
