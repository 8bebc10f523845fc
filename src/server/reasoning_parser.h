// quench/server/reasoning_parser.h: splits Gemma 4's thought channel out of generated text, incrementally.
//
// With thinking on, Gemma 4 writes `<|channel>thought\n<reasoning><channel|><answer>`
// (../shared/reference/gemma4-architecture.md §4.2, chat template lines 235-238). The parser returns
// the reasoning and the answer as separate deltas (vLLM's `reasoning_content` / `content`), holding
// back only text that might be the start of a marker, so streamed deltas concatenate to exactly the
// non-streamed split. Text that does not open with the channel marker is all answer.
#pragma once

#include <string>

namespace quench::server {

class ReasoningParser {
 public:
  /// Open and close markers of the thought channel, and the channel's name line.
  static constexpr const char* kOpen = "<|channel>";
  static constexpr const char* kClose = "<channel|>";
  static constexpr const char* kHeader = "thought\n";

  struct Delta {
    std::string reasoning;
    std::string content;
  };

  /// Feeds the next piece of generated text; returns what can be emitted now.
  Delta feed(const std::string& text);
  /// End of generation: flushes held-back text (an unclosed channel stays reasoning).
  Delta finish();

 private:
  enum class State { kStart, kHeader, kReasoning, kContent };
  Delta drain(bool final);
  State state_ = State::kStart;
  std::string pending_;
};

}  // namespace quench::server
