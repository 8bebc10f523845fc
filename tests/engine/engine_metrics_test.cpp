// tests/engine/engine_metrics_test.cpp: cumulative Prometheus buckets and vLLM's bucket edges.
#include "engine/engine_metrics.h"

#include <gtest/gtest.h>

namespace quench {
namespace {

TEST(Histogram, BucketsAreCumulative) {
  Histogram h({0.1, 1.0, 10.0});
  h.observe(0.05);
  h.observe(0.1);  // on the edge: counts as <= 0.1
  h.observe(5.0);
  h.observe(100.0);
  EXPECT_EQ(h.counts, (std::vector<uint64_t>{2, 2, 3}));
  EXPECT_EQ(h.count, 4u);
  EXPECT_DOUBLE_EQ(h.sum, 105.15);
}

TEST(Histogram, VllmBucketEdges) {
  // openai-api.md §5 (vLLM v0.10): TTFT 22 edges from 0.001 to 2560, per-token 19 edges to 80.
  EXPECT_EQ(ttft_buckets().size(), 22u);
  EXPECT_DOUBLE_EQ(ttft_buckets().front(), 0.001);
  EXPECT_DOUBLE_EQ(ttft_buckets().back(), 2560.0);
  EXPECT_EQ(inter_token_buckets().size(), 19u);
  EXPECT_DOUBLE_EQ(inter_token_buckets().back(), 80.0);
  EXPECT_EQ(request_latency_buckets().size(), 21u);
  EXPECT_DOUBLE_EQ(request_latency_buckets().back(), 7680.0);
  EngineMetrics m;
  EXPECT_EQ(m.time_to_first_token.counts.size(), 22u);
}

}  // namespace
}  // namespace quench
