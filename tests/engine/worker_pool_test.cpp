// tests/engine/worker_pool_test.cpp: every index runs exactly once, on valid workers, job after job.
#include "engine/worker_pool.h"

#include <atomic>

#include <gtest/gtest.h>

namespace quench {
namespace {

TEST(WorkerPool, RunsEveryIndexOnceAcrossRepeatedJobs) {
  WorkerPool pool(4);
  EXPECT_EQ(pool.num_workers(), 4);
  for (size_t n : {0u, 1u, 3u, 100u, 1000u}) {
    std::vector<std::atomic<int>> hits(n);
    std::atomic<int> bad_worker{0};
    pool.run(n, [&](size_t i, int w) {
      hits[i]++;
      if (w < 0 || w >= 4) bad_worker++;
    });
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "n " << n << " i " << i;
    EXPECT_EQ(bad_worker.load(), 0);
  }
}

TEST(WorkerPool, SingleWorkerRunsInline) {
  WorkerPool pool(1);
  int sum = 0;  // no synchronisation needed: everything on the caller
  pool.run(10, [&](size_t i, int w) { sum += static_cast<int>(i) + w; });
  EXPECT_EQ(sum, 45);
}

}  // namespace
}  // namespace quench
