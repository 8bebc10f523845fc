// quench/quant/quantize.h: the whole `quench quantize` job: calibrate on text (CPU forward),
// export the ModelOpt checkpoint into a staging directory, measure quality against the BF16
// model, write the report, rename into place.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "quant/calibration.h"  // CalibrationOptions, ActivationAmax
#include "quant/export.h"       // ExportOptions, ExportReport
#include "quant/quality.h"      // LogitQuality
#include "quant/skill_eval.h"   // SkillItem, SkillScore

namespace quench {

/// Everything `quench quantize` takes.
struct QuantizeJob {
  std::filesystem::path in_dir, out_dir;
  ExportOptions export_options;
  std::filesystem::path calib_file;   ///< empty = built-in sample
  CalibrationOptions calib;           ///< calib.max_samples == 0: no calibration (NVFP4 -> W4A16_NVFP4)
  int quality_samples = 6;            ///< held-out texts for KL / top-1 / perplexity (0 = skip)
  std::filesystem::path heldout_file; ///< empty = built-in held-out texts
  std::filesystem::path report_file;  ///< extra copy of the JSON report (empty = only OUT_DIR/quantization_report.json)
  /// Named skill sets scored (greedy chat replies) on the BF16 and the quantized model.
  std::vector<std::pair<std::string, std::vector<SkillItem>>> skills;
  int skill_max_new_tokens = 128;
};

/// One skill before and after quantization.
struct SkillComparison {
  SkillScore bf16, quantized;
};

/// Outcome of a job (also written as JSON).
struct QuantizeResult {
  ExportReport export_report;
  std::optional<ActivationAmax> calibration;
  std::optional<LogitQuality> quality;
  std::vector<SkillComparison> skills;
  double seconds_skills = 0.0;
  double seconds_total = 0.0, seconds_calibration = 0.0, seconds_export = 0.0, seconds_quality = 0.0;
  std::size_t peak_rss_bytes = 0;
  nlohmann::ordered_json report;      ///< the JSON written to quantization_report.json
};

/// Runs the job. The checkpoint appears at out_dir only when everything succeeded (StagingDir).
/// Throws InvalidArgument (missing tokenizer.json with calibration or quality enabled, bad
/// options), and whatever calibration, export and loading throw.
QuantizeResult run_quantize(const QuantizeJob& job);

/// Human-readable summary (several lines) of a result: sizes, time, peak RSS, weight error by
/// projection, KL / top-1 / perplexity.
std::string format_quantize_summary(const QuantizeJob& job, const QuantizeResult& r);

}  // namespace quench
