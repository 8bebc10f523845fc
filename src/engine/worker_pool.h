// quench/engine/worker_pool.h: a small fixed pool of threads for data-parallel loops on the engine
// thread (per-sequence sampling of a large batch over a 262k-entry vocabulary).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace quench {

class WorkerPool {
 public:
  /// `num_workers` >= 1 counts the calling thread: num_workers - 1 threads are started.
  explicit WorkerPool(int num_workers);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  int num_workers() const { return static_cast<int>(threads_.size()) + 1; }

  /// Calls fn(i, worker) for every i in [0, n), spread over the workers (worker 0 is the caller);
  /// returns when all calls returned. `fn` must not throw. Not reentrant; one caller at a time.
  void run(size_t n, const std::function<void(size_t, int)>& fn);

 private:
  void work(int worker);
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  const std::function<void(size_t, int)>* fn_ = nullptr;
  size_t n_ = 0;
  std::atomic<size_t> next_{0};
  int busy_ = 0;            ///< background workers still in the current job
  uint64_t generation_ = 0; ///< bumped per job
  bool stop_ = false;
};

}  // namespace quench
