// quench/ablate/output.h: writes the ablated checkpoint: the input directory's layout carried over
// (config, tokenizer, chat template, generation config, processor files, the safetensors index and
// every tensor, vision tensors included) with the edited tensors replaced, plus the JSON record
// `ablation.json`. Built in a staging directory and renamed into place, so an interrupted run never
// leaves a directory that looks whole.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "ablate/edit.h"

namespace quench::ablate {

/// Writes `out_dir` from `in_dir` with `edited` replacing tensors of the same name (dtype and
/// shape must match the original). `record_json` is written as out_dir/ablation.json. Shards keep
/// their file names and metadata, so the input's model.safetensors.index.json stays valid and is
/// copied. Throws InvalidArgument when out_dir exists and is not an empty directory or an edited
/// tensor is absent from the input, IoError / FormatError from reading and writing.
void write_ablated_checkpoint(const std::filesystem::path& in_dir, const std::filesystem::path& out_dir,
                              const std::vector<EditedTensor>& edited, const std::string& record_json);

}  // namespace quench::ablate
