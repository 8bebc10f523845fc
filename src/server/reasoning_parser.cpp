// quench/server/reasoning_parser.cpp: incremental thought-channel split.
#include "server/reasoning_parser.h"

#include <cstring>

namespace quench::server {
namespace {

/// Length of the longest suffix of `s` that is a proper prefix of `marker`.
size_t partial_marker_suffix(const std::string& s, const char* marker) {
  size_t m = std::strlen(marker);
  for (size_t len = std::min(m - 1, s.size()); len > 0; --len)
    if (s.compare(s.size() - len, len, marker, len) == 0) return len;
  return 0;
}

bool is_prefix_of(const std::string& s, const char* marker) {
  size_t m = std::strlen(marker);
  return s.size() < m && std::strncmp(s.c_str(), marker, s.size()) == 0;
}

}  // namespace

ReasoningParser::Delta ReasoningParser::feed(const std::string& text) {
  pending_ += text;
  return drain(false);
}

ReasoningParser::Delta ReasoningParser::finish() { return drain(true); }

ReasoningParser::Delta ReasoningParser::drain(bool final) {
  Delta d;
  for (;;) {
    switch (state_) {
      case State::kStart: {
        size_t open = std::strlen(kOpen);
        if (pending_.compare(0, open, kOpen) == 0 && pending_.size() >= open) {
          pending_.erase(0, open);
          state_ = State::kHeader;
          continue;
        }
        if (!final && is_prefix_of(pending_, kOpen)) return d;  // wait: may become the marker
        state_ = State::kContent;
        continue;
      }
      case State::kHeader: {
        size_t h = std::strlen(kHeader);
        if (pending_.size() >= h && pending_.compare(0, h, kHeader) == 0) {
          pending_.erase(0, h);
        } else if (!final && is_prefix_of(pending_, kHeader)) {
          return d;
        }
        state_ = State::kReasoning;
        continue;
      }
      case State::kReasoning: {
        size_t close = pending_.find(kClose);
        if (close != std::string::npos) {
          d.reasoning += pending_.substr(0, close);
          pending_.erase(0, close + std::strlen(kClose));
          state_ = State::kContent;
          continue;
        }
        size_t keep = final ? 0 : partial_marker_suffix(pending_, kClose);
        d.reasoning += pending_.substr(0, pending_.size() - keep);
        pending_.erase(0, pending_.size() - keep);
        return d;
      }
      case State::kContent:
        d.content += pending_;
        pending_.clear();
        return d;
    }
  }
}

}  // namespace quench::server
