// quench/ablate/output.cpp: see output.h.
#include "ablate/output.h"

#include <unistd.h>

#include <map>
#include <set>
#include <system_error>

#include "core/error.h"
#include "io/safetensors.h"

namespace quench::ablate {

namespace fs = std::filesystem;

namespace {

// Removes the staging directory unless released.
struct StagingGuard {
  fs::path path;
  bool keep = false;
  ~StagingGuard() {
    if (!keep) {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  }
};

}  // namespace

void write_ablated_checkpoint(const fs::path& in_dir, const fs::path& out_dir, const std::vector<EditedTensor>& edited,
                              const std::string& record_json) {
  std::error_code ec;
  if (fs::exists(out_dir) && !(fs::is_directory(out_dir) && fs::is_empty(out_dir)))
    throw InvalidArgument("OUT_DIR '" + out_dir.string() + "' exists and is not an empty directory");
  const fs::path final_dir = fs::absolute(out_dir).lexically_normal();
  const fs::path parent = final_dir.parent_path();
  fs::create_directories(parent, ec);
  if (ec) throw IoError("cannot create '" + parent.string() + "': " + ec.message());
  StagingGuard staging{parent / ("." + final_dir.filename().string() + ".partial-" + std::to_string(getpid()))};
  fs::remove_all(staging.path, ec);
  if (!fs::create_directory(staging.path, ec) || ec)
    throw IoError("cannot create staging directory '" + staging.path.string() + "': " + ec.message());

  std::map<std::string, const EditedTensor*> by_name;
  for (const auto& e : edited) by_name[e.name] = &e;
  std::set<std::string> written;
  for (const auto& entry : fs::directory_iterator(in_dir)) {
    if (!entry.is_regular_file()) continue;
    const fs::path src = entry.path();
    const fs::path dst = staging.path / src.filename();
    if (src.extension() != ".safetensors") {
      if (!fs::copy_file(src, dst, fs::copy_options::overwrite_existing, ec) || ec)
        throw IoError("cannot copy '" + src.string() + "' to '" + dst.string() + "': " + ec.message());
      continue;
    }
    auto file = SafetensorsFile::open(src);
    SafetensorsWriter w;
    for (const auto& [key, value] : file->metadata()) w.set_metadata(key, value);
    for (const auto& [name, view] : file->tensors()) {
      auto it = by_name.find(name);
      if (it == by_name.end()) {
        w.add(view);
        continue;
      }
      const EditedTensor& e = *it->second;
      if (e.dtype != view.dtype || e.shape != view.shape)
        throw InvalidArgument(src.string() + ": edited tensor '" + name + "' changed dtype or shape");
      w.add(name, e.dtype, e.shape, e.bytes.data(), e.bytes.size());
      written.insert(name);
    }
    w.write(dst);
  }
  for (const auto& e : edited)
    if (!written.count(e.name)) throw InvalidArgument(in_dir.string() + ": edited tensor '" + e.name + "' not found in any shard");
  write_file_atomic(staging.path / "ablation.json", record_json);
  if (fs::exists(final_dir)) fs::remove(final_dir, ec);  // an empty directory (checked above)
  fs::rename(staging.path, final_dir, ec);
  if (ec) throw IoError("cannot rename '" + staging.path.string() + "' to '" + final_dir.string() + "': " + ec.message());
  staging.keep = true;
}

}  // namespace quench::ablate
