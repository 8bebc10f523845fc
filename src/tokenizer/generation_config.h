// quench/tokenizer/generation_config.h: the stop ids, suppressed ids and sampling defaults of a
// checkpoint, from its generation_config.json (transformers' GenerationConfig keys).
//
// Gemma-4-12B-it ships eos_token_id [1 <eos>, 106 <turn|>, 50 <|tool_response>], suppress_tokens
// [258883 <audio|>, 258882 <image|>], pad 0, bos 2, do_sample true, temperature 1.0, top_k 64,
// top_p 0.95 (../shared/reference/gemma4-architecture.md §1.3).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace quench {

struct GenerationConfig {
  std::vector<int32_t> eos_token_ids;    ///< generation stops at any of these (eos_token_id: int or list)
  std::vector<int32_t> suppress_tokens;  ///< logits of these ids are set to -inf at every step
  int32_t bos_token_id = -1;             ///< -1 = not given
  int32_t pad_token_id = -1;             ///< -1 = not given
  std::optional<bool> do_sample;         ///< sampling defaults; nullopt = not given (use the request's / greedy)
  std::optional<double> temperature;
  std::optional<int> top_k;
  std::optional<double> top_p;
  std::string source;                    ///< file the values came from ("" for defaults)

  /// Reads `dir/generation_config.json`. When that file is absent, takes eos/bos/pad from
  /// `dir/config.json` (top level, else its "text_config"), with no suppressed ids and no sampling
  /// defaults. Throws IoError when neither file exists, FormatError naming the file and key when a
  /// value has the wrong type (ids must be integers in [0, 2^31), temperature/top_p numbers, top_k
  /// an integer, do_sample a boolean).
  static GenerationConfig load(const std::filesystem::path& dir);
  /// Parses the text of a generation_config.json; `source_name` names it in errors.
  static GenerationConfig from_json_text(const std::string& json_text, const std::string& source_name);

  /// True when id is one of eos_token_ids.
  bool is_eos(int32_t id) const;
};

}  // namespace quench
