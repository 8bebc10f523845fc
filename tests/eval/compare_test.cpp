// Tests for src/eval/compare.cpp and report.cpp: paired bootstrap intervals on crafted reports
// (identical reports give [0, 0]; a large real difference excludes 0; a tiny one includes it;
// the pooled instruction-level ratio), the table layout and the report file round trip.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "eval/compare.h"
#include "eval/report.h"

namespace quench::eval {
namespace {

using nlohmann::json;

json mmlu_report(const std::string& model, int n, int correct_from) {
  json items = json::array();
  for (int i = 0; i < n; ++i) items.push_back({{"id", "s/test/" + std::to_string(i)}, {"correct", i >= correct_from}});
  return {{"format", "quench-eval-report/1"},
          {"model", model},
          {"tasks", {{"mmlu", {{"summary", {{"n", n}, {"accuracy", double(n - correct_from) / n}}}, {"items", items}}}}}};
}

TEST(Compare, IdenticalReportsHaveZeroDelta) {
  const auto a = mmlu_report("a", 100, 40);
  const auto d = compare_reports(a, a, 2000);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_DOUBLE_EQ(d[0].a, 60.0);
  EXPECT_DOUBLE_EQ(d[0].delta, 0.0);
  EXPECT_DOUBLE_EQ(d[0].ci_low, 0.0);
  EXPECT_DOUBLE_EQ(d[0].ci_high, 0.0);
  EXPECT_EQ(d[0].n, 100u);
}

TEST(Compare, LargeDropExcludesZeroSmallOneDoesNot) {
  const auto a = mmlu_report("a", 200, 40);   // 80%
  const auto b = mmlu_report("b", 200, 100);  // 50%: B wrong on 60 items A got right
  const auto d = compare_reports(a, b, 4000)[0];
  EXPECT_NEAR(d.delta, -30.0, 1e-9);
  EXPECT_LT(d.ci_high, 0.0);
  // Paired: every discordant item goes the same way, so the interval is about +-1.96 sqrt(p(1-p)/n).
  EXPECT_NEAR(d.ci_low, -30.0 - 1.96 * 100 * std::sqrt(0.3 * 0.7 / 200), 1.5);
  const auto c = mmlu_report("c", 200, 42);   // 79%: one point
  const auto e = compare_reports(a, c, 4000)[0];
  EXPECT_NEAR(e.delta, -1.0, 1e-9);
  EXPECT_LE(e.ci_low, -1.0);
  EXPECT_GE(e.ci_high, 0.0);
  // Deterministic for a seed.
  EXPECT_DOUBLE_EQ(compare_reports(a, b, 500, 9)[0].ci_low, compare_reports(a, b, 500, 9)[0].ci_low);
}

TEST(Compare, UnmatchedIdsAndRatioMetric) {
  json a = {{"format", "quench-eval-report/1"}, {"model", "a"}, {"tasks", {{"ifeval", {{"items", json::array()}}}}}};
  json b = a;
  auto inst = [](bool x, bool y) {
    return json::array({{{"strict", x}, {"loose", x}}, {{"strict", y}, {"loose", true}}});
  };
  a["tasks"]["ifeval"]["items"] = json::array({{{"id", 1}, {"follow_all_strict", false}, {"follow_all_loose", false}, {"instructions", inst(true, false)}},
                                                {{"id", 2}, {"follow_all_strict", true}, {"follow_all_loose", true}, {"instructions", inst(true, true)}}});
  b["tasks"]["ifeval"]["items"] = json::array({{{"id", 1}, {"follow_all_strict", true}, {"follow_all_loose", true}, {"instructions", inst(true, true)}},
                                                {{"id", 3}, {"follow_all_strict", true}, {"follow_all_loose", true}, {"instructions", inst(true, true)}}});
  const auto d = compare_reports(a, b, 200);
  ASSERT_EQ(d.size(), 4u);
  EXPECT_EQ(d[0].metric, "prompt_level_strict_acc");
  EXPECT_EQ(d[0].n, 1u);
  EXPECT_EQ(d[0].unmatched, 2u);
  EXPECT_DOUBLE_EQ(d[1].a, 50.0);  // inst strict on the paired prompt: 1 of 2
  EXPECT_DOUBLE_EQ(d[1].b, 100.0);
  EXPECT_THROW(compare_reports(a, mmlu_report("m", 3, 1)), FormatError);
}

TEST(Report, TableLayoutAndFileRoundTrip) {
  json r = mmlu_report("tiny-bf16", 4, 1);
  r["tasks"]["humaneval"] = {{"summary", {{"n", 40}, {"syntactic", 0.975}, {"functional", 0.5}}}};
  const std::string t = render_table({r});
  EXPECT_EQ(t,
            "| model | MMLU (n) | HumanEval-syn (n) | HumanEval-fun (n) | IFEval (n) |\n"
            "|---|---|---|---|---|\n"
            "| tiny-bf16 | 75.0 (4) | 97.5 (40) | 50.0 (40) | - |\n");
  const auto path = std::filesystem::temp_directory_path() / ("quench-report-test-" + std::to_string(::getpid()) + ".json");
  write_json_atomic(path, r);
  EXPECT_EQ(read_report(path), r);
  std::filesystem::remove(path);
  const auto bad = std::filesystem::temp_directory_path() / ("quench-report-bad-" + std::to_string(::getpid()) + ".json");
  write_json_atomic(bad, json{{"x", 1}});
  EXPECT_THROW(read_report(bad), FormatError);
  std::filesystem::remove(bad);
  EXPECT_THROW(read_report("/nonexistent/quench.json"), IoError);
}

}  // namespace
}  // namespace quench::eval
