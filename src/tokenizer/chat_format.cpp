// quench/tokenizer/chat_format.cpp: a native rendering of Google's Gemma 4 chat_template.jinja
// (google/gemma-4-31B-it; the line references below are to that file's message loop) for text-only
// conversations without tools.
#include "tokenizer/chat_format.h"

#include "core/error.h"      // InvalidArgument
#include "tokenizer/utf8.h"  // decode_at

namespace quench {
namespace {

// Python str.isspace() for one code point (Py_UNICODE_ISSPACE: bidirectional class WS/B/S or
// category Zs).
bool is_python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// The template's strip_thinking macro: split on "<channel|>", keep what precedes "<|channel>" in
// each part (whole part when it has none), join, trim.
std::string strip_thinking(std::string_view text) {
  static constexpr std::string_view kClose = "<channel|>", kOpen = "<|channel>";
  std::string result;
  size_t pos = 0;
  while (true) {
    const size_t close = text.find(kClose, pos);
    const std::string_view part = text.substr(pos, close == std::string_view::npos ? std::string_view::npos : close - pos);
    const size_t open = part.find(kOpen);
    result.append(open == std::string_view::npos ? part : part.substr(0, open));
    if (close == std::string_view::npos) break;
    pos = close + kClose.size();
  }
  return python_strip(result);
}

}  // namespace

std::string python_strip(std::string_view text) {
  size_t b = 0;
  while (b < text.size()) {
    const utf8::Char c = utf8::decode_at(text, b);
    if (c.invalid || !is_python_space(c.code_point)) break;
    b += c.len;
  }
  size_t e = text.size();
  while (e > b) {
    size_t s = e - 1;
    while (s > b && (static_cast<uint8_t>(text[s]) & 0xC0) == 0x80 && e - s < 4) --s;
    const utf8::Char c = utf8::decode_at(text, s);
    if (c.invalid || s + c.len != e || !is_python_space(c.code_point)) break;
    e = s;
  }
  return std::string(text.substr(b, e - b));
}

std::string render_chat(const std::vector<ChatMessage>& messages, const ChatTemplateOptions& options) {
  if (messages.empty()) throw InvalidArgument("messages: the conversation is empty (at least one message is required)");
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& r = messages[i].role;
    if (r != "system" && r != "developer" && r != "user" && r != "assistant") {
      throw InvalidArgument("messages[" + std::to_string(i) + "].role: '" + r +
                            "' is not supported by the Gemma 4 chat format (expected system, developer, user or "
                            "assistant; tools are not supported)");
    }
  }
  std::string out = "<bos>";
  const bool first_is_system = messages[0].role == "system" || messages[0].role == "developer";
  size_t first = 0;
  // System turn: thinking switch and/or the leading system/developer message.
  if (options.enable_thinking || first_is_system) {
    out += "<|turn>system\n";
    if (options.enable_thinking) out += "<|think|>\n";
    if (first_is_system) {
      out += python_strip(messages[0].content);
      first = 1;
    }
    out += "<turn|>\n";
  }
  for (size_t i = first; i < messages.size(); ++i) {
    const ChatMessage& msg = messages[i];
    const bool is_model = msg.role == "assistant";
    // An assistant message right after an assistant message continues the same model turn.
    const bool continue_same_model_turn = is_model && i > first && messages[i - 1].role == "assistant";
    if (!continue_same_model_turn) out += "<|turn>" + (is_model ? std::string("model") : msg.role) + "\n";
    out += is_model ? strip_thinking(msg.content) : python_strip(msg.content);
    out += "<turn|>\n";
  }
  if (options.add_generation_prompt) {
    out += "<|turn>model\n";
    if (!options.enable_thinking) out += "<|channel>thought\n<channel|>";
  }
  return out;
}

ReasoningSplit split_reasoning(std::string_view generated) {
  static constexpr std::string_view kOpen = "<|channel>", kClose = "<channel|>", kHeader = "thought\n";
  ReasoningSplit r;
  size_t b = 0;
  while (b < generated.size()) {
    const utf8::Char c = utf8::decode_at(generated, b);
    if (c.invalid || !is_python_space(c.code_point)) break;
    b += c.len;
  }
  if (generated.substr(b, kOpen.size()) != kOpen) {
    r.content = std::string(generated);
    return r;
  }
  r.has_reasoning = true;
  std::string_view rest = generated.substr(b + kOpen.size());
  if (rest.substr(0, kHeader.size()) == kHeader) rest.remove_prefix(kHeader.size());
  const size_t close = rest.find(kClose);
  if (close == std::string_view::npos) {
    r.reasoning = std::string(rest);
    return r;
  }
  r.reasoning_closed = true;
  r.reasoning = std::string(rest.substr(0, close));
  r.content = std::string(rest.substr(close + kClose.size()));
  return r;
}

}  // namespace quench
