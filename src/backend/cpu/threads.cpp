// quench/backend/cpu/threads.cpp: load-aware OpenMP thread counts (threads.h).
#include "backend/cpu/threads.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>

#include <omp.h>

namespace quench {
namespace {

constexpr int64_t kParallelMinWork = int64_t(1) << 23;

/// Cores not busy with other work (at least 1), from getloadavg(); cached for 200 ms.
int free_cores() {
  static std::atomic<int64_t> last_ms{-1'000'000};
  static std::atomic<int> cached{1};
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now().time_since_epoch()).count();
  if (now - last_ms.load(std::memory_order_relaxed) >= 200) {
    double load = 0.0;
    const int procs = omp_get_num_procs();
    int free = procs;
    if (getloadavg(&load, 1) == 1) free = procs - static_cast<int>(std::floor(load)) + 1;  // +1: ourselves
    cached.store(std::clamp(free, 1, procs), std::memory_order_relaxed);
    last_ms.store(now, std::memory_order_relaxed);
  }
  return cached.load(std::memory_order_relaxed);
}

}  // namespace

int cpu_threads_for(int64_t work) {
  if (work < kParallelMinWork) return 1;
  return std::max(1, std::min(omp_get_max_threads(), free_cores()));
}

}  // namespace quench
