// quench/engine/stop_checker.h: when a sequence stops, and which text it may emit so far.
//
// Order of the checks after each generated token (vLLM's StopChecker.maybe_stop_sequence):
//   1. before min_tokens outputs nothing stops it except the length limits;
//   2. an EOS id (generation_config eos_token_ids, unless ignore_eos) -> stop, stop_reason none;
//   3. a request stop_token_id -> stop, stop_reason = the id in decimal;
//   4. a stop string in the text (matched across token boundaries) -> stop, stop_reason = the string;
//      the text from the match on is not emitted unless include_stop_str_in_output;
//   5. num_tokens == max_model_len or num_output_tokens == max_tokens -> length.
// A stop id's own text is not emitted unless include_stop_str_in_output (vLLM v1 detokenizer).
// While streaming, the last max(len(stop)) - 1 bytes (rounded back to a UTF-8 character start)
// are held back until no stop string can begin in them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/sampling_params.h"  // SamplingParams
#include "engine/sequence.h"         // SequenceStatus

namespace quench {

/// Holds back text that might be the beginning of a stop string.
class StopStringMatcher {
 public:
  StopStringMatcher(std::vector<std::string> stop, bool include_stop_str_in_output);

  struct Result {
    std::string emit;                    ///< text safe to send now (UTF-8 complete when the input is)
    std::optional<std::string> matched;  ///< the stop string found (earliest start; first listed on ties)
  };
  /// Appends `delta` (complete UTF-8 text) and returns what can be emitted. After a match nothing
  /// more is accepted (feed returns empty results).
  Result feed(std::string_view delta);
  /// Returns the held-back text (end of the sequence for another reason).
  std::string flush();
  bool matched() const { return matched_; }

 private:
  std::vector<std::string> stop_;
  bool include_;
  size_t hold_ = 0;      ///< bytes to hold: max stop length - 1
  std::string held_;
  bool matched_ = false;
};

/// Token-level stop decision: checks 1-3 and 5 above (stop strings are the matcher's).
struct TokenStop {
  std::optional<SequenceStatus> status;  ///< kFinishedStopped or kFinishedLength, nullopt = continue
  std::optional<std::string> stop_reason;
};

/// `token` was just appended; `num_output_tokens` and `num_tokens` count it. `eos_ids` are
/// generation_config's.
TokenStop check_stop_token(int32_t token, int num_output_tokens, const SamplingParams& params,
                           const std::vector<int32_t>& eos_ids);
/// Check 5 (length limits); `max_model_len` > 0.
std::optional<SequenceStatus> check_length(int num_output_tokens, int num_tokens, const SamplingParams& params,
                                           int max_model_len);

}  // namespace quench
