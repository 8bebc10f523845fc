// quench/server/bench_report.cpp: percentiles, table and JSON of a bench run.
#include "server/bench_report.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

namespace quench::server {

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  double pos = q / 100.0 * static_cast<double>(v.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos));
  size_t hi = std::min(lo + 1, v.size() - 1);
  double frac = pos - static_cast<double>(lo);
  return v[lo] + (v[hi] - v[lo]) * frac;
}

Distribution summarize(const std::vector<double>& v) {
  Distribution d;
  d.count = v.size();
  if (v.empty()) return d;
  d.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  d.p50 = percentile(v, 50);
  d.p90 = percentile(v, 90);
  d.p99 = percentile(v, 99);
  d.max = *std::max_element(v.begin(), v.end());
  return d;
}

BenchReport BenchReport::from_samples(const std::vector<RequestSample>& samples, double duration_s) {
  BenchReport r;
  r.duration_s = duration_s;
  std::vector<double> ttft, itl, lat, tpot;
  for (const auto& s : samples) {
    if (!s.ok) {
      ++r.failed;
      if (r.errors.size() < 5) r.errors.push_back(s.error);
      continue;
    }
    ++r.completed;
    r.total_prompt_tokens += s.prompt_tokens;
    r.total_output_tokens += s.output_tokens;
    ttft.push_back(s.ttft_s);
    lat.push_back(s.latency_s);
    itl.insert(itl.end(), s.itl_s.begin(), s.itl_s.end());
    if (s.output_tokens > 1) tpot.push_back((s.latency_s - s.ttft_s) / (s.output_tokens - 1));
  }
  if (duration_s > 0) {
    r.request_throughput = r.completed / duration_s;
    r.output_tok_s = static_cast<double>(r.total_output_tokens) / duration_s;
    r.total_tok_s = static_cast<double>(r.total_output_tokens + r.total_prompt_tokens) / duration_s;
  }
  r.ttft = summarize(ttft);
  r.itl = summarize(itl);
  r.latency = summarize(lat);
  r.tpot = summarize(tpot);
  return r;
}

std::string BenchReport::table() const {
  std::string t;
  auto row = [&](const std::string& k, const std::string& v) { t += fmt::format("{:<34}{:>16}\n", k, v); };
  auto ms = [](double s) { return fmt::format("{:.2f}", s * 1e3); };
  t += fmt::format("{:=^50}\n", " quench bench ");
  row("Target:", target);
  row("Endpoint:", endpoint);
  row("Prompts / concurrency:", fmt::format("{} / {}", num_prompts, concurrency));
  row("Input / output len:", fmt::format("{} / {} (ratio {})", input_len, output_len, random_range_ratio));
  row("Successful requests:", std::to_string(completed));
  row("Failed requests:", std::to_string(failed));
  row("Benchmark duration (s):", fmt::format("{:.2f}", duration_s));
  row("Total input tokens:", std::to_string(total_prompt_tokens));
  row("Total generated tokens:", std::to_string(total_output_tokens));
  row("Request throughput (req/s):", fmt::format("{:.2f}", request_throughput));
  row("Output token throughput (tok/s):", fmt::format("{:.2f}", output_tok_s));
  row("Total token throughput (tok/s):", fmt::format("{:.2f}", total_tok_s));
  t += fmt::format("{:-^50}\n", " Time to First Token ");
  row("Mean TTFT (ms):", ms(ttft.mean));
  row("P50 TTFT (ms):", ms(ttft.p50));
  row("P99 TTFT (ms):", ms(ttft.p99));
  t += fmt::format("{:-^50}\n", " Inter-token Latency ");
  row("Mean ITL (ms):", ms(itl.mean));
  row("P50 ITL (ms):", ms(itl.p50));
  row("P99 ITL (ms):", ms(itl.p99));
  row("Mean TPOT (ms):", ms(tpot.mean));
  t += fmt::format("{:-^50}\n", " Request Latency ");
  row("Mean latency (ms):", ms(latency.mean));
  row("P50 latency (ms):", ms(latency.p50));
  row("P99 latency (ms):", ms(latency.p99));
  t += fmt::format("{:=^50}\n", "");
  for (const auto& e : errors) t += "error: " + e + "\n";
  return t;
}

nlohmann::json BenchReport::to_json() const {
  auto dist = [](const Distribution& d) {
    return nlohmann::json{{"mean_ms", d.mean * 1e3}, {"p50_ms", d.p50 * 1e3}, {"p90_ms", d.p90 * 1e3},
                          {"p99_ms", d.p99 * 1e3}, {"max_ms", d.max * 1e3}, {"count", d.count}};
  };
  return {{"target", target}, {"endpoint", endpoint}, {"num_prompts", num_prompts}, {"concurrency", concurrency},
          {"input_len", input_len}, {"output_len", output_len}, {"random_range_ratio", random_range_ratio},
          {"duration_s", duration_s}, {"completed", completed}, {"failed", failed},
          {"total_input_tokens", total_prompt_tokens}, {"total_output_tokens", total_output_tokens},
          {"request_throughput", request_throughput}, {"output_throughput_tok_s", output_tok_s},
          {"total_token_throughput_tok_s", total_tok_s}, {"ttft", dist(ttft)}, {"itl", dist(itl)},
          {"tpot", dist(tpot)}, {"request_latency", dist(latency)}, {"errors", errors}};
}

}  // namespace quench::server
