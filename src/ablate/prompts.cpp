// quench/ablate/prompts.cpp: see prompts.h.
#include "ablate/prompts.h"

#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/text_file.h"
#include "tokenizer/chat_format.h"
#include "tokenizer/tokenizer.h"

namespace quench::ablate {

namespace {
bool blank(const std::string& s) { return s.find_first_not_of(" \t\r\n") == std::string::npos; }
}  // namespace

std::vector<std::string> read_prompts(const std::filesystem::path& file) {
  const std::string text = read_text_file(file);
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  bool jsonl = false;
  for (const auto& l : lines)
    if (!blank(l)) {
      jsonl = l[l.find_first_not_of(" \t")] == '{';
      break;
    }
  std::vector<std::string> out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (blank(lines[i])) continue;
    if (!jsonl) {
      out.push_back(lines[i]);
      continue;
    }
    const std::string where = file.string() + ":" + std::to_string(i + 1);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(lines[i]);
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(where + ": not a JSON object (" + e.what() + ")");
    }
    if (!j.is_object() || !j.contains("prompt") || !j["prompt"].is_string())
      throw FormatError(where + ": expected an object with a string field \"prompt\"");
    out.push_back(j["prompt"].get<std::string>());
  }
  if (out.empty()) throw InvalidArgument(file.string() + ": no prompts (expected one prompt a line or JSONL with \"prompt\")");
  return out;
}

std::vector<int32_t> prompt_tokens(const Tokenizer& tok, const std::string& prompt, const PromptFormat& fmt) {
  if (fmt.chat_template) {
    std::vector<ChatMessage> msgs;
    if (!fmt.system.empty()) msgs.push_back({"system", fmt.system, ""});
    msgs.push_back({"user", prompt, ""});
    ChatTemplateOptions opts;
    opts.add_generation_prompt = true;
    opts.enable_thinking = false;
    return tok.encode(render_chat(msgs, opts), EncodeOptions{});
  }
  const int32_t bos = tok.bos_id();
  if (bos < 0) throw InvalidArgument("--chat-template off: the tokenizer has no <bos> token");
  std::vector<int32_t> ids{bos};
  const auto body = tok.encode(prompt, EncodeOptions{});
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

}  // namespace quench::ablate
