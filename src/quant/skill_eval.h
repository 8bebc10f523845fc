// quench/quant/skill_eval.h: greedy chat-completion skill checks run in-process on the CPU forward,
// to compare a quantized model's abilities with its BF16 source (issue 6 item 6: the small trained
// model's SKILLS.md sets, scored the way SKILLS.md describes).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace quench {

class Model;
class Tokenizer;

/// One check: a single user message and a judge of the reply text (special tokens removed).
struct SkillItem {
  std::string user_message;
  std::function<bool(const std::string& reply)> is_correct;
};

/// Accuracy of a model on one skill set.
struct SkillScore {
  std::string name;
  int correct = 0;
  int total = 0;
  double accuracy() const { return total > 0 ? static_cast<double>(correct) / total : 0.0; }
};

/// Greedy reply to one user message: the prompt is rendered as the chat template does (thinking
/// off, <bos> included), tokens are generated one at a time with the CPU forward until a stop id
/// or `max_new_tokens`; the reply is decoded without special tokens.
std::string greedy_chat_reply(const Model& model, const Tokenizer& tok, const std::string& user_message,
                              const std::vector<int32_t>& stop_ids, int max_new_tokens);

/// Runs every item in order (the forward pass itself is OpenMP-parallel) and counts correct replies.
SkillScore score_skill(const std::string& name, const Model& model, const Tokenizer& tok,
                       const std::vector<SkillItem>& items, const std::vector<int32_t>& stop_ids,
                       int max_new_tokens);

/// The arithmetic set of SKILLS.md: `{"question", "answer"}` JSONL; a reply is correct when its
/// last integer equals the answer. `limit` > 0 keeps the first items. Throws IoError/FormatError.
std::vector<SkillItem> load_arithmetic_items(const std::string& jsonl_path, int limit);

/// The last (optionally signed) integer in `text`, if any.
std::optional<long long> last_integer(const std::string& text);

}  // namespace quench
