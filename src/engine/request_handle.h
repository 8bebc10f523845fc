// quench/engine/request_handle.h: the per-request output queue read by HTTP threads.
//
// The engine thread pushes one RequestOutput per step in which the request made progress; a
// reader (HTTP thread, `generate`) pops them in order. Thread-safe: one producer, any readers.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>

#include "engine/request_output.h"  // RequestOutput

namespace quench {

class RequestHandle {
 public:
  explicit RequestHandle(std::string request_id) : request_id_(std::move(request_id)) {}

  /// Waits up to `timeout` for the next message; true and fills `out` when one arrived, false on
  /// timeout or when the last (finished) message was already read.
  bool wait_next(RequestOutput& out, std::chrono::milliseconds timeout);

  /// True once the finished message has been pushed (it may not have been read yet).
  bool finished() const;
  const std::string& request_id() const { return request_id_; }

  /// Engine side: appends a message and wakes readers.
  void push(RequestOutput out);

 private:
  std::string request_id_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<RequestOutput> queue_;
  bool finished_pushed_ = false;
};

}  // namespace quench
