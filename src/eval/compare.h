// quench/eval/compare.h: paired bootstrap comparison of two eval reports (`quench eval compare`).
//
// For each metric both reports measured, items are paired by id (the intersection; unmatched ids
// are counted). The delta is B - A in percentage points. Its 95% interval is the 2.5th/97.5th
// percentile of the delta over `resamples` paired bootstrap resamples of the items (Efron &
// Tibshirani 1993, ch. 13, percentile interval), drawn with the seeded splitmix64 stream, so the
// output is reproducible. Ratio metrics (IFEval instruction-level) resample prompts and recompute
// the pooled ratio (cluster bootstrap).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace quench::eval {

/// One compared metric.
struct MetricDelta {
  std::string task, metric;
  double a = 0, b = 0;            ///< scores in percent on the paired items
  double delta = 0;               ///< b - a, points
  double ci_low = 0, ci_high = 0; ///< 95% percentile interval of the delta, points
  std::size_t n = 0;              ///< paired items
  std::size_t unmatched = 0;      ///< items present in only one report
};

/// Compares report `a` with report `b`. Throws FormatError when they share no task.
std::vector<MetricDelta> compare_reports(const nlohmann::json& a, const nlohmann::json& b, int resamples = 10000,
                                         std::uint64_t seed = 20231107);

/// Text table of the deltas ("metric | A | B | delta | 95% CI | n"), with "*" where the interval
/// excludes 0.
std::string render_compare(const std::string& name_a, const std::string& name_b, const std::vector<MetricDelta>& d);

}  // namespace quench::eval
