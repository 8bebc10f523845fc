// quench/engine/worker_pool.cpp: persistent threads taking loop indices from an atomic counter.
#include "engine/worker_pool.h"

#include <algorithm>

namespace quench {

WorkerPool::WorkerPool(int num_workers) {
  for (int w = 1; w < std::max(1, num_workers); ++w) threads_.emplace_back([this, w] { work(w); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  start_cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void WorkerPool::work(int worker) {
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(size_t, int)>* fn;
    size_t n;
    {
      std::unique_lock lock(mu_);
      start_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      fn = fn_;
      n = n_;
    }
    for (size_t i = next_++; i < n; i = next_++) (*fn)(i, worker);
    {
      std::lock_guard lock(mu_);
      if (--busy_ == 0) done_cv_.notify_one();
    }
  }
}

void WorkerPool::run(size_t n, const std::function<void(size_t, int)>& fn) {
  if (threads_.empty() || n < 2) {
    for (size_t i = 0; i < n; ++i) fn(i, 0);
    return;
  }
  {
    std::lock_guard lock(mu_);
    fn_ = &fn;
    n_ = n;
    next_ = 0;
    busy_ = static_cast<int>(threads_.size());
    ++generation_;
  }
  start_cv_.notify_all();
  for (size_t i = next_++; i < n; i = next_++) fn(i, 0);
  std::unique_lock lock(mu_);
  done_cv_.wait(lock, [&] { return busy_ == 0; });
}

}  // namespace quench
