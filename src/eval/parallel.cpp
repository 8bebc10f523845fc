// quench/eval/parallel.cpp: the worker pool and progress bar (see parallel.h).
#include "eval/parallel.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace quench::eval {

namespace {

class ProgressBar {
 public:
  ProgressBar(std::string label, std::size_t n, bool enabled)
      : label_(std::move(label)), n_(n), enabled_(enabled), tty_(isatty(2) != 0),
        t0_(std::chrono::steady_clock::now()) {}

  void update(std::size_t done) {
    if (!enabled_) return;
    std::lock_guard<std::mutex> lock(mu_);
    const int pct = n_ ? static_cast<int>(100 * done / n_) : 100;
    if (!tty_ && pct / 10 == last_decile_ && done != n_) return;
    last_decile_ = pct / 10;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    const double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
    constexpr int kWidth = 30;
    const int fill = n_ ? static_cast<int>(kWidth * done / n_) : kWidth;
    std::string bar(static_cast<std::size_t>(fill), '#');
    bar.append(static_cast<std::size_t>(kWidth - fill), '.');
    std::fprintf(stderr, "%s[%s] %s %zu/%zu %3d%% %.2f it/s%s", tty_ ? "\r" : "", label_.c_str(), bar.c_str(), done, n_,
                 pct, rate, tty_ ? "" : "\n");
    if (tty_ && done == n_) std::fputc('\n', stderr);
    std::fflush(stderr);
  }

 private:
  std::string label_;
  std::size_t n_;
  bool enabled_, tty_;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point t0_;
  std::mutex mu_;
};

}  // namespace

void parallel_for(std::size_t n, int concurrency, const std::string& label, bool progress,
                  const std::function<void(int, std::size_t)>& work) {
  if (concurrency < 1) concurrency = 1;
  if (static_cast<std::size_t>(concurrency) > n) concurrency = static_cast<int>(n ? n : 1);
  ProgressBar bar(label, n, progress);
  std::atomic<std::size_t> next{0}, done{0};
  std::atomic<bool> failed{false};
  std::exception_ptr first_error;
  std::mutex err_mu;
  bar.update(0);
  auto loop = [&](int worker) {
    for (;;) {
      if (failed.load()) return;
      const std::size_t i = next.fetch_add(1);
      if (i >= n) return;
      try {
        work(worker, i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(err_mu);
        if (!first_error) first_error = std::current_exception();
        failed = true;
        return;
      }
      bar.update(done.fetch_add(1) + 1);
    }
  };
  std::vector<std::thread> threads;
  for (int w = 1; w < concurrency; ++w) threads.emplace_back(loop, w);
  loop(0);
  for (auto& t : threads) t.join();
  if (first_error) {
    if (progress) std::fputc('\n', stderr);
    std::rethrow_exception(first_error);
  }
}

}  // namespace quench::eval
