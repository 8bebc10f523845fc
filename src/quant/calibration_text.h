// quench/quant/calibration_text.h: calibration and held-out texts for `quench quantize`.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace quench {

/// Reads calibration samples from `path`: a `.jsonl`/`.json` file holds one JSON object per line
/// whose "text" field (else "article", "content", "prompt") is one sample; anything else is plain
/// text, split into samples at blank lines. Empty samples are dropped; at most `max_samples`
/// (0 = all) are returned. Throws IoError (unreadable) or FormatError naming the file and line
/// (bad JSON, no text field, no sample at all).
std::vector<std::string> load_calibration_texts(const std::filesystem::path& path, int max_samples);

/// The built-in calibration sample: short English prose, dialogue, code, arithmetic and lists,
/// written for quench (no external dataset), so every Linear sees varied activations.
const std::vector<std::string>& builtin_calibration_texts();

/// Built-in held-out texts for the quality report (disjoint from the calibration sample).
const std::vector<std::string>& builtin_heldout_texts();

}  // namespace quench
