// quench/quant/skill_eval.cpp: see skill_eval.h.
#include "quant/skill_eval.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "backend/cpu/forward.h"       // CpuForward
#include "core/error.h"                // FormatError
#include "io/text_file.h"              // read_text_file
#include "model/model.h"               // Model
#include "tokenizer/chat_format.h"     // render_chat
#include "tokenizer/tokenizer.h"       // Tokenizer

namespace quench {

namespace {

std::string reply_with(CpuForward& fwd, const Tokenizer& tok, const std::string& user_message,
                       const std::vector<int32_t>& stop_ids, int max_new_tokens) {
  const std::string prompt = render_chat({{"user", user_message, ""}}, ChatTemplateOptions{});
  std::vector<int32_t> ids = tok.encode(prompt);  // the rendered text starts with <bos>
  const int vocab = fwd.config().vocab_size;
  std::vector<float> logits(vocab);
  ContiguousKvCache cache = fwd.new_cache(static_cast<int>(ids.size()) + max_new_tokens);
  fwd.forward(ids, 0, cache, logits.data());
  std::vector<int32_t> out;
  for (int step = 0; step < max_new_tokens; ++step) {
    const int32_t next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    if (std::find(stop_ids.begin(), stop_ids.end(), next) != stop_ids.end()) break;
    out.push_back(next);
    fwd.forward({&next, 1}, cache.length(), cache, logits.data());
  }
  return tok.decode(out, /*skip_special_tokens=*/true);
}

}  // namespace

std::string greedy_chat_reply(const Model& model, const Tokenizer& tok, const std::string& user_message,
                              const std::vector<int32_t>& stop_ids, int max_new_tokens) {
  CpuForward fwd(model);
  return reply_with(fwd, tok, user_message, stop_ids, max_new_tokens);
}

SkillScore score_skill(const std::string& name, const Model& model, const Tokenizer& tok,
                       const std::vector<SkillItem>& items, const std::vector<int32_t>& stop_ids,
                       int max_new_tokens) {
  SkillScore s;
  s.name = name;
  CpuForward fwd(model);
  for (const auto& item : items) {
    const std::string reply = reply_with(fwd, tok, item.user_message, stop_ids, max_new_tokens);
    s.correct += item.is_correct(reply) ? 1 : 0;
    ++s.total;
  }
  return s;
}

std::optional<long long> last_integer(const std::string& text) {
  std::optional<long long> last;
  for (std::size_t i = 0; i < text.size();) {
    if (std::isdigit(static_cast<unsigned char>(text[i]))) {
      std::size_t j = i;
      while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
      long long v = std::stoll(text.substr(i, std::min<std::size_t>(j - i, 18)));
      if (i > 0 && text[i - 1] == '-') v = -v;
      last = v;
      i = j;
    } else {
      ++i;
    }
  }
  return last;
}

std::vector<SkillItem> load_arithmetic_items(const std::string& path, int limit) {
  const std::string content = read_text_file(path);
  std::vector<SkillItem> items;
  std::size_t pos = 0;
  int line_no = 0;
  while (pos < content.size() && (limit <= 0 || static_cast<int>(items.size()) < limit)) {
    auto nl = content.find('\n', pos);
    if (nl == std::string::npos) nl = content.size();
    const std::string line = content.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(fmt::format("{}:{}: bad JSON: {}", path, line_no, e.what()));
    }
    if (!j.contains("question") || !j["question"].is_string() || !j.contains("answer") ||
        !j["answer"].is_number_integer())
      throw FormatError(fmt::format("{}:{}: expected {{\"question\": string, \"answer\": integer}}", path, line_no));
    const long long answer = j["answer"].get<long long>();
    items.push_back({j["question"].get<std::string>(),
                     [answer](const std::string& reply) { return last_integer(reply) == answer; }});
  }
  return items;
}

}  // namespace quench
