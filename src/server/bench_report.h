// quench/server/bench_report.h: measurements of a load-generation run (`quench bench`) and their summary.
//
// Definitions follow vLLM's benchmark_serving.py: TTFT = request sent -> first generated token
// received; ITL = gap between successive token-bearing stream events of one request; request
// latency = sent -> last byte; output tok/s = generated tokens / wall time of the run; total tok/s =
// (prompt + generated tokens) / wall time. Percentiles use linear interpolation between order
// statistics (numpy.percentile's default).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace quench::server {

/// One request's measurements.
struct RequestSample {
  bool ok = false;
  std::string error;
  int prompt_tokens = 0;
  int output_tokens = 0;
  double ttft_s = 0.0;
  double latency_s = 0.0;
  std::vector<double> itl_s;  ///< inter-token gaps
};

/// Summary statistics of one distribution (seconds).
struct Distribution {
  double mean = 0, p50 = 0, p90 = 0, p99 = 0, max = 0;
  size_t count = 0;
};

/// Linear-interpolated percentile q in [0, 100] of `v` (unsorted); 0 for an empty vector.
double percentile(std::vector<double> v, double q);
Distribution summarize(const std::vector<double>& v);

struct BenchReport {
  std::string target;  ///< base URL or "in-process:<model dir>"
  std::string endpoint;
  int num_prompts = 0, concurrency = 0, input_len = 0, output_len = 0;
  double random_range_ratio = 0;
  double duration_s = 0;
  int completed = 0, failed = 0;
  long total_prompt_tokens = 0, total_output_tokens = 0;
  double request_throughput = 0;  ///< completed requests / s
  double output_tok_s = 0;
  double total_tok_s = 0;
  Distribution ttft, itl, latency, tpot;
  std::vector<std::string> errors;  ///< first few error messages

  /// Fills the derived fields from the samples and the wall time.
  static BenchReport from_samples(const std::vector<RequestSample>& samples, double duration_s);
  /// A fixed-width text table (milliseconds for latencies).
  std::string table() const;
  nlohmann::json to_json() const;
};

}  // namespace quench::server
