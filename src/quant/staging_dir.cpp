// quench/quant/staging_dir.cpp: see staging_dir.h.
#include "quant/staging_dir.h"

#include <unistd.h>

#include <algorithm>
#include <system_error>

#include <fmt/format.h>

#include "core/error.h"  // InvalidArgument, IoError

namespace fs = std::filesystem;

namespace quench {

StagingDir::StagingDir(fs::path final_dir) : final_(std::move(final_dir)) {
  if (final_.filename().empty()) final_ = final_.parent_path();  // "out/" -> "out"
  std::error_code ec;
  if (fs::exists(final_, ec)) {
    if (!fs::is_directory(final_) || !fs::is_empty(final_))
      throw InvalidArgument(fmt::format("output directory '{}' already exists and is not empty "
                                        "(remove it or choose another OUT_DIR)", final_.string()));
  }
  fs::path parent = final_.parent_path();
  if (parent.empty()) parent = ".";
  if (!fs::is_directory(parent, ec))
    throw InvalidArgument(fmt::format("output directory '{}': parent '{}' does not exist", final_.string(),
                                      parent.string()));
  staging_ = parent / fmt::format(".{}.partial-{}", final_.filename().string(), ::getpid());
  fs::remove_all(staging_, ec);
  if (!fs::create_directory(staging_, ec))
    throw IoError(fmt::format("cannot create staging directory '{}': {}", staging_.string(), ec.message()));
}

StagingDir::~StagingDir() {
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(staging_, ec);
}

void StagingDir::commit() {
  std::error_code ec;
  if (fs::exists(final_, ec)) fs::remove(final_, ec);  // empty directory checked in the constructor
  fs::rename(staging_, final_, ec);
  if (ec)
    throw IoError(fmt::format("cannot rename '{}' to '{}': {}", staging_.string(), final_.string(), ec.message()));
  committed_ = true;
}

std::vector<std::string> copy_auxiliary_files(const fs::path& src, const fs::path& dst) {
  std::vector<std::string> copied;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(src, ec)) {
    if (!e.is_regular_file()) continue;
    const std::string name = e.path().filename().string();
    if (name.ends_with(".safetensors") || name == "model.safetensors.index.json" || name == "config.json" ||
        name == "hf_quant_config.json" || name.starts_with("."))
      continue;
    fs::copy_file(e.path(), dst / name, fs::copy_options::overwrite_existing, ec);
    if (ec) throw IoError(fmt::format("cannot copy '{}' to '{}': {}", e.path().string(), (dst / name).string(), ec.message()));
    copied.push_back(name);
  }
  if (ec) throw IoError(fmt::format("cannot list '{}': {}", src.string(), ec.message()));
  std::sort(copied.begin(), copied.end());
  return copied;
}

}  // namespace quench
