// quench/engine/request_handle.cpp: the per-request output queue, and finish_reason names.
#include "engine/request_handle.h"

namespace quench {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kAbort: return "abort";
  }
  return "abort";
}

bool RequestHandle::wait_next(RequestOutput& out, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return !queue_.empty(); })) return false;
  out = std::move(queue_.front());
  queue_.pop_front();
  return true;
}

bool RequestHandle::finished() const {
  std::lock_guard lock(mu_);
  return finished_pushed_;
}

void RequestHandle::push(RequestOutput out) {
  {
    std::lock_guard lock(mu_);
    if (finished_pushed_) return;  // nothing follows the last message
    finished_pushed_ = out.finished;
    queue_.push_back(std::move(out));
  }
  cv_.notify_all();
}

}  // namespace quench
