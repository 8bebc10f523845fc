// quench/server/text_io.cpp: tokenizer and chat format calls of the server.
#include "server/text_io.h"

#include "core/error.h"
#include "server/api_error.h"
#include "tokenizer/chat_format.h"
#include "tokenizer/tokenizer.h"

namespace quench::server {

std::vector<int32_t> chat_prompt_ids(const Tokenizer& tok, const ChatCompletionRequest& req) {
  std::vector<ChatMessage> msgs;
  msgs.reserve(req.messages.size());
  for (const auto& m : req.messages) msgs.push_back(ChatMessage{m.role, m.content, m.reasoning});
  ChatTemplateOptions opts;
  opts.add_generation_prompt = req.add_generation_prompt;
  opts.enable_thinking = req.enable_thinking;
  std::string text;
  try {
    text = render_chat(msgs, opts);
  } catch (const InvalidArgument& e) {
    throw bad_request(e.what(), "messages");
  }
  if (req.continue_final_message) {
    // Leave the last turn open so the model continues it (vLLM's continue_final_message).
    static const std::string kTurnEnd = "<turn|>\n";
    if (text.size() >= kTurnEnd.size() && text.compare(text.size() - kTurnEnd.size(), kTurnEnd.size(), kTurnEnd) == 0)
      text.resize(text.size() - kTurnEnd.size());
  }
  // The rendered text already starts with <bos>: no special tokens are added again.
  return tok.encode(text, EncodeOptions{.add_special_tokens = false});
}

std::vector<int32_t> text_prompt_ids(const Tokenizer& tok, const std::string& text, bool add_bos) {
  return tok.encode(text, EncodeOptions{.add_special_tokens = add_bos});
}

std::string decode_ids(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip_special_tokens) {
  return tok.decode(ids, skip_special_tokens);
}

std::string token_text(const Tokenizer& tok, int32_t id) {
  const int32_t one[1] = {id};
  return tok.decode(std::span<const int32_t>(one, 1), /*skip_special_tokens=*/false);
}

int vocab_size(const Tokenizer& tok) { return tok.vocab_size(); }

}  // namespace quench::server
