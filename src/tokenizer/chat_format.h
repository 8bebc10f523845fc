// quench/tokenizer/chat_format.h: renders Gemma 4 conversations exactly as the checkpoint's
// chat_template.jinja does (google/gemma-4-31B-it, copied by the 12B-it conversion;
// ../shared/reference/chat-templates/google-gemma-4-31B-it.jinja, gemma4-architecture.md §4.2), and
// splits the thought channel out of generated text.
//
// Shape: `<bos>` once; a system turn `<|turn>system\n[<|think|>\n]TEXT<turn|>\n` when thinking is
// on or the first message is system/developer; then `<|turn>ROLE\nTEXT<turn|>\n` per message with
// assistant -> model, text trimmed (Python str.strip), earlier model turns with their
// `<|channel>...<channel|>` thinking removed, consecutive assistant messages sharing one model turn;
// the generation prompt `<|turn>model\n`, followed by an empty thought channel
// `<|channel>thought\n<channel|>` when thinking is off.
// Tools, tool calls/results and media parts are not supported (InvalidArgument).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace quench {

/// One chat message (OpenAI roles). reasoning_content is accepted and, as in the template, only
/// rendered for assistant turns carrying tool calls, i.e. never here.
struct ChatMessage {
  std::string role;  ///< "system", "developer", "user" or "assistant"
  std::string content;
  std::string reasoning_content;
};

/// Template variables (transformers' apply_chat_template keyword arguments).
struct ChatTemplateOptions {
  bool add_generation_prompt = true;  ///< end with `<|turn>model\n` (and the empty thought channel when thinking is off)
  bool enable_thinking = false;       ///< `<|think|>` in the system turn; no empty thought channel
};

/// The text the template renders (starts with "<bos>", to be tokenized without adding BOS again).
/// Throws InvalidArgument naming the message index and role for an empty conversation or a role
/// other than system/developer/user/assistant (e.g. "tool").
std::string render_chat(const std::vector<ChatMessage>& messages, const ChatTemplateOptions& options);

/// Generated text split into the thought channel and the answer.
struct ReasoningSplit {
  std::string reasoning;       ///< text inside the channel, without the "thought\n" header
  std::string content;         ///< the answer after `<channel|>` (all text when there is no channel)
  bool has_reasoning = false;  ///< a leading `<|channel>` was found
  bool reasoning_closed = false;  ///< its `<channel|>` was found (false = cut off while thinking)
};

/// Separates a leading `<|channel>thought\n...<channel|>` (text decoded with special tokens kept)
/// from the answer, for the server's reasoning_content. Whitespace before `<|channel>` is allowed;
/// the answer is returned as written (not trimmed). Without a leading channel everything is content.
ReasoningSplit split_reasoning(std::string_view generated);

/// Python's str.strip() (the jinja `trim` filter): removes leading and trailing characters for
/// which str.isspace() is true (ASCII \t\n\v\f\r, \x1c-\x1f, space, U+0085, U+00A0, U+1680,
/// U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000). Invalid UTF-8 is kept as is.
std::string python_strip(std::string_view text);

}  // namespace quench
