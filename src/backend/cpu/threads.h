// quench/backend/cpu/threads.h: how many OpenMP threads a CPU op should use.
#pragma once

#include <cstdint>

namespace quench {

/// Threads for an op of `work` multiply-adds (or comparable element operations):
///  - 1 below ~8M (a parallel region costs microseconds, and libgomp's idle workers spin for
///    milliseconds afterwards, stealing the core from the serial code that follows);
///  - otherwise omp_get_max_threads(), reduced to the cores not already busy according to the
///    1-minute load average (refreshed at most every 200 ms): on an oversubscribed machine the
///    barrier of a parallel region waits for descheduled threads and runs slower than one thread.
int cpu_threads_for(int64_t work);

}  // namespace quench
