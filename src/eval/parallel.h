// quench/eval/parallel.h: run N items over a pool of worker threads, with a progress bar.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

namespace quench::eval {

/// Calls `work(worker, i)` for every i in [0, n) on `concurrency` threads (worker = 0..concurrency-1,
/// so a worker can keep per-thread state such as an HTTP client). Items are handed out in order.
/// The first exception stops the hand-out; it is rethrown after all threads finish. When
/// `progress` is true a bar "[label] done/n pct it/s" is drawn on stderr (redrawn in place on a
/// terminal, a line per 10% otherwise).
void parallel_for(std::size_t n, int concurrency, const std::string& label, bool progress,
                  const std::function<void(int worker, std::size_t i)>& work);

}  // namespace quench::eval
