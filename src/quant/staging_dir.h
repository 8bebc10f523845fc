// quench/quant/staging_dir.h: a checkpoint directory built under a temporary name and renamed
// into place at the end, so an interrupted run never leaves a directory that looks whole.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace quench {

/// Creates `<parent>/.<name>.partial-<pid>` for the final directory `final_dir`. The destructor
/// removes the staging directory unless commit() succeeded.
class StagingDir {
 public:
  /// Throws InvalidArgument when `final_dir` exists and is not an empty directory, IoError when
  /// the staging directory cannot be created.
  explicit StagingDir(std::filesystem::path final_dir);
  ~StagingDir();
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;

  const std::filesystem::path& path() const { return staging_; }
  const std::filesystem::path& final_path() const { return final_; }
  /// Renames the staging directory to the final name (an existing empty final dir is removed
  /// first). Throws IoError naming both paths.
  void commit();

 private:
  std::filesystem::path final_, staging_;
  bool committed_ = false;
};

/// Copies every regular file of `src` into `dst` except safetensors data, the safetensors index,
/// config.json and hf_quant_config.json (tokenizer, chat template, generation config, processor
/// files ...). Returns the copied file names. Throws IoError.
std::vector<std::string> copy_auxiliary_files(const std::filesystem::path& src, const std::filesystem::path& dst);

}  // namespace quench
